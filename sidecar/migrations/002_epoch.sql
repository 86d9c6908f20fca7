-- The conversation's epoch when the message was accepted (NULL: accepted before epochs).
ALTER TABLE chat_messages ADD COLUMN epoch BIGINT UNSIGNED NULL COMMENT 'epoch of conv when accepted' AFTER seq
