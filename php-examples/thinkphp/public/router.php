<?php
// For PHP's built-in server, which `php think run` starts as `php -S … public/router.php`:
// a file that exists under public/ is served as it is; every other path goes to the app.
if (is_file($_SERVER['DOCUMENT_ROOT'] . $_SERVER['SCRIPT_NAME'])) {
    return false;
}
$_SERVER['SCRIPT_FILENAME'] = __DIR__ . '/index.php';
require __DIR__ . '/index.php';
