<?php
/**
 * Demo endpoint: the browser posts {from, to, text}; PHP delivers it with chat_push().
 * The sender's own inbox gets a copy too ('from'), so every tab of the sender shows it.
 */
declare(strict_types=1);

header('Content-Type: application/json');
$in = json_decode((string) file_get_contents('php://input'), true);
$from = $in['from'] ?? null;
$to = $in['to'] ?? null;
$text = $in['text'] ?? null;
if (!is_string($from) || !is_string($to) || !is_string($text) || $text === '' || strlen($text) > 8000) {
    http_response_code(400);
    echo json_encode(['error' => 'expected {from, to, text} with 1..8000 bytes of text']);
    exit;
}
try {
    $id = chat_push($to, ['text' => $text], ['from' => $from]);
    echo json_encode(['id' => $id]);
} catch (Chat\InvalidArgumentException $e) {
    http_response_code(400);
    echo json_encode(['error' => $e->getMessage()]);
} catch (Chat\ChatException $e) {
    http_response_code(503);
    echo json_encode(['error' => $e->getMessage()]);
}
