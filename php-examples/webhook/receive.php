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

// hash_equals: a plain comparison would leak, through timing, how much of a forgery matched.
if (!hash_equals('sha256=' . hash_hmac('sha256', $body, $secret), $signature)) {
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
