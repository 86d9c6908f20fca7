<?php

declare(strict_types=1);

namespace app\facade;

use think\Facade;

/**
 * Static access to app\common\ChatManager, ThinkPHP style: `Chat::connectInfo($uid)`.
 *
 * @see \app\common\ChatManager
 * @method static array{token: string, url: string, expires_in: int}|null connectInfo(string|int|null $uid, array $claims = [])
 * @method static \Chat\ClientInterface client()
 * @method static bool verifyWebhook(string $body, ?string $signature)
 * @method static void applySettings()
 */
class Chat extends Facade
{
    protected static function getFacadeClass(): string
    {
        return \app\common\ChatManager::class;
    }
}
