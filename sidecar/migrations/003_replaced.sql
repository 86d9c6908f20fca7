-- Rows of chat_messages that a different message with the same (conv, seq) replaced: Redis
-- lost the first one (a failover, a restart without persistence) and handed its number out
-- again. Kept here, never dropped silently.
CREATE TABLE IF NOT EXISTS chat_messages_replaced (
  conv          VARCHAR(160) CHARACTER SET ascii NOT NULL,
  seq           BIGINT UNSIGNED NOT NULL,
  epoch         BIGINT UNSIGNED NULL,
  id            CHAR(26) CHARACTER SET ascii NOT NULL,
  sender        VARCHAR(128) CHARACTER SET ascii NULL,
  recipient     VARCHAR(128) CHARACTER SET ascii NULL,
  created_at_ms BIGINT UNSIGNED NOT NULL,
  data          MEDIUMTEXT NOT NULL,
  replaced_by   CHAR(26) CHARACTER SET ascii NOT NULL COMMENT 'id of the message now at (conv, seq)',
  replaced_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY idx_conv_seq (conv, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
