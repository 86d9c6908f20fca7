<?php

declare(strict_types=1);

namespace Chat;

/**
 * Sets the extension's `chat.*` INI settings from an app's own configuration.
 *
 * Frameworks keep configuration in files and `.env` rather than php.ini; this lets a bootstrap
 * step hand that configuration to the extension:
 *
 * ```php
 * Chat\Settings::apply([
 *     'redis_url'  => getenv('CHAT_REDIS_URL') ?: null,   // null: keep the php.ini value
 *     'jwt_secret' => getenv('CHAT_JWT_SECRET') ?: null,
 * ]);
 * ```
 *
 * It calls ini_set(), so the values hold for the rest of the request (php-fpm restores the
 * php.ini values after each request) or, in a long-running worker, until changed again. The
 * extension reads its settings on every call, so they take effect at once. Values are checked
 * by the extension when a call uses them, and a bad one makes that call throw a
 * {@see ChatException} naming the setting. The extension keeps one Redis connection per
 * process and replaces it when `redis_url` or `timeout_ms` changes, so apply the same values
 * on every request rather than switching between Redis servers.
 */
final class Settings
{
    /** Accepted keys and the INI directive each one sets. */
    public const DIRECTIVES = [
        'redis_url' => 'chat.redis_url',
        'namespace' => 'chat.namespace',
        'jwt_secret' => 'chat.jwt_secret',
        'timeout_ms' => 'chat.timeout_ms',
        'retention' => 'chat.retention',
        'max_message_bytes' => 'chat.max_message_bytes',
    ];

    /**
     * @param array<string, string|int|null> $settings keys of {@see DIRECTIVES}; a null value
     *                                                 leaves that setting as it is
     *
     * @throws InvalidArgumentException an unknown key (typos must not pass silently) or a value
     *                                  that is not a string, int or null; nothing is set then
     * @throws ChatException            PHP refused the setting (the extension is not loaded)
     */
    public static function apply(array $settings): void
    {
        // Check everything first, so a bad entry leaves the settings as they were.
        foreach ($settings as $key => $value) {
            if (!isset(self::DIRECTIVES[$key])) {
                throw new InvalidArgumentException(sprintf(
                    'unknown chat setting "%s"; known are %s',
                    $key,
                    implode(', ', array_keys(self::DIRECTIVES)),
                ));
            }
            if ($value !== null && !is_string($value) && !is_int($value)) {
                throw new InvalidArgumentException(sprintf(
                    'chat setting "%s" must be a string, an int or null, got %s',
                    $key,
                    get_debug_type($value),
                ));
            }
        }
        foreach ($settings as $key => $value) {
            if ($value !== null && ini_set(self::DIRECTIVES[$key], (string) $value) === false) {
                throw new ChatException(sprintf(
                    'cannot set %s: is the chat extension loaded? (php --ri chat)',
                    self::DIRECTIVES[$key],
                ));
            }
        }
    }
}
