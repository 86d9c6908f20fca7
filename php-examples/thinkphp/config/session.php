<?php
// Sessions (who is logged in: app\controller\Chat reads the key user_id) in files under
// runtime/session. They are only read and saved on requests that pass through
// \think\middleware\SessionInit, which app/middleware.php turns on.
return [
    'name' => 'PHPSESSID',
    'type' => 'file',
    'expire' => 1440,
    'prefix' => '',
];
