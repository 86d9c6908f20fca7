<?php
declare(strict_types=1);

namespace CustomerService;

use PDO;
use PDOException;

/** The PDO connection and a transaction helper that retries deadlocks. */
final class Database
{
    /** MySQL/MariaDB errors after which the whole transaction may simply run again. */
    private const RETRYABLE = [1213 /* deadlock */, 1205 /* lock wait timeout */];

    public function __construct(public readonly PDO $pdo)
    {
    }

    public static function connect(Config $config): self
    {
        if (!extension_loaded('pdo_mysql')) {
            throw new \RuntimeException('the pdo_mysql extension is not loaded (Debian: apt-get install php-mysql)');
        }
        $pdo = new PDO($config->dsn, $config->dbUser, $config->dbPassword, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            PDO::ATTR_EMULATE_PREPARES => false,
            PDO::ATTR_STRINGIFY_FETCHES => false,
        ]);
        // Short lock waits: an assignment holds its locks for milliseconds.
        $pdo->exec('SET SESSION innodb_lock_wait_timeout = 10');
        return new self($pdo);
    }

    /**
     * Runs $work in a transaction and commits; rolls back on any exception, then calls
     * $onRollback (to undo what the database cannot, e.g. changes in Redis). A deadlock or a
     * lock wait timeout runs $work again (up to 5 times).
     *
     * @template T
     * @param callable(PDO): T $work
     * @param (callable(): void)|null $onRollback
     * @return T
     */
    public function transaction(callable $work, ?callable $onRollback = null): mixed
    {
        for ($attempt = 1; ; $attempt++) {
            $this->pdo->beginTransaction();
            try {
                $result = $work($this->pdo);
                $this->pdo->commit();
                return $result;
            } catch (\Throwable $e) {
                if ($this->pdo->inTransaction()) {
                    $this->pdo->rollBack();
                }
                if ($onRollback !== null) {
                    $onRollback();
                }
                $code = $e instanceof PDOException ? (int) ($e->errorInfo[1] ?? 0) : 0;
                if ($attempt >= 5 || !in_array($code, self::RETRYABLE, true)) {
                    throw $e;
                }
                usleep(random_int(1_000, 20_000) * $attempt); // back off before running it again
            }
        }
    }

    /** "?, ?, ?" for an IN (…) list of $n values. */
    public static function placeholders(int $n): string
    {
        return implode(', ', array_fill(0, $n, '?'));
    }
}
