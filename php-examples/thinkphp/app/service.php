<?php
// Services ThinkPHP registers at startup (topthink/think's app/service.php). Add this line to
// an existing app's list.
return [
    \app\service\ChatService::class,
];
