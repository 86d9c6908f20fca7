<?php

declare(strict_types=1);

namespace app\common;

use Chat\ChatException;
use Chat\Client;
use Chat\ClientInterface;
use Chat\InvalidArgumentException;
use Chat\Settings;
use Chat\Webhook;

/**
 * The app's chat: config/chat.php applied to the extension, connect tokens for the browser,
 * webhook checks. Plain PHP with no ThinkPHP dependency, so it works (and is tested) without
 * the framework; app\service\ChatService registers it in ThinkPHP's container and
 * app\facade\Chat gives it a static face.
 *
 * ```php
 * $chat = ChatManager::fromConfig(require 'config/chat.php');
 * $chat->applySettings();
 * $info = $chat->connectInfo($userId);   // ['token' => ..., 'url' => 'ws://...?token=...', 'expires_in' => 3600]
 * $info = $chat->connectInfo(null);      // null: nobody is logged in, so there is nothing to connect
 * ```
 */
final class ChatManager
{
    /** config/chat.php keys that are the app's own (the others are Settings::DIRECTIVES). */
    private const APP_KEYS = ['websocket_url', 'token_ttl', 'webhook_secret'];

    private const DEFAULTS = [
        'websocket_url' => 'ws://127.0.0.1:9501/ws',
        'token_ttl' => 3600,
        'webhook_secret' => null,
    ];

    /**
     * @param array<string, mixed> $config config/chat.php, already checked by fromConfig()
     */
    private function __construct(
        private readonly array $config,
        private readonly ClientInterface $client,
    ) {
    }

    /**
     * @param array<string, mixed> $config the contents of config/chat.php
     * @param ClientInterface|null $client for tests: a double instead of the extension
     *
     * @throws \RuntimeException        the chat extension is not loaded in this PHP
     * @throws InvalidArgumentException an unknown key (a typo would otherwise be ignored) or a
     *                                  value of the wrong type
     */
    public static function fromConfig(array $config, ?ClientInterface $client = null): self
    {
        // Chat\InvalidArgumentException and the other exceptions below are the extension's:
        // without it, the first one thrown would be a "class not found" error instead.
        if (!extension_loaded('chat')) {
            throw new \RuntimeException(sprintf(
                'the chat extension is not loaded in this PHP (%s SAPI, %s; php --ri chat). php think and '
                . 'composer\'s scripts need it as much as php-fpm: see php-examples/thinkphp/README.md, "Prerequisites"',
                PHP_SAPI,
                php_ini_loaded_file() ?: 'no php.ini',
            ));
        }
        $unknown = array_diff(array_keys($config), self::APP_KEYS, array_keys(Settings::DIRECTIVES));
        if ($unknown !== []) {
            throw new InvalidArgumentException(sprintf(
                'config/chat.php: unknown key(s) %s; known are %s',
                implode(', ', $unknown),
                implode(', ', array_merge(array_keys(Settings::DIRECTIVES), self::APP_KEYS)),
            ));
        }
        // A key set to null (nothing in .env) takes its default, as a null chat.* key keeps
        // the php.ini value.
        foreach (self::DEFAULTS as $key => $default) {
            $config[$key] ??= $default;
        }
        // .env values arrive as strings: "3600" is a fine token_ttl.
        $ttl = $config['token_ttl'];
        if (filter_var($ttl, FILTER_VALIDATE_INT, ['options' => ['min_range' => 1]]) === false) {
            throw new InvalidArgumentException('config/chat.php: token_ttl must be a whole number of seconds >= 1');
        }
        if (!is_string($config['websocket_url'])) {
            throw new InvalidArgumentException('config/chat.php: websocket_url must be a string');
        }
        $secret = $config['webhook_secret'];
        if ($secret !== null && !is_string($secret)) {
            throw new InvalidArgumentException('config/chat.php: webhook_secret must be a string or null');
        }
        return new self($config, $client ?? new Client());
    }

    /**
     * Hands the chat.* values of the config to the extension, for this request. Keys left
     * null keep their php.ini / php-fpm pool values.
     *
     * @throws InvalidArgumentException a value of the wrong type
     */
    public function applySettings(): void
    {
        Settings::apply(array_intersect_key($this->config, Settings::DIRECTIVES));
    }

    public function client(): ClientInterface
    {
        return $this->client;
    }

    /**
     * What a logged-in user's browser needs to connect: the token, the URL with the token in
     * it, and how long the token is valid.
     *
     * Takes null, for no token, so `Chat::connectInfo(session('user_id'))` can be written for
     * every visitor of a page: with nobody logged in the session has no user_id.
     *
     * @param string|int|null      $uid    the logged-in user's id, or null for nobody
     * @param array<string, mixed> $claims extra claims, e.g. ['name' => $user->nickname]
     * @return array{token: string, url: string, expires_in: int}|null null for $uid null
     *
     * @throws InvalidArgumentException a bad user id or claim, or websocket_url is not a ws(s) URL
     * @throws ChatException            chat.jwt_secret is not set
     */
    public function connectInfo(string|int|null $uid, array $claims = []): ?array
    {
        if ($uid === null) {
            return null;
        }
        $ttl = (int) $this->config['token_ttl'];
        $url = $this->client->connectUrl($this->config['websocket_url'], $uid, $ttl, $claims);
        parse_str((string) parse_url($url, PHP_URL_QUERY), $query);
        return ['token' => (string) $query['token'], 'url' => $url, 'expires_in' => $ttl];
    }

    /**
     * Whether a webhook request really comes from the sidecar.
     *
     * @param string      $body      the raw request body
     * @param string|null $signature the X-Chat-Signature header
     *
     * @throws ChatException webhook_secret is not configured
     */
    public function verifyWebhook(string $body, ?string $signature): bool
    {
        $secret = $this->config['webhook_secret'];
        if ($secret === null || $secret === '') {
            throw new ChatException('config/chat.php: webhook_secret is not set, so webhooks cannot be checked');
        }
        return Webhook::verify($body, $signature, $secret);
    }
}
