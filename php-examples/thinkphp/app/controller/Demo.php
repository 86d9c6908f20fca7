<?php

declare(strict_types=1);

namespace app\controller;

use think\App;
use think\Request;
use think\response\Json;
use think\Session;

/**
 * Stands in for a login, so that this skeleton can be tried without one:
 * `GET /demo/login?user=alice` puts alice's id into the session key `user_id`, as an app's
 * login does once it has checked a password. It lets anyone be anyone, so it answers only in
 * debug mode (APP_DEBUG = true in .env). Not one of the files an existing app copies.
 */
class Demo
{
    public function login(Request $request, App $app, Session $session): Json
    {
        if (!$app->isDebug()) {
            return json(['error' => 'not found'], 404);
        }
        $user = $request->get('user');
        // The extension's user id rules (docs/PHP_API.md, "Ids"), checked here for a clear 422.
        if (!is_string($user) || preg_match('/^[A-Za-z0-9_.@+-]{1,128}$/', $user) !== 1) {
            return json(['error' => 'expected ?user= a user id: letters, digits, _ - . @ +'], 422);
        }
        // A new session id at login, so an id planted in the browser before it is worth nothing.
        $session->regenerate(true);
        $session->set('user_id', $user);
        return json(['user_id' => $user]);
    }
}
