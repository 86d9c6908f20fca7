<?php
declare(strict_types=1);

namespace CustomerService;

/**
 * The app's own tables (prefix cs_), created on first use. README.md describes them.
 */
final class Schema
{
    public const VERSION = 1;

    private const TABLES = [
        <<<'SQL'
        CREATE TABLE IF NOT EXISTS cs_agents (
            agent_id             VARCHAR(64)  NOT NULL,
            display_name         VARCHAR(128) NOT NULL,
            active_conversations INT UNSIGNED NOT NULL DEFAULT 0,
            last_assigned_at     DATETIME(6)  NULL,
            created_at           DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (agent_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        SQL,
        <<<'SQL'
        CREATE TABLE IF NOT EXISTS cs_visitors (
            visitor_id   VARCHAR(64)  NOT NULL,
            display_name VARCHAR(128) NOT NULL,
            created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (visitor_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        SQL,
        <<<'SQL'
        CREATE TABLE IF NOT EXISTS cs_conversations (
            conversation_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
            visitor_id      VARCHAR(64)  NOT NULL,
            group_name      VARCHAR(128) NOT NULL,
            status          ENUM('waiting', 'assigned', 'closed') NOT NULL DEFAULT 'waiting',
            agent_id        VARCHAR(64)  NULL,
            waiting_since   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            assigned_at     DATETIME(6)  NULL,
            closed_at       DATETIME(6)  NULL,
            PRIMARY KEY (conversation_id),
            UNIQUE KEY cs_conversations_visitor (visitor_id),
            UNIQUE KEY cs_conversations_group (group_name),
            KEY cs_conversations_queue (status, waiting_since),
            KEY cs_conversations_agent (agent_id, status),
            CONSTRAINT cs_conversations_visitor_fk FOREIGN KEY (visitor_id) REFERENCES cs_visitors (visitor_id),
            CONSTRAINT cs_conversations_agent_fk FOREIGN KEY (agent_id) REFERENCES cs_agents (agent_id),
            CONSTRAINT cs_conversations_agent_when_assigned CHECK ((status = 'assigned') = (agent_id IS NOT NULL))
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        SQL,
        <<<'SQL'
        CREATE TABLE IF NOT EXISTS cs_assignments (
            assignment_id   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
            conversation_id BIGINT UNSIGNED NOT NULL,
            event           ENUM('assigned', 'transferred', 'closed') NOT NULL,
            from_agent_id   VARCHAR(64) NULL,
            to_agent_id     VARCHAR(64) NULL,
            at              DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (assignment_id),
            KEY cs_assignments_conversation (conversation_id, assignment_id),
            CONSTRAINT cs_assignments_conversation_fk FOREIGN KEY (conversation_id) REFERENCES cs_conversations (conversation_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        SQL,
        <<<'SQL'
        CREATE TABLE IF NOT EXISTS cs_schema (
            version INT UNSIGNED NOT NULL,
            PRIMARY KEY (version)
        ) ENGINE=InnoDB
        SQL,
    ];

    /** Creates the tables unless this schema version is recorded already (one cheap query per request). */
    public static function ensure(\PDO $pdo): void
    {
        try {
            $st = $pdo->prepare('SELECT 1 FROM cs_schema WHERE version = ?');
            $st->execute([self::VERSION]);
            if ($st->fetchColumn() !== false) {
                return;
            }
        } catch (\PDOException $e) {
            if ($e->getCode() !== '42S02') { // anything but "table does not exist"
                throw $e;
            }
        }
        foreach (self::TABLES as $sql) {
            $pdo->exec($sql);
        }
        $pdo->prepare('INSERT IGNORE INTO cs_schema (version) VALUES (?)')->execute([self::VERSION]);
    }
}
