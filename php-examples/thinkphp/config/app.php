<?php
// The part of ThinkPHP's config/app.php this skeleton needs. Without error_message, the error
// page of a non-debug app has no message to print and fails itself (htmlentities(null)).
return [
    'default_timezone' => 'Asia/Shanghai',
    // Shown instead of the error when APP_DEBUG is off.
    'error_message' => 'Something went wrong. Please try again later.',
    'show_error_msg' => false,
];
