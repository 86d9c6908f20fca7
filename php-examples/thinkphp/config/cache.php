<?php
// ThinkPHP builds its database layer at start-up, and with it the cache it uses: without a
// default store every request fails ("Unable to resolve NULL driver for [think\Cache]").
// Files under runtime/cache; chat itself caches nothing.
return [
    'default' => 'file',
    'stores' => [
        'file' => ['type' => 'File', 'path' => '', 'prefix' => '', 'expire' => 0],
    ],
];
