<?php
// Chat settings for this app, read by app\common\ChatManager (see app/service/ChatService.php).
//
// Each value comes from .env (its [CHAT] section, see .example.env) through ThinkPHP's env(),
// else from the process environment. env() looks there only for PHP_-prefixed names
// (PHP_CHAT_JWT_SECRET), so the CHAT_* variables a sidecar is started with are read with
// getenv() as well: one exported CHAT_JWT_SECRET serves both. A value set nowhere is null,
// which keeps the php.ini / php-fpm pool value.
$chat = static function (string $name, ?string $default = null): mixed {
    $value = env("CHAT_$name");
    if ($value === null || $value === '') {
        $value = getenv("CHAT_$name");
    }
    return $value === false || $value === '' ? $default : $value;
};

return [
    // The extension's chat.* settings (docs/PHP_API.md), applied at the start of each request.
    'redis_url' => $chat('REDIS_URL'),                  // must be the sidecar's CHAT_REDIS_URL
    'namespace' => $chat('NAMESPACE'),                  // must be the sidecar's CHAT_NAMESPACE
    'jwt_secret' => $chat('JWT_SECRET'),                // must be the sidecar's CHAT_JWT_SECRET
    'timeout_ms' => $chat('TIMEOUT_MS'),
    'max_message_bytes' => $chat('MAX_MESSAGE_BYTES'),

    // This app's own.
    // The sidecar's WebSocket URL as browsers reach it.
    'websocket_url' => $chat('WEBSOCKET_URL', 'ws://127.0.0.1:9501/ws'),
    // Lifetime of connect tokens, seconds. Browsers fetch a fresh one before reconnecting.
    'token_ttl' => $chat('TOKEN_TTL', '3600'),
    // Secret the sidecar signs webhooks with (its CHAT_WEBHOOK_SECRET); null: webhooks are refused.
    'webhook_secret' => $chat('WEBHOOK_SECRET'),
];
