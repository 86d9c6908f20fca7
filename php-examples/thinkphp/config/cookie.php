<?php
// ThinkPHP's cookie defaults are httponly off and no SameSite. The session cookie identifies
// the user whose chat token /chat/token hands out: keep scripts and other sites' forms away
// from it.
return [
    'httponly' => true,
    'samesite' => 'lax',
];
