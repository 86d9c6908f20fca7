<?php
declare(strict_types=1);

namespace CustomerService;

/** Wires the parts together for one request: settings, database (schema ensured), desk, tokens. */
final class App
{
    public function __construct(
        public readonly Config $config,
        public readonly Database $db,
        public readonly Desk $desk,
        public readonly Tokens $tokens,
    ) {
    }

    public static function fromEnvironment(): self
    {
        if (!function_exists('chat_token')) {
            throw new \RuntimeException('the chat extension is not loaded (extension=…/libchat.so, see the README)');
        }
        $config = Config::fromEnvironment();
        $db = Database::connect($config);
        Schema::ensure($db->pdo);
        return new self($config, $db, new Desk($db, $config), new Tokens($config));
    }
}
