<?php
/**
 * One FastCGI request to php-fpm, as a web server (nginx's fastcgi_pass) makes it, so that
 * tests reach php-fpm without a web server in between.
 *
 *   php fcgi.php <host:port> <script file> [METHOD] [request uri] [body] [Header: value ...]
 *
 * Prints the HTTP status line's code, then the response body. Exits 1 if php-fpm cannot be
 * reached or answers something that is not FastCGI.
 */

declare(strict_types=1);

const FCGI_BEGIN_REQUEST = 1;
const FCGI_END_REQUEST = 3;
const FCGI_PARAMS = 4;
const FCGI_STDIN = 5;
const FCGI_STDOUT = 6;
const FCGI_STDERR = 7;
const FCGI_RESPONDER = 1;

function record(int $type, string $content): string
{
    // Request id 1; content of at most 65535 bytes per record, no padding.
    $out = '';
    foreach ($content === '' ? [''] : str_split($content, 65535) as $chunk) {
        $out .= pack('CCnnCx', 1, $type, 1, strlen($chunk), 0) . $chunk;
    }
    return $out;
}

function pair(string $name, string $value): string
{
    $length = static fn (int $n): string => $n < 128 ? chr($n) : pack('N', $n | 0x80000000);
    return $length(strlen($name)) . $length(strlen($value)) . $name . $value;
}

function fail(string $why): never
{
    fwrite(STDERR, "fcgi: $why\n");
    exit(1);
}

[, $address, $script] = $argv + [null, null, null];
if ($address === null || $script === null) {
    fail('usage: php fcgi.php <host:port> <script file> [METHOD] [request uri] [body] [Header: value ...]');
}
$method = $argv[3] ?? 'GET';
$uri = $argv[4] ?? '/';
$body = $argv[5] ?? '';
$path = (string) parse_url($uri, PHP_URL_PATH);
$params = [
    'GATEWAY_INTERFACE' => 'FastCGI/1.0',
    'REQUEST_METHOD' => $method,
    'SCRIPT_FILENAME' => $script,
    'SCRIPT_NAME' => '/' . basename($script),
    'DOCUMENT_ROOT' => dirname($script),
    'REQUEST_URI' => $uri,
    'PATH_INFO' => $path,
    'QUERY_STRING' => (string) parse_url($uri, PHP_URL_QUERY),
    'SERVER_PROTOCOL' => 'HTTP/1.1',
    'SERVER_NAME' => 'localhost',
    'SERVER_PORT' => '80',
    'REMOTE_ADDR' => '127.0.0.1',
    'CONTENT_LENGTH' => (string) strlen($body),
];
foreach (array_slice($argv, 6) as $header) {
    [$name, $value] = array_map('trim', explode(':', $header, 2));
    $key = strtoupper(str_replace('-', '_', $name));
    $params[in_array($key, ['CONTENT_TYPE', 'CONTENT_LENGTH'], true) ? $key : "HTTP_$key"] = $value;
}

$socket = @stream_socket_client("tcp://$address", $errno, $error, 5.0) ?: fail("cannot connect to $address: $error");
stream_set_timeout($socket, 30);
$encoded = '';
foreach ($params as $name => $value) {
    $encoded .= pair($name, $value);
}
fwrite($socket, record(FCGI_BEGIN_REQUEST, pack('nCx5', FCGI_RESPONDER, 0)) . record(FCGI_PARAMS, $encoded) . record(FCGI_PARAMS, '')
    . ($body === '' ? '' : record(FCGI_STDIN, $body)) . record(FCGI_STDIN, ''));

$stdout = '';
$stderr = '';
while (true) {
    $header = stream_get_contents($socket, 8);
    if ($header === false || strlen($header) < 8) {
        fail('php-fpm closed the connection before the end of the request');
    }
    ['type' => $type, 'length' => $length, 'padding' => $padding] = unpack('Cversion/Ctype/nid/nlength/Cpadding/x', $header);
    $content = $length > 0 ? (string) stream_get_contents($socket, $length) : '';
    if ($padding > 0) {
        stream_get_contents($socket, $padding);
    }
    match ($type) {
        FCGI_STDOUT => $stdout .= $content,
        FCGI_STDERR => $stderr .= $content,
        FCGI_END_REQUEST => null,
        default => fail("unexpected FastCGI record type $type"),
    };
    if ($type === FCGI_END_REQUEST) {
        break;
    }
}
[$head, $responseBody] = explode("\r\n\r\n", $stdout, 2) + ['', ''];
$status = preg_match('/^Status: (\d{3})/mi', $head, $m) === 1 ? $m[1] : '200';
echo $status, "\n", $responseBody, $stderr === '' ? '' : "\n[stderr] $stderr";
