<?php
// Chat settings for this app, read by app\common\ChatManager (see app/service/ChatService.php).
// Values come from .env (see .example.env); a null leaves the php.ini / php-fpm pool value.
return [
    // The extension's chat.* settings (docs/PHP_API.md), applied at the start of each request.
    'redis_url' => env('CHAT_REDIS_URL'),              // must be the sidecar's CHAT_REDIS_URL
    'namespace' => env('CHAT_NAMESPACE'),              // must be the sidecar's CHAT_NAMESPACE
    'jwt_secret' => env('CHAT_JWT_SECRET'),            // must be the sidecar's CHAT_JWT_SECRET
    'timeout_ms' => env('CHAT_TIMEOUT_MS'),
    'max_message_bytes' => env('CHAT_MAX_MESSAGE_BYTES'),

    // This app's own.
    // The sidecar's WebSocket URL as browsers reach it.
    'websocket_url' => env('CHAT_WEBSOCKET_URL', 'ws://127.0.0.1:9501/ws'),
    // Lifetime of connect tokens, seconds. Browsers fetch a fresh one before reconnecting.
    'token_ttl' => 3600,
    // Secret the sidecar signs webhooks with; null disables the webhook endpoint.
    'webhook_secret' => env('CHAT_WEBHOOK_SECRET'),
];
