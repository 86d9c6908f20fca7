<?php
/**
 * The chat part of a request to the ThinkPHP example, served by php-fpm for run.sh.
 *
 * ThinkPHP cannot be installed here (no Packagist), so this does what the framework would do
 * for a request, and no more: read the app's .env (think-env.inc, the stand-in the phpt tests
 * use too), evaluate config/chat.php, run ChatService's boot step
 * (ChatManager::fromConfig(...)->applySettings()); then it uses the extension as the
 * controller does. The app is the example as Composer installed it into CHAT_TEST_PROJECT;
 * its .env is CHAT_TEST_ENV_FILE (both set in the php-fpm pool; no such file: no .env).
 *
 * Answers {"redis_url", "namespace", "token", "id"} as JSON, or status 500 and
 * "<exception class>: <message>".
 */

declare(strict_types=1);

use app\common\ChatManager;

$project = (string) getenv('CHAT_TEST_PROJECT');
require "$project/vendor/autoload.php";
require "$project/tests/inc/think-env.inc";

try {
    $envFile = (string) getenv('CHAT_TEST_ENV_FILE');
    ThinkEnv::load(is_file($envFile) ? $envFile : null);
    $chat = ChatManager::fromConfig(require "$project/config/chat.php");
    $chat->applySettings();
    $info = $chat->connectInfo('alice');
    $id = chat_push('bob', ['text' => 'through php-fpm'], ['from' => 'alice']);
    echo json_encode([
        'redis_url' => ini_get('chat.redis_url'),
        'namespace' => ini_get('chat.namespace'),
        'token' => $info['token'],
        'id' => $id,
    ], JSON_UNESCAPED_SLASHES);
} catch (Throwable $e) {
    http_response_code(500);
    echo get_class($e), ': ', $e->getMessage();
}
