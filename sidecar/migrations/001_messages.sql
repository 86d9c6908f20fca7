-- Every message, one row per conversation it landed in (a one-to-one message is in the
-- recipient's and the sender's inbox: two rows with the same id).
CREATE TABLE IF NOT EXISTS chat_messages (
  conv          VARCHAR(160) CHARACTER SET ascii NOT NULL COMMENT 'u:<user id> or g:<group>',
  seq           BIGINT UNSIGNED NOT NULL COMMENT 'position in conv, from 1, no gaps',
  id            CHAR(26) CHARACTER SET ascii NOT NULL COMMENT 'message id (ULID) returned by chat_push',
  sender        VARCHAR(128) CHARACTER SET ascii NULL COMMENT 'from; NULL when the app sent it',
  recipient     VARCHAR(128) CHARACTER SET ascii NULL COMMENT 'to, for one-to-one messages',
  created_at_ms BIGINT UNSIGNED NOT NULL COMMENT 'when Redis accepted it, ms since the epoch',
  data          MEDIUMTEXT NOT NULL COMMENT 'the app payload as JSON, exactly as PHP encoded it',
  PRIMARY KEY (conv, seq),
  KEY idx_id (id),
  KEY idx_sender (sender, created_at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
