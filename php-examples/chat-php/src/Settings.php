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
 *
 * A value fixed with `php_admin_value` (php-fpm pool, Apache) cannot be changed by ini_set().
 * Giving the same value again is fine (nothing needs to change, so nothing is set); a
 * different one throws, since the app would otherwise run with settings it did not ask for.
 * Use `php_value` in the pool when the app configures chat.* too.
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
     * @throws \RuntimeException        the chat extension is not loaded in this PHP (its
     *                                  exception classes come with it, so none of them can
     *                                  be thrown then)
     * @throws InvalidArgumentException an unknown key (typos must not pass silently) or a value
     *                                  that is not a string, int or null; nothing is set then
     * @throws ChatException            PHP refused to change a setting to a different value
     *                                  (fixed with php_admin_value)
     */
    public static function apply(array $settings): void
    {
        if (!extension_loaded('chat')) {
            throw new \RuntimeException(sprintf(
                'the chat extension is not loaded in this PHP (%s SAPI, %s; php --ri chat): '
                . 'enable it where this code runs, the CLI included (see the chat README, "Installing the PHP extension")',
                PHP_SAPI,
                php_ini_loaded_file() ?: 'no php.ini',
            ));
        }
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
            $directive = self::DIRECTIVES[$key];
            // A php_admin_value setting refuses ini_set() even for the value it already has.
            if ($value === null || ini_get($directive) === (string) $value) {
                continue;
            }
            if (ini_set($directive, (string) $value) === false) {
                // The values are not in the message: one of them is the JWT secret.
                throw new ChatException(sprintf(
                    'cannot set %1$s: PHP refuses to change it, as it does for a value fixed with php_admin_value '
                    . '(php-fpm pool, Apache), and the app\'s configuration asks for a different value. Keep one source: '
                    . 'php_value[%1$s] in the pool lets the app override it, or leave %1$s out of the app\'s '
                    . 'configuration so the pool\'s value applies',
                    $directive,
                ));
            }
        }
    }
}
