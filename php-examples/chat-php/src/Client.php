<?php

declare(strict_types=1);

namespace Chat;

/**
 * The chat extension's functions as an object, for dependency injection and typed results.
 *
 * ```php
 * $chat = new Chat\Client();
 * $id = $chat->push($order->userId, ['text' => 'Your order shipped'], from: null);
 * $url = $chat->connectUrl('wss://chat.example/ws', $user->id);
 * ```
 *
 * It holds no state: settings come from the `chat.*` INI values in effect (php.ini, the
 * php-fpm pool, or {@see Settings::apply()}), and the Redis connection is the extension's one
 * per worker process. Creating many clients costs nothing.
 */
final class Client implements ClientInterface
{
    public function token(string|int $uid, int $ttl = 3600, array $claims = []): string
    {
        return \chat_token($uid, $ttl, $claims);
    }

    public function push(string|int $to, mixed $message, string|int|null $from = null): string
    {
        return \chat_push($to, $message, $from === null ? [] : ['from' => $from]);
    }

    public function isOnline(string|int $uid): bool
    {
        return \chat_is_online($uid);
    }

    public function onlineCount(): int
    {
        return \chat_online_count();
    }

    public function devices(string|int $uid): array
    {
        return array_map(Device::fromArray(...), \chat_user_devices($uid));
    }

    public function kick(string|int $uid, ?string $reason = null, bool $revokeTokens = false): int
    {
        return \chat_kick($uid, $reason, $revokeTokens);
    }

    public function connectUrl(string $endpoint, string|int $uid, int $ttl = 3600, array $claims = []): string
    {
        $scheme = parse_url($endpoint, PHP_URL_SCHEME);
        // http(s) too: the sidecar's SSE and long-polling fallbacks take the same token.
        if (!in_array(is_string($scheme) ? strtolower($scheme) : null, ['ws', 'wss', 'http', 'https'], true)
            || parse_url($endpoint, PHP_URL_HOST) === null
            || parse_url($endpoint, PHP_URL_FRAGMENT) !== null) {
            throw new InvalidArgumentException(sprintf(
                'endpoint must be an absolute ws://, wss://, http:// or https:// URL without a #fragment, got "%s"',
                $endpoint,
            ));
        }
        $token = $this->token($uid, $ttl, $claims);
        $separator = str_contains($endpoint, '?') ? '&' : '?';
        // base64url needs no escaping; rawurlencode keeps that true even if the format changes.
        return $endpoint . $separator . 'token=' . rawurlencode($token);
    }
}
