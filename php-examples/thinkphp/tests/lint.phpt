--TEST--
Every PHP file of the examples and the package is valid PHP for this PHP version
--FILE--
<?php
declare(strict_types=1);

// The ThinkPHP classes extend framework classes, so they cannot all be loaded here; `php -l`
// still catches syntax and version errors in them.
$root = dirname(__DIR__, 2);
$files = [];
foreach (["$root/thinkphp", "$root/chat-php/src"] as $dir) {
    foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS)) as $f) {
        // vendor/ and runtime/: what running the skeleton in place leaves behind.
        if ($f->getExtension() === 'php' && !preg_match('#/(tests|vendor|runtime)/#', $f->getPathname())) {
            $files[] = $f->getPathname();
        }
    }
}
$files[] = "$root/thinkphp/think";
sort($files);
foreach ($files as $file) {
    exec(escapeshellarg(PHP_BINARY) . ' -n -l ' . escapeshellarg($file) . ' 2>&1', $out, $status);
    echo substr($file, strlen($root) + 1), ': ', $status === 0 ? 'ok' : implode(' ', $out), "\n";
    $out = [];
}
?>
--EXPECT--
chat-php/src/Client.php: ok
chat-php/src/ClientInterface.php: ok
chat-php/src/Device.php: ok
chat-php/src/Settings.php: ok
chat-php/src/Webhook.php: ok
thinkphp/app/common/ChatManager.php: ok
thinkphp/app/controller/Chat.php: ok
thinkphp/app/controller/Demo.php: ok
thinkphp/app/facade/Chat.php: ok
thinkphp/app/middleware.php: ok
thinkphp/app/service.php: ok
thinkphp/app/service/ChatService.php: ok
thinkphp/config/app.php: ok
thinkphp/config/cache.php: ok
thinkphp/config/chat.php: ok
thinkphp/config/cookie.php: ok
thinkphp/config/log.php: ok
thinkphp/config/session.php: ok
thinkphp/public/index.php: ok
thinkphp/public/router.php: ok
thinkphp/route/app.php: ok
thinkphp/think: ok
