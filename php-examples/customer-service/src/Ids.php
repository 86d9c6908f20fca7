<?php
declare(strict_types=1);

namespace CustomerService;

/**
 * Id rules. Ids become chat user ids and group names, whose charset is ASCII letters, digits
 * and `_ - . @ +` (docs/PHP_API.md); visitor ids are minted here and never chosen by a client.
 */
final class Ids
{
    /** Every visitor conversation is the chat group "cs-<visitor id>". */
    public const GROUP_PREFIX = 'cs-';

    public static function newVisitorId(): string
    {
        return 'v' . bin2hex(random_bytes(8));
    }

    public static function isVisitorId(string $id): bool
    {
        return preg_match('/^v[0-9a-f]{16}$/D', $id) === 1;
    }

    public static function isAgentId(string $id): bool
    {
        return preg_match('/^[A-Za-z0-9_.@+-]{1,64}$/D', $id) === 1 && !self::isVisitorId($id);
    }

    public static function group(string $visitorId): string
    {
        return self::GROUP_PREFIX . $visitorId;
    }

    /** The conversation id chat_history() and chat_unread() use for a visitor's group. */
    public static function conversation(string $visitorId): string
    {
        return 'g:' . self::group($visitorId);
    }
}
