<?php
declare(strict_types=1);

namespace CustomerService\Http;

final class JsonResponse
{
    /** @param array<string, string> $headers */
    public static function send(int $status, mixed $body, array $headers = []): void
    {
        http_response_code($status);
        header('Content-Type: application/json; charset=utf-8');
        header('Cache-Control: no-store');
        foreach ($headers as $name => $value) {
            header("$name: $value");
        }
        echo json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
    }

    public static function error(ApiError $e): void
    {
        self::send($e->status, ['error' => ['code' => $e->errorCode, 'message' => $e->getMessage()]], $e->headers);
    }
}
