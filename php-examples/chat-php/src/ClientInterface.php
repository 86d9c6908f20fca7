<?php

declare(strict_types=1);

namespace Chat;

/**
 * What an app needs from chat: push messages, mint connect tokens, ask who is online.
 *
 * Type-hint this in your services and controllers, so tests can hand them a double instead of
 * a {@see Client} that talks to Redis.
 *
 * Every method either returns its documented value or throws a {@see ChatException}:
 * {@see InvalidArgumentException} for a bad argument (checked before Redis is contacted),
 * {@see ConnectionException} when Redis cannot be reached or stops answering, and
 * {@see ChatException} itself for configuration problems and errors Redis reports.
 * User ids: ASCII letters, digits and `_ - . @ +`, 1 to 128 bytes, case-sensitive; an int is
 * taken as its decimal string.
 */
interface ClientInterface
{
    /**
     * Mints the token a browser or app connects to the sidecar with (JWT, HS256, signed with
     * `chat.jwt_secret`). Needs no Redis.
     *
     * @param string|int           $uid    the user the token is for (its `sub` claim)
     * @param int                  $ttl    lifetime in seconds, at least 1
     * @param array<string, mixed> $claims extra claims (strings, numbers, booleans, null and
     *                                     arrays of these); `sub`, `exp`, `iat` are refused
     * @return string the token, `header.payload.signature` in base64url
     *
     * @throws InvalidArgumentException bad uid, ttl or claim
     * @throws ChatException            `chat.jwt_secret` is not set
     */
    public function token(string|int $uid, int $ttl = 3600, array $claims = []): string;

    /**
     * Sends `$message` to every device of `$to`, now or when it reconnects.
     *
     * @param string|int      $to      the recipient
     * @param mixed           $message anything json_encode() accepts, at most
     *                                 `chat.max_message_bytes` once encoded
     * @param string|int|null $from    the sending user: the message also lands in their inbox,
     *                                 so their other devices show it; null = from the app
     * @return string the message id (a 26-character ULID)
     *
     * @throws InvalidArgumentException bad id, message not encodable, or too large
     * @throws ConnectionException      Redis unreachable or connection lost; when it broke
     *                                  after sending, the message may still have been stored
     * @throws ChatException            bad `chat.*` setting, or Redis refused the command
     */
    public function push(string|int $to, mixed $message, string|int|null $from = null): string;

    /**
     * Whether `$uid` has at least one live connection on any sidecar node.
     *
     * @throws InvalidArgumentException bad uid
     * @throws ConnectionException      Redis unreachable
     * @throws ChatException            bad setting or Redis error
     */
    public function isOnline(string|int $uid): bool;

    /**
     * How many users (not connections) have at least one live connection.
     *
     * @throws ConnectionException Redis unreachable
     * @throws ChatException       bad setting or Redis error
     */
    public function onlineCount(): int;

    /**
     * The live connections of `$uid`, one per device or tab.
     *
     * @return list<Device>
     *
     * @throws InvalidArgumentException bad uid
     * @throws ConnectionException      Redis unreachable
     * @throws ChatException            bad setting or Redis error
     */
    public function devices(string|int $uid): array;

    /**
     * Closes every live connection of `$uid` (WebSocket close code 4004); clients are told not
     * to reconnect by themselves.
     *
     * @param string|null $reason shown to the client; UTF-8, at most 123 bytes
     * @param bool $revokeTokens also refuse every token of the user issued until now (logout
     *                           everywhere, a banned account); tokens minted afterwards work
     * @return int how many live connections the user had
     *
     * @throws InvalidArgumentException bad uid or reason
     * @throws ConnectionException      Redis unreachable
     * @throws ChatException            bad setting or Redis error
     */
    public function kick(string|int $uid, ?string $reason = null, bool $revokeTokens = false): int;

    /**
     * The URL a browser opens to connect as `$uid`: `$endpoint` with a fresh token appended as
     * the `token` query parameter.
     *
     * @param string               $endpoint the sidecar's WebSocket URL, e.g. `wss://chat.example/ws`
     * @param array<string, mixed> $claims   as for {@see token()}
     *
     * @throws InvalidArgumentException bad endpoint, uid, ttl or claim
     * @throws ChatException            `chat.jwt_secret` is not set
     */
    public function connectUrl(string $endpoint, string|int $uid, int $ttl = 3600, array $claims = []): string;
}
