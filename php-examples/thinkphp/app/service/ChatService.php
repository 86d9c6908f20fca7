<?php

declare(strict_types=1);

namespace app\service;

use app\common\ChatManager;
use Chat\Client;
use Chat\ClientInterface;
use think\Service;

/**
 * Registers chat in ThinkPHP's container (listed in app/service.php):
 * - ChatManager, built from config/chat.php, once per request;
 * - Chat\ClientInterface, for code that only pushes and asks who is online.
 * At boot it applies config/chat.php's chat.* values to the extension, so plain chat_push()
 * calls anywhere in the app use them too. ThinkPHP boots services for `php think` commands as
 * well (composer's scripts run some), so the CLI PHP needs the extension too: without it,
 * boot stops with a message saying so (README.md, "Prerequisites").
 */
class ChatService extends Service
{
    public function register(): void
    {
        $this->app->bind(ChatManager::class, fn () => ChatManager::fromConfig((array) $this->app->config->get('chat', [])));
        $this->app->bind(ClientInterface::class, Client::class);
    }

    public function boot(): void
    {
        $this->app->make(ChatManager::class)->applySettings();
    }
}
