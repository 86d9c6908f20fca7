<?php

declare(strict_types=1);

namespace app\controller;

use app\common\ChatManager;
use Chat\ChatException;
use Chat\ConnectionException;
use Chat\InvalidArgumentException;
use think\Request;
use think\response\Json;

/**
 * Chat endpoints (routes in route/app.php):
 *
 *   GET  /chat/token    the logged-in user's connect token and WebSocket URL
 *   POST /chat/send     JSON {to, text}: a one-to-one message from the logged-in user
 *   POST /chat/webhook  signed notifications from the sidecar (CHAT_WEBHOOK_URL), e.g.
 *                       message.offline: messages wait for a user who is offline
 *
 * Who is logged in comes from the session key `user_id`, which your login code sets: adapt
 * currentUser() to however your app knows its user. Never take the user id from the request.
 * The session needs ThinkPHP's \think\middleware\SessionInit (app/middleware.php).
 */
class Chat
{
    /** Longest text message accepted, in characters. */
    private const MAX_TEXT = 2000;

    public function __construct(private readonly ChatManager $chat)
    {
    }

    public function token(Request $request): Json
    {
        $uid = $this->currentUser($request);
        if ($uid === null) {
            return json(['error' => 'log in first'], 401);
        }
        try {
            return json($this->chat->connectInfo($uid));
        } catch (ChatException $e) {
            // chat.jwt_secret missing: a deployment problem, not the user's.
            return json(['error' => 'chat is not available'], 503);
        }
    }

    public function send(Request $request): Json
    {
        $from = $this->currentUser($request);
        if ($from === null) {
            return json(['error' => 'log in first'], 401);
        }
        // ThinkPHP checks no CSRF token by itself. A page on another site can make a browser
        // post a form here with the user's session cookie, but not a JSON body: that takes a
        // CORS preflight, which fails unless the app allows other origins (AllowCrossDomain).
        if ($request->contentType() !== 'application/json') {
            return json(['error' => 'send a JSON body (Content-Type: application/json)'], 415);
        }
        $to = $request->post('to');
        $text = $request->post('text');
        // Characters counted with PCRE, which also refuses invalid UTF-8 (count false).
        $length = is_string($text) ? preg_match_all('/./su', $text) : false;
        if (!(is_string($to) || is_int($to)) || $length === false || trim($text) === '' || $length > self::MAX_TEXT) {
            return json(['error' => sprintf('expected to and text (1 to %d characters)', self::MAX_TEXT)], 422);
        }
        try {
            // With 'from', the sender's other devices get the message too.
            $id = chat_push($to, ['type' => 'text', 'text' => $text], ['from' => $from]);
            return json(['id' => $id]);
        } catch (InvalidArgumentException $e) {
            return json(['error' => $e->getMessage()], 422);
        } catch (ConnectionException $e) {
            // Redis unreachable: the client may retry. (Log $e: it names the Redis URL.)
            return json(['error' => 'chat is temporarily unavailable, try again'], 503);
        } catch (ChatException $e) {
            return json(['error' => 'chat is not available'], 503);
        }
    }

    public function webhook(Request $request): Json
    {
        // Check the raw body, before anything decodes it.
        $body = $request->getContent();
        try {
            $genuine = $this->chat->verifyWebhook($body, $request->header('x-chat-signature'));
        } catch (ChatException $e) {
            // No webhook_secret configured: a deployment problem, answered like one; the sidecar
            // retries a 503 for a while (docs/WEBHOOKS.md, "Delivery").
            return json(['error' => 'webhooks are not configured (CHAT_WEBHOOK_SECRET)'], 503);
        }
        if (!$genuine) {
            return json(['error' => 'bad signature'], 401);
        }
        $event = json_decode($body, true);
        if (!is_array($event)) {
            return json(['error' => 'expected a JSON object'], 400);
        }
        // The sidecar retries failed deliveries with the same id: remember handled ids (cache,
        // database) and skip repeats. Answer 2xx quickly; do slow work in a queue.
        if (($event['event'] ?? null) === 'message.offline') {
            // $event['user'] has $event['count'] messages waiting ($event['messages'], the
            // envelopes): send a mobile push, SMS or mail here.
        }
        return json(['ok' => true, 'event' => $event['event'] ?? null, 'delivery' => $event['delivery'] ?? null]);
    }

    /** The logged-in user's id, or null. */
    private function currentUser(Request $request): string|int|null
    {
        $uid = $request->session('user_id');
        return is_string($uid) || is_int($uid) ? $uid : null;
    }
}
