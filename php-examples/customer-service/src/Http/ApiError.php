<?php
declare(strict_types=1);

namespace CustomerService\Http;

/** An error the API answers with: HTTP status, a stable machine-readable code, a message for people. */
final class ApiError extends \RuntimeException
{
    /** @param array<string, string> $headers */
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        string $message,
        public readonly array $headers = [],
    ) {
        parent::__construct($message);
    }
}
