<?php
/**
 * Receives chat-sidecar webhooks: verifies the signature, drops retried duplicates, and hands
 * offline messages to whatever sends your mobile pushes, SMS or mail.
 *
 * Point CHAT_WEBHOOK_URL at this script and give it the same CHAT_WEBHOOK_SECRET.
 */
declare(strict_types=1);

$secret = getenv('CHAT_WEBHOOK_SECRET') ?: throw new RuntimeException('CHAT_WEBHOOK_SECRET is not set');
$body = (string) file_get_contents('php://input');
$signature = $_SERVER['HTTP_X_CHAT_SIGNATURE'] ?? '';

// X-Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>. With the
// chat-php package installed this is Chat\Webhook::verify($body, $signature, $secret).
$fields = [];
foreach (explode(',', $signature) as $item) {
    [$key, $value] = array_pad(explode('=', trim($item), 2), 2, '');
    $fields[$key][] = $value;
}
$t = $fields['t'][0] ?? '';
// The timestamp is signed with the body: a request captured and replayed more than 5 minutes
// later is refused even once the delivery ids below are forgotten.
if (!ctype_digit($t) || abs(time() - (int) $t) > 300) {
    http_response_code(401);
    exit('stale or missing signature timestamp');
}
$expected = hash_hmac('sha256', "$t.$body", $secret);
$valid = false;
foreach ($fields['v1'] ?? [] as $given) {
    // hash_equals: a plain comparison would leak, through timing, how much of a forgery matched.
    $valid = hash_equals($expected, strtolower($given)) || $valid;
}
if (!$valid) {
    http_response_code(401);
    exit('bad signature');
}

$event = json_decode($body, true, 512, JSON_THROW_ON_ERROR);

// A delivery is retried until we answer 2xx; remember what we handled (use your cache or DB).
$seen = sys_get_temp_dir() . '/chat-webhook-' . preg_replace('/[^A-Z0-9]/', '', (string) $event['delivery']);
if (file_exists($seen)) {
    http_response_code(200);
    exit('duplicate');
}

if ($event['event'] === 'message.offline') {
    foreach ($event['messages'] as $message) {
        // Replace with your push/SMS/mail sender.
        error_log(sprintf(
            'notify %s: new message from %s: %s',
            $event['user'],
            $message['from'] ?? 'the app',
            json_encode($message['data'], JSON_UNESCAPED_UNICODE),
        ));
    }
}

touch($seen);
http_response_code(200);
echo 'ok';
