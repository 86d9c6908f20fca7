<?php
// Where ThinkPHP writes errors: files under runtime/log. Without a default channel it drops
// them silently.
return [
    'default' => 'file',
    'channels' => [
        'file' => ['type' => 'File', 'path' => ''],
    ],
];
