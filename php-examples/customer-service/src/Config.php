<?php
declare(strict_types=1);

namespace CustomerService;

/**
 * Settings, from the environment (see README.md for the variables and their defaults).
 */
final class Config
{
    /**
     * @param array<string, string> $agents agent id => display name: who may sign in to the console
     */
    public function __construct(
        public readonly string $dsn,
        public readonly string $dbUser,
        public readonly string $dbPassword,
        public readonly string $wsUrl,
        public readonly array $agents,
        public readonly string $jwtSecret,
        public readonly int $tokenTtl,
        /** Test hook: holds each assignment this long after choosing the agent (CS_ASSIGN_PAUSE_MS). */
        public readonly int $assignPauseMs = 0,
        /** CHAT_URL: the sidecar's HTTP address for browsers; empty: derived from $wsUrl. */
        private readonly string $chatUrlSetting = '',
    ) {
    }

    /**
     * The sidecar's HTTP base URL as browsers reach it: the pages load chat.js from it and
     * the client picks its transport (/ws, /sse, /poll) under it.
     */
    public function chatUrl(): string
    {
        if ($this->chatUrlSetting !== '') {
            return rtrim($this->chatUrlSetting, '/');
        }
        return (string) preg_replace(['#^ws(s?)://#i', '#/ws/?$#'], ['http$1://', ''], $this->wsUrl);
    }

    public static function fromEnvironment(): self
    {
        $env = static function (string $name, string $default): string {
            $value = getenv($name);
            return $value === false || $value === '' ? $default : $value;
        };
        $ttl = filter_var($env('CS_TOKEN_TTL', '28800'), FILTER_VALIDATE_INT, ['options' => ['min_range' => 60]]);
        if ($ttl === false) {
            throw new \RuntimeException('CS_TOKEN_TTL must be a number of seconds, at least 60');
        }
        return new self(
            dsn: $env('CS_DB_DSN', 'mysql:host=127.0.0.1;port=3306;dbname=chat;charset=utf8mb4'),
            dbUser: $env('CS_DB_USER', 'root'),
            dbPassword: $env('CS_DB_PASSWORD', ''),
            wsUrl: $env('CHAT_WS_URL', 'ws://127.0.0.1:9501/ws'),
            agents: self::parseAgents($env('CS_AGENTS', 'ann:Ann,ben:Ben,cleo:Cleo')),
            // The secret the extension signs tokens with; the API verifies them with it too.
            jwtSecret: (string) ini_get('chat.jwt_secret'),
            tokenTtl: $ttl,
            assignPauseMs: max(0, (int) $env('CS_ASSIGN_PAUSE_MS', '0')),
            chatUrlSetting: $env('CHAT_URL', ''),
        );
    }

    /**
     * "alice:Alice Smith,bob" => ['alice' => 'Alice Smith', 'bob' => 'Bob'].
     *
     * @return array<string, string>
     */
    public static function parseAgents(string $list): array
    {
        $agents = [];
        foreach (explode(',', $list) as $entry) {
            $entry = trim($entry);
            if ($entry === '') {
                continue;
            }
            [$id, $name] = array_pad(explode(':', $entry, 2), 2, '');
            $id = trim($id);
            if (!Ids::isAgentId($id)) {
                throw new \RuntimeException("CS_AGENTS: bad agent id \"$id\" (letters, digits, _ - . @ +; at most 64)");
            }
            $agents[$id] = trim($name) !== '' ? trim($name) : ucfirst($id);
        }
        if ($agents === []) {
            throw new \RuntimeException('CS_AGENTS names no agent');
        }
        return $agents;
    }
}
