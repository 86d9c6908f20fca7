<?php
// ThinkPHP's web entry point, as in topthink/think: point the web server's document root at
// public/ (php-fpm: SCRIPT_FILENAME .../public/index.php).
namespace think;

require __DIR__ . '/../vendor/autoload.php';

$http = (new App())->http;
$response = $http->run();
$response->send();
$http->end($response);
