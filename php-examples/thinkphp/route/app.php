<?php
use think\facade\Route;

// The chat endpoints of app\controller\Chat.
Route::get('chat/token', 'chat/token');        // the logged-in user's connect token and URL
Route::post('chat/send', 'chat/send');         // JSON {to, text}: one-to-one message from the user
Route::post('chat/webhook', 'chat/webhook');   // signed calls from the sidecar

// Only for trying this skeleton: a login stand-in (answers in debug mode only).
Route::get('demo/login', 'demo/login');
