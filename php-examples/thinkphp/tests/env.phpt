--TEST--
ThinkPHP example: .example.env, the [CHAT] section in ThinkPHP 6.1's and 8's .env layouts, and the process environment reach config/chat.php
--INI--
variables_order=GPCS
--FILE--
<?php
declare(strict_types=1);
// ThinkPHP cannot be installed here: ThinkEnv (inc/bootstrap.inc) reads .env the way the
// framework's think\Env does, which is all config/chat.php needs from it.
require __DIR__ . '/inc/bootstrap.inc';

foreach (['REDIS_URL', 'NAMESPACE', 'JWT_SECRET', 'TIMEOUT_MS', 'MAX_MESSAGE_BYTES', 'WEBSOCKET_URL', 'TOKEN_TTL', 'WEBHOOK_SECRET'] as $name) {
    putenv("CHAT_$name");   // whatever the calling shell had
    putenv("PHP_CHAT_$name");
}
$root = dirname(__DIR__);
$dir = sys_get_temp_dir() . '/chat-tp-env-' . bin2hex(random_bytes(4));
mkdir($dir);
register_shutdown_function(static function () use ($dir): void {
    @unlink("$dir/.env");
    @rmdir($dir);
});
$env = static function (string $text) use ($dir): string {
    file_put_contents("$dir/.env", $text);
    return "$dir/.env";
};
$show = static function (array $config): void {
    echo json_encode(array_intersect_key($config, array_flip(['redis_url', 'jwt_secret', 'websocket_url', 'webhook_secret'])), JSON_UNESCAPED_SLASHES), "\n";
};

echo "-- .example.env as the skeleton's .env: it parses, and APP_DEBUG is on\n";
$show(load_chat_config("$root/.example.env"));
var_dump(env('APP_DEBUG'));

// README, "Add it to an existing app", step 6: the [CHAT] line and everything below it.
preg_match('/^\[CHAT\].*/ms', (string) file_get_contents("$root/.example.env"), $m);
$section = $m[0];
// The layouts of a new app's .env: ThinkPHP 6.1's has sections, ends with [LANG], has old Mac
// line breaks (CR) and none at its end; 8's has no sections.
$tp61 = "APP_DEBUG = true\r\r[APP]\rDEFAULT_TIMEZONE = Asia/Shanghai\r\r[DATABASE]\rTYPE = mysql\rHOSTNAME = 127.0.0.1\r\r[LANG]\rdefault_lang = zh-cn";
$tp8 = "APP_DEBUG = true\n\nDB_TYPE = mysql\nDB_HOST = 127.0.0.1\n\nDEFAULT_LANG = zh-cn\n";

foreach (['6.1' => $tp61, '8' => $tp8] as $version => $text) {
    echo "-- ThinkPHP $version: the [CHAT] section appended to its .env, on a line of its own\n";
    $show(load_chat_config($env($text . "\n" . $section)));
    echo 'the app\'s own settings stay: ', json_encode([env('APP_DEBUG'), env('LANG_DEFAULT_LANG') ?? env('DEFAULT_LANG')]), "\n";
}

echo "-- ThinkPHP 6.1: the section glued to its last line is part of a value, unseen by the app\n";
$show(load_chat_config($env($tp61 . $section)));
var_dump(env('LANG_DEFAULT_LANG'));

echo "-- ThinkPHP 6.1: plain CHAT_* lines appended end up in [LANG], unseen by the app\n";
$show(load_chat_config($env($tp61 . "\nCHAT_JWT_SECRET = s3cret\n")));
var_dump(env('LANG_CHAT_JWT_SECRET'));

echo "-- a # comment with a parenthesis: ThinkPHP ignores the whole .env, APP_DEBUG too\n";
$show(load_chat_config($env("# Copy to .env (and edit it)\nAPP_DEBUG = true\n" . $section)));
var_dump(env('APP_DEBUG'));

echo "-- a value with a semicolon needs double quotes\n";
$show(load_chat_config($env("[CHAT]\nJWT_SECRET = ab;cd\nWEBHOOK_SECRET = \"ab;cd\"\n")));

echo "-- the process environment: PHP_CHAT_* through env(), CHAT_* through getenv()\n";
putenv('PHP_CHAT_JWT_SECRET=from-PHP_CHAT_JWT_SECRET');
putenv('CHAT_WEBHOOK_SECRET=from-CHAT_WEBHOOK_SECRET');
$show(load_chat_config());

echo "-- first found wins: .env, then PHP_CHAT_*, then CHAT_*\n";
putenv('CHAT_JWT_SECRET=from-CHAT_JWT_SECRET');
$show(load_chat_config($env("[CHAT]\nJWT_SECRET = from-.env\n")));
$show(load_chat_config());
putenv('PHP_CHAT_JWT_SECRET');
$show(load_chat_config());

echo "-- an empty value counts as not set\n";
$show(load_chat_config($env("[CHAT]\nJWT_SECRET =\nWEBSOCKET_URL = \"\"\n")));
?>
--EXPECTF--
-- .example.env as the skeleton's .env: it parses, and APP_DEBUG is on
{"redis_url":"redis://127.0.0.1:6379","jwt_secret":"change-me","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"change-me-too"}
bool(true)
-- ThinkPHP 6.1: the [CHAT] section appended to its .env, on a line of its own
{"redis_url":"redis://127.0.0.1:6379","jwt_secret":"change-me","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"change-me-too"}
the app's own settings stay: [true,"zh-cn"]
-- ThinkPHP 8: the [CHAT] section appended to its .env, on a line of its own
{"redis_url":"redis://127.0.0.1:6379","jwt_secret":"change-me","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"change-me-too"}
the app's own settings stay: [true,"zh-cn"]
-- ThinkPHP 6.1: the section glued to its last line is part of a value, unseen by the app
{"redis_url":null,"jwt_secret":null,"websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":null}
string(11) "zh-cn[CHAT]"
-- ThinkPHP 6.1: plain CHAT_* lines appended end up in [LANG], unseen by the app
{"redis_url":null,"jwt_secret":null,"websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":null}
string(6) "s3cret"
-- a # comment with a parenthesis: ThinkPHP ignores the whole .env, APP_DEBUG too
{"redis_url":null,"jwt_secret":null,"websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":null}
NULL
-- a value with a semicolon needs double quotes
{"redis_url":null,"jwt_secret":"ab","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"ab;cd"}
-- the process environment: PHP_CHAT_* through env(), CHAT_* through getenv()
{"redis_url":null,"jwt_secret":"from-PHP_CHAT_JWT_SECRET","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"from-CHAT_WEBHOOK_SECRET"}
-- first found wins: .env, then PHP_CHAT_*, then CHAT_*
{"redis_url":null,"jwt_secret":"from-.env","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"from-CHAT_WEBHOOK_SECRET"}
{"redis_url":null,"jwt_secret":"from-PHP_CHAT_JWT_SECRET","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"from-CHAT_WEBHOOK_SECRET"}
{"redis_url":null,"jwt_secret":"from-CHAT_JWT_SECRET","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"from-CHAT_WEBHOOK_SECRET"}
-- an empty value counts as not set
{"redis_url":null,"jwt_secret":"from-CHAT_JWT_SECRET","websocket_url":"ws://127.0.0.1:9501/ws","webhook_secret":"from-CHAT_WEBHOOK_SECRET"}
