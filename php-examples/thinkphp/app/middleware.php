<?php
// Global middleware (ThinkPHP reads app/middleware.php). ThinkPHP ships SessionInit commented
// out; without it the request has no session, and $request->session('user_id') fails with
// "Call to a member function get() on null" (a 500) instead of telling a visitor to log in.
return [
    \think\middleware\SessionInit::class,
];
