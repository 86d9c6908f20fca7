<?php
/**
 * Generates php-examples/chat-php/stubs/chat.stubs.php, the IDE stubs of the chat extension.
 *
 *   php -n -d extension=target/release/libchat.so scripts/gen-stubs.php            # print
 *   php -n -d extension=target/release/libchat.so scripts/gen-stubs.php --write    # update the file
 *   php -n -d extension=target/release/libchat.so scripts/gen-stubs.php --check    # exit 1 if stale
 * (`make stubs` runs --write; ext/tests/090-stubs.phpt fails while the file is stale.)
 *
 * Signatures (names, parameters, types, defaults), classes, constants and INI settings come
 * from the loaded extension through Reflection, so they cannot drift from the code.
 * ext-php-rs's own stub generator is not used: it needs a debug build and does not see the
 * exception classes, which errors.rs registers by hand.
 * The prose comes from DOCS below. Anything the extension has that DOCS does not describe,
 * or the other way round, is an error: adding a function, parameter, class or INI setting
 * means writing its documentation here (and in docs/PHP_API.md).
 *
 * Run it with `php -n` so the INI defaults shown are the extension's own, not php.ini's.
 */

declare(strict_types=1);

namespace ChatStubs;

use ReflectionClass;
use ReflectionExtension;
use ReflectionFunctionAbstract;
use ReflectionNamedType;
use ReflectionParameter;
use ReflectionType;
use RuntimeException;

/** Width of PHPDoc text. */
const WIDTH = 92;

const STUBS_FILE = __DIR__ . '/../php-examples/chat-php/stubs/chat.stubs.php';

const ID_RULE = 'ASCII letters, digits and _ - . @ +, 1 to 128 bytes, case-sensitive; an int means its decimal string';
const GROUP_RULE = 'ASCII letters, digits and _ - . @ +, 1 to 128 bytes, case-sensitive; an int means its decimal string';
const THROWS_REDIS = [
    'Chat\ConnectionException' => 'Redis cannot be reached, did not answer within chat.timeout_ms, or the connection broke',
    'Chat\ChatException' => 'a chat.* setting is not valid, or Redis refused the command (OOM, READONLY, ...)',
];

/**
 * The prose of every function, class and INI setting.
 *
 * Per function: summary (first line), details (more paragraphs, optional), params (name =>
 * [doc, type]; type only where the extension accepts more than its declared type, e.g. ints as
 * user ids; it must include the declared type), return ([type, doc]; type may be more precise
 * than the declared one), throws (class => when), example (optional).
 */
const DOCS = [
    'functions' => [
        'chat_token' => [
            'summary' => 'Mints the token a browser or app connects to chat-sidecar with: a JWT signed with HS256 using chat.jwt_secret.',
            'details' => 'Needs no Redis. Any other HS256 JWT library works too, as long as it sets sub and exp.',
            'params' => [
                'uid' => ['the user the token is for (its sub claim): ' . ID_RULE, 'string|int'],
                'ttl' => ['lifetime in seconds, from 1 to 2592000 (30 days); exp = now + $ttl, iat = now'],
                'claims' => ['extra claims, name => value: strings, ints, floats, booleans, null and arrays of these (nested at most 32 deep); sub, exp and iat are set by the function and refused here', 'array<string, mixed>'],
            ],
            'return' => ['string', 'the token, header.payload.signature in base64url (at most 8 KiB, the most the sidecar accepts)'],
            'throws' => [
                'Chat\InvalidArgumentException' => 'a bad $uid; $ttl < 1 or over 30 days; a claim named sub, exp or iat, an int claim name, or a claim holding an object, a resource, INF/NAN, invalid UTF-8 or nesting too deep; claims too large for an 8 KiB token',
                'Chat\ChatException' => 'chat.jwt_secret is empty',
            ],
            'example' => '$token = chat_token($user->id, 3600, [\'role\' => \'agent\']);',
        ],
        'chat_push' => [
            'summary' => 'Sends $message to every device of user $uid, now or when it reconnects.',
            'details' => "It is appended, with the next sequence number, to the user's inbox and announced to the sidecar nodes. Once this returns, the message is stored in Redis. One Redis round trip.",
            'params' => [
                'uid' => ['the recipient: ' . ID_RULE, 'string|int'],
                'message' => ['anything json_encode() accepts (arrays, scalars, null, JsonSerializable, plain objects); encoded with JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION and delivered byte for byte; at most chat.max_message_bytes once encoded'],
                'options' => ["'from' => the sending user (string|int|null): the message is then also appended to the sender's own inbox, so the sender's other devices show it. No other keys are accepted", 'array{from?: string|int|null}'],
            ],
            'return' => ['string', 'the message id, a 26-character ULID, the same in every inbox it landed in'],
            'throws' => [
                'Chat\InvalidArgumentException' => "a bad \$uid or 'from'; an unknown option; a message json_encode() refuses (the message quotes json_last_error_msg()); a message larger than chat.max_message_bytes",
                'Chat\ConnectionException' => 'Redis cannot be reached, did not answer within chat.timeout_ms, or the connection broke; if it broke after sending, the message may still have been stored (nothing is retried)',
                'Chat\ChatException' => 'a chat.* setting is not valid, or Redis refused the command (OOM, READONLY, ...)',
            ],
            'example' => "\$id = chat_push('bob', ['text' => 'hi'], ['from' => 'alice']);",
        ],
        'chat_is_online' => [
            'summary' => 'Whether $uid has at least one live connection on any sidecar node.',
            'details' => "A connection whose node crashed stops counting when its presence entry expires.",
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
            ],
            'return' => ['bool', 'true while any of the user\'s devices is connected'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid'] + THROWS_REDIS,
        ],
        'chat_online_count' => [
            'summary' => 'How many users (not connections) have at least one live connection; with $group, how many of its members.',
            'params' => [
                'group' => ['only count members of this group: ' . GROUP_RULE . '; null = all users', 'string|int|null'],
            ],
            'return' => ['int', 'the number of online users'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_online_users' => [
            'summary' => 'The ids of the users with at least one live connection; with $group, only its members.',
            'params' => [
                'group' => ['only members of this group: ' . GROUP_RULE . '; null = all users', 'string|int|null'],
            ],
            'return' => ['list<string>', 'user ids, sorted'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_user_devices' => [
            'summary' => 'The live connections of $uid, one entry per device or tab.',
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
            ],
            'return' => [
                'list<array{id: string, node: string, device: string, transport: string, connected_at: int}>',
                "[] if none. id: connection id, unique across nodes; node: the sidecar node holding it; device: the client's ?device= label or \"unknown\"; transport: \"websocket\"; connected_at: milliseconds since the epoch",
            ],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid'] + THROWS_REDIS,
        ],
        'chat_kick' => [
            'summary' => 'Closes every live connection of $uid, on every node, with WebSocket close code 4004.',
            'details' => 'Clients are expected not to reconnect by themselves after 4004 (logout, ban). With $revoke_tokens every token of the user issued until now is refused from now on (close 4001, POST /send 401); tokens minted afterwards work.',
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
                'reason' => ['the close reason shown to the client: UTF-8, at most 123 bytes; null = empty'],
                'revoke_tokens' => ['also refuse every token of the user issued until now (logout everywhere, a banned account)'],
            ],
            'return' => ['int', 'how many live connections the user had when the kick was sent'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid; a reason longer than 123 bytes or not UTF-8'] + THROWS_REDIS,
        ],
        'chat_join_group' => [
            'summary' => 'Adds $uid to $group.',
            'details' => "The user's live connections receive the group's messages from now on (not its earlier ones).",
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
                'group' => ['the group: ' . GROUP_RULE, 'string|int'],
            ],
            'return' => ['bool', 'false when the user already was a member'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid or $group'] + THROWS_REDIS,
        ],
        'chat_leave_group' => [
            'summary' => 'Removes $uid from $group; their live connections stop receiving it at once.',
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
                'group' => ['the group: ' . GROUP_RULE, 'string|int'],
            ],
            'return' => ['bool', 'false when the user was not a member'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid or $group'] + THROWS_REDIS,
        ],
        'chat_group_members' => [
            'summary' => 'The members of $group.',
            'params' => [
                'group' => ['the group: ' . GROUP_RULE, 'string|int'],
            ],
            'return' => ['list<string>', 'user ids, sorted; [] for a group without members'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_send_to_group' => [
            'summary' => 'Sends $message to every member of $group, durable and sequenced like an inbox message.',
            'params' => [
                'group' => ['the group: ' . GROUP_RULE, 'string|int'],
                'message' => ['anything json_encode() accepts, as for chat_push(); at most chat.max_message_bytes once encoded'],
                'options' => ["'from' => the sending user (string|int|null); no other keys are accepted", 'array{from?: string|int|null}'],
            ],
            'return' => ['string', 'the message id, a 26-character ULID'],
            'throws' => [
                'Chat\InvalidArgumentException' => "a bad \$group or 'from'; an unknown option; a message json_encode() refuses or larger than chat.max_message_bytes",
            ] + THROWS_REDIS,
        ],
        'chat_broadcast' => [
            'summary' => 'Sends $message live to every connected client.',
            'details' => 'Not stored and not resumable: clients that are offline or reconnecting do not get it.',
            'params' => [
                'message' => ['anything json_encode() accepts, as for chat_push(); at most chat.max_message_bytes once encoded'],
            ],
            'return' => ['int', 'how many users were online'],
            'throws' => [
                'Chat\InvalidArgumentException' => 'a message json_encode() refuses or larger than chat.max_message_bytes',
            ] + THROWS_REDIS,
        ],
        'chat_unread' => [
            'summary' => 'Unread message counts of $uid, per conversation.',
            'details' => "Messages after the user's read position that the user did not send; conversations without unread messages are absent.",
            'params' => [
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
            ],
            'return' => ['array<string, int>', "conversation id => count, e.g. ['u:bob' => 3]"],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $uid'] + THROWS_REDIS,
        ],
        'chat_history' => [
            'summary' => 'The latest messages of a conversation, oldest first, as clients receive them.',
            'details' => 'Covers what Redis still holds (about chat.retention messages per conversation); older history is in MySQL.',
            'params' => [
                'conversation' => ["'u:<user id>' (a user's inbox) or 'g:<group name>'"],
                'limit' => ['how many messages at most, 1 to 1000'],
                'before' => ['only messages with a sequence number below this (paging back); null = the latest'],
            ],
            'return' => [
                'list<array{type: string, id: string, conv: string, seq: int, from: ?string, to: ?string, ts: int, data: mixed}>',
                'the message envelopes, decoded as arrays',
            ],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad conversation id; $limit outside 1..1000; $before < 1'] + THROWS_REDIS,
        ],
        'chat_client' => [
            'summary' => 'A live connection ("client", as GatewayWorker calls it) and its user.',
            'details' => 'A client id is the connection id the sidecar reports (welcome frame conn, chat_user_devices() id): <node id>-<n>.',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
            ],
            'return' => ['array{id: string, uid: ?string}|null', 'null when the connection is not live; uid is null while it has no user (an anonymous connection)'],
            'throws' => ['Chat\InvalidArgumentException' => 'a malformed $client_id'] + THROWS_REDIS,
        ],
        'chat_clients' => [
            'summary' => 'The live connections and their users: all of them, or those of $group\'s members.',
            'params' => [
                'group' => ['only connections of this group\'s members: ' . GROUP_RULE . '; null = every connection', 'string|int|null'],
            ],
            'return' => ['array<string, ?string>', 'client id => user id (null for a connection without a user)'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_client_count' => [
            'summary' => 'How many live connections there are; with $group, how many its members have.',
            'params' => [
                'group' => ['only connections of this group\'s members: ' . GROUP_RULE . '; null = every connection', 'string|int|null'],
            ],
            'return' => ['int', 'the number of live connections'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_group_client_counts' => [
            'summary' => 'The number of live connections of each group\'s members, in one call.',
            'params' => [
                'groups' => ['the groups (' . GROUP_RULE . '), at most 10000', 'array<string|int>'],
            ],
            'return' => ['array<string, int>', 'group => count, for every group asked about'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad group name; more than 10000'] + THROWS_REDIS,
        ],
        'chat_user_clients' => [
            'summary' => 'The live connections of each of several users, in one call.',
            'params' => [
                'uids' => ['the users (' . ID_RULE . '), at most 10000', 'array<string|int>'],
            ],
            'return' => ['array<string, list<string>>', 'user id => client ids, for every user asked about ([] when offline)'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad user id; more than 10000'] + THROWS_REDIS,
        ],
        'chat_online_groups' => [
            'summary' => 'Every group with at least one online member, its online members and their live connections.',
            'details' => 'Meant for dashboards and GatewayClient\'s getAllGroup*() methods: it walks every online user.',
            'return' => ['array<string, array<string, list<string>>>', 'group => [user id => client ids], sorted by group and user'],
            'throws' => THROWS_REDIS,
        ],
        'chat_event' => [
            'summary' => 'Sends $message live to every connection, a user\'s, a group\'s members\' or one connection.',
            'details' => "Not stored and not resumable: connections that are offline or reconnecting do not get it (use chat_push() for that). Clients receive {\"type\":\"event\",\"data\":<message>}, or with 'raw' the message itself as the frame (GatewayWorker-style).",
            'params' => [
                'target' => ["'all', 'u:<user id>', 'g:<group name>' or 'c:<client id>'"],
                'message' => ['anything json_encode() accepts; with raw, a string holding JSON text (sent as is) or a value that is JSON-encoded; at most chat.max_message_bytes'],
                'options' => ["'raw' => bool: the message is the frame; 'only' => client ids: only these connections; 'except' => client ids: not these (not with a 'c:' target)", 'array{raw?: bool, only?: list<string>, except?: list<string>}'],
            ],
            'return' => ['int', "for 'c:' 1 when the connection was live (else 0, nothing sent); otherwise how many sidecar nodes received it"],
            'throws' => [
                'Chat\InvalidArgumentException' => 'a bad target, option or client id; a message json_encode() refuses, a raw string that is not JSON or not UTF-8, or one larger than chat.max_message_bytes',
            ] + THROWS_REDIS,
        ],
        'chat_client_close' => [
            'summary' => 'Closes one live connection, on whichever node holds it, with close code 4004.',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
                'reason' => ['the close reason shown to the client: UTF-8, at most 123 bytes; null = empty'],
            ],
            'return' => ['bool', 'false when the connection is not live'],
            'throws' => ['Chat\InvalidArgumentException' => 'a malformed $client_id; a reason longer than 123 bytes or not UTF-8'] + THROWS_REDIS,
        ],
        'chat_session' => [
            'summary' => 'The session array PHP stored for a live connection (chat_set_session()).',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
            ],
            'return' => ['array|null', '[] when none was set; null when the connection is not live'],
            'throws' => ['Chat\InvalidArgumentException' => 'a malformed $client_id'] + THROWS_REDIS,
        ],
        'chat_sessions' => [
            'summary' => 'The sessions of all live connections, or of $group\'s members\' connections.',
            'params' => [
                'group' => ['only connections of this group\'s members: ' . GROUP_RULE . '; null = every connection', 'string|int|null'],
            ],
            'return' => ['array<string, array>', 'client id => session ([] when none was set)'],
            'throws' => ['Chat\InvalidArgumentException' => 'a bad $group'] + THROWS_REDIS,
        ],
        'chat_set_session' => [
            'summary' => 'Replaces the session of a live connection; it lives in Redis as long as the connection.',
            'details' => 'Stored with serialize() and read back with unserialize() without classes: objects come back as __PHP_Incomplete_Class.',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
                'session' => ['the session, at most 65536 bytes once serialize()d; strings must be UTF-8'],
            ],
            'return' => ['bool', 'false when the connection is not live'],
            'throws' => ['Chat\InvalidArgumentException' => 'a malformed $client_id; a session too large or holding non-UTF-8 strings'] + THROWS_REDIS,
        ],
        'chat_update_session' => [
            'summary' => 'Merges $session into a live connection\'s session as array_replace_recursive() does, atomically.',
            'details' => 'Read, merge, then write only if nobody wrote meanwhile (else again, up to 16 times): concurrent updates lose nothing. Two round trips.',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
                'session' => ['the keys to set, merged recursively into the stored session'],
            ],
            'return' => ['bool', 'false when the connection is not live'],
            'throws' => [
                'Chat\InvalidArgumentException' => 'a malformed $client_id; a merged session too large or holding non-UTF-8 strings',
                'Chat\ChatException' => 'the session changed under 16 attempts in a row; a chat.* setting is not valid, or Redis refused the command',
                'Chat\ConnectionException' => THROWS_REDIS['Chat\ConnectionException'],
            ],
        ],
        'chat_bind' => [
            'summary' => 'Binds a live connection to a user (GatewayWorker\'s bindUid).',
            'details' => 'An anonymous connection (sidecar setting CHAT_ANONYMOUS_CONNECT=true) becomes the user\'s session; the call returns once the connection\'s node has subscribed it to the user\'s conversations (waiting at most 5 s), so a chat_push() to $uid right after it reaches the connection. A connection that authenticated with a token already is its user\'s: binding it to that user does nothing and returns true. A connection\'s user never changes: binding one of another user throws.',
            'params' => [
                'client_id' => ['the connection: <node id>-<n>', 'string'],
                'uid' => ['the user: ' . ID_RULE, 'string|int'],
            ],
            'return' => ['bool', 'false when the connection is not live'],
            'throws' => [
                'Chat\InvalidArgumentException' => 'a malformed $client_id or bad $uid',
                'Chat\ChatException' => 'the connection belongs to another user, or its sidecar node did not confirm the binding within 5 s; a chat.* setting is not valid, or Redis refused the command',
                'Chat\ConnectionException' => THROWS_REDIS['Chat\ConnectionException'],
            ],
        ],
    ],
    'classes' => [
        'Chat\ChatException' => [
            'summary' => 'Base class of everything the chat extension throws: catch this to catch it all.',
            'details' => 'Thrown as itself for configuration problems (chat.jwt_secret empty, a chat.* setting that is not valid) and errors Redis reports (OOM, READONLY, ...). The code is always 0.',
        ],
        'Chat\ConnectionException' => [
            'summary' => 'Redis cannot be reached, did not answer within chat.timeout_ms, or the connection broke mid-call.',
            'details' => 'The message names the configured URL (password masked). The next call connects again, so a worker recovers by itself once Redis is back. A push that failed this way may still have been stored: retrying is the app\'s decision.',
        ],
        'Chat\InvalidArgumentException' => [
            'summary' => 'An argument breaks a rule (id charset or length, option, message size or encoding, ttl, claim, kick reason).',
            'details' => 'Arguments are checked before Redis is contacted, so this is thrown even while Redis is down. The message says which rule and why.',
        ],
    ],
    'ini' => [
        'chat.redis_url' => 'Redis to talk to: redis://[[user]:password@]host[:port][/db], redis+unix:///path.sock[?db=N&pass=...] or redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master>[/db]; ?replicas=N&replicas_timeout_ms=T: N replicas confirm each write (default 1 with Sentinel, else 0); no TLS. Must be the sidecar\'s CHAT_REDIS_URL',
        'chat.namespace' => 'prefix of every Redis key and channel (id charset); must equal the sidecar\'s CHAT_NAMESPACE',
        'chat.jwt_secret' => 'HS256 secret for chat_token(); must equal the sidecar\'s CHAT_JWT_SECRET',
        'chat.timeout_ms' => 'connect, read and write timeout for Redis, milliseconds, >= 1',
        'chat.failover_timeout_ms' => 'with redis+sentinel://, how long a call that is safe to repeat keeps trying while the master is switched over, milliseconds, >= 0',
        'chat.retention' => 'about how many messages each conversation\'s Redis stream keeps, >= 1',
        'chat.max_message_bytes' => 'largest accepted message, bytes of its JSON encoding, >= 1',
    ],
    'constants' => [],
];

/** The stubs text for the loaded extension. @throws RuntimeException listing every mismatch with DOCS */
function generate(): string
{
    if (!extension_loaded('chat')) {
        throw new RuntimeException('the chat extension is not loaded: php -n -d extension=target/release/libchat.so ' . __FILE__);
    }
    $ext = new ReflectionExtension('chat');
    $errors = [];

    $iniDocs = DOCS['ini'];
    $ini = [];
    foreach (ini_get_all('chat') as $name => $entry) {
        if (!isset($iniDocs[$name])) {
            $errors[] = "INI setting $name has no entry in DOCS['ini']";
            continue;
        }
        $ini[] = sprintf(' *   %-23s = %-24s %s', $name, var_export($entry['global_value'], true), $iniDocs[$name]);
        unset($iniDocs[$name]);
    }
    foreach ($iniDocs as $name => $_) {
        $errors[] = "DOCS['ini'] describes $name, which the extension does not register";
    }

    $classes = [];
    $classDocs = DOCS['classes'];
    $classNames = $ext->getClassNames();
    sort($classNames);
    foreach ($classNames as $name) {
        if (!isset($classDocs[$name])) {
            $errors[] = "class $name has no entry in DOCS['classes']";
            continue;
        }
        $classes[] = class_stub(new ReflectionClass($name), $classDocs[$name], $errors);
        unset($classDocs[$name]);
    }
    foreach ($classDocs as $name => $_) {
        $errors[] = "DOCS['classes'] describes $name, which the extension does not register";
    }

    $constants = [];
    $constantDocs = DOCS['constants'];
    foreach ($ext->getConstants() as $name => $value) {
        if (!isset($constantDocs[$name])) {
            $errors[] = "constant $name has no entry in DOCS['constants']";
            continue;
        }
        $constants[] = sprintf("    /** %s */\n    const %s = %s;\n", $constantDocs[$name], $name, var_export($value, true));
        unset($constantDocs[$name]);
    }
    foreach ($constantDocs as $name => $_) {
        $errors[] = "DOCS['constants'] describes $name, which the extension does not register";
    }

    $functions = [];
    $functionDocs = DOCS['functions'];
    // Registration order, which is the order docs/PHP_API.md presents them in.
    foreach ($ext->getFunctions() as $name => $function) {
        if (!isset($functionDocs[$name])) {
            $errors[] = "function $name() has no entry in DOCS['functions']";
            continue;
        }
        $functions[] = function_stub($function, $functionDocs[$name], '    ', $errors);
        unset($functionDocs[$name]);
    }
    foreach ($functionDocs as $name => $_) {
        $errors[] = "DOCS['functions'] describes $name(), which the extension does not register";
    }

    if ($errors) {
        throw new RuntimeException("the stubs cannot be generated:\n  - " . implode("\n  - ", $errors)
            . "\nDescribe the new API in DOCS in scripts/gen-stubs.php (and docs/PHP_API.md), then run: make stubs");
    }

    $out = "<?php\n";
    $out .= "/**\n";
    $out .= sprintf(" * IDE stubs of the PHP extension \"chat\" %s: signatures, types and documentation for\n", $ext->getVersion());
    $out .= " * autocompletion and static analysis (PhpStorm, Psalm, PHPStan, Intelephense).\n";
    $out .= " *\n";
    $out .= " * Generated by scripts/gen-stubs.php from the loaded extension; do not edit: run `make stubs`.\n";
    $out .= " * Never include or require this file: the extension defines all of this, and declaring it\n";
    $out .= " * again is a fatal error. IDEs index it from vendor/ (or copy it anywhere into a project).\n";
    $out .= " *\n";
    $out .= " * INI settings, all PHP_INI_ALL (php.ini, php-fpm pool php_value[...], php -d, ini_set()),\n";
    $out .= " * read on every call; defaults:\n";
    $out .= implode("\n", $ini) . "\n";
    $out .= " */\n\n";
    $out .= "namespace Chat {\n" . implode("\n", $classes) . "}\n\n";
    $out .= "namespace {\n" . implode("\n", array_merge($constants, $functions)) . "}\n";
    return $out;
}

/** @param list<string> $errors */
function function_stub(ReflectionFunctionAbstract $f, array $doc, string $indent, array &$errors): string
{
    $name = $f->getName();
    $docParams = $doc['params'] ?? [];
    $lines = prose($doc);
    if (isset($doc['example'])) {
        $lines[] = '';
        $lines[] = '```php';
        array_push($lines, ...explode("\n", $doc['example']));
        $lines[] = '```';
    }
    $lines[] = '';

    $signature = [];
    foreach ($f->getParameters() as $p) {
        $pname = $p->getName();
        if (!isset($docParams[$pname])) {
            $errors[] = "parameter \$$pname of $name() has no entry in DOCS";
            continue;
        }
        [$pdoc, $ptype] = $docParams[$pname] + [1 => null];
        $declared = type_string($p->getType());
        if ($ptype !== null && !widens($ptype, $declared)) {
            $errors[] = "DOCS gives \$$pname of $name() the type $ptype, which does not include the declared $declared";
        }
        // The signature shows what the extension accepts (string|int for ids); PHPDoc may be
        // more precise (array shapes), as IDEs and analysers read both.
        $sigType = $ptype !== null && !str_contains($ptype, '<') && !str_contains($ptype, '{') ? $ptype : $declared;
        array_push($lines, ...tag(sprintf('@param %s $%s', $ptype ?? $declared, $pname), $pdoc));
        $signature[] = param_code($p, $sigType);
        unset($docParams[$pname]);
    }
    foreach ($docParams as $pname => $_) {
        $errors[] = "DOCS describes parameter \$$pname of $name(), which it does not have";
    }

    $returnType = type_string($f->getReturnType());
    [$rtype, $rdoc] = $doc['return'];
    array_push($lines, ...tag('@return ' . $rtype, $rdoc));
    foreach ($doc['throws'] as $class => $when) {
        if (!class_exists($class)) {
            $errors[] = "DOCS says $name() throws $class, which does not exist";
        }
        array_push($lines, ...tag('@throws \\' . $class, $when));
    }

    return docblock($lines, $indent)
        . sprintf("%sfunction %s(%s): %s {}\n", $indent, $name, implode(', ', $signature), $returnType);
}

/** @param list<string> $errors */
function class_stub(ReflectionClass $c, array $doc, array &$errors): string
{
    $lines = prose($doc);
    $head = match (true) {
        $c->isInterface() => 'interface',
        $c->isTrait() => 'trait',
        default => ($c->isFinal() ? 'final ' : '') . ($c->isAbstract() ? 'abstract ' : '') . 'class',
    };
    $parent = $c->getParentClass();
    $body = [];
    foreach ($c->getReflectionConstants() as $const) {
        if ($const->getDeclaringClass()->getName() === $c->getName()) {
            $body[] = sprintf('        const %s = %s;', $const->getName(), var_export($const->getValue(), true));
        }
    }
    foreach ($c->getMethods() as $m) {
        if ($m->getDeclaringClass()->getName() !== $c->getName()) {
            continue;
        }
        $mdoc = $doc['methods'][$m->getName()] ?? null;
        if ($mdoc === null) {
            $errors[] = "method {$c->getName()}::{$m->getName()}() has no entry in DOCS";
            continue;
        }
        $body[] = rtrim(str_replace('function ', 'public ' . ($m->isStatic() ? 'static ' : '') . 'function ',
            function_stub($m, $mdoc, '        ', $errors)));
    }
    $own = array_map(fn ($i) => '\\' . $i, array_diff(
        $c->getInterfaceNames(),
        $parent ? $parent->getInterfaceNames() : [],
        ['Stringable'],   // implied by __toString
    ));
    return docblock($lines, '    ')
        . sprintf('    %s %s', $head, $c->getShortName())
        . ($parent ? ' extends \\' . $parent->getName() : '')
        . ($own ? ' implements ' . implode(', ', $own) : '')
        . ($body ? "\n    {\n" . implode("\n\n", $body) . "\n    }\n" : " {}\n");
}

function param_code(ReflectionParameter $p, string $type): string
{
    $code = $type . ' ' . ($p->isPassedByReference() ? '&' : '') . ($p->isVariadic() ? '...' : '') . '$' . $p->getName();
    if ($p->isDefaultValueAvailable()) {
        $code .= ' = ' . literal($p->getDefaultValue());
    }
    return $code;
}

function literal(mixed $value): string
{
    return match (true) {
        $value === null => 'null',
        $value === [] => '[]',
        is_bool($value) => $value ? 'true' : 'false',
        default => var_export($value, true),
    };
}

function type_string(?ReflectionType $type): string
{
    if ($type === null) {
        return 'mixed';
    }
    // '?string' reads better than 'string|null' and is what PHP's own stubs use.
    if ($type instanceof ReflectionNamedType && $type->allowsNull() && $type->getName() !== 'mixed' && $type->getName() !== 'null') {
        return '?' . $type->getName();
    }
    return (string) $type;
}

/** Whether PHPDoc type $doc includes every part of the declared type $declared. */
function widens(string $doc, string $declared): bool
{
    $base = preg_replace('/[<{].*$/s', '', $doc);
    $docParts = explode('|', str_replace('?', 'null|', $base));
    foreach (explode('|', str_replace('?', 'null|', $declared)) as $part) {
        if (!in_array($part, $docParts, true)) {
            return false;
        }
    }
    return true;
}

/** @return list<string> summary and details, wrapped */
function prose(array $doc): array
{
    $lines = explode("\n", wordwrap($doc['summary'], WIDTH));
    if (isset($doc['details'])) {
        $lines[] = '';
        array_push($lines, ...explode("\n", wordwrap($doc['details'], WIDTH)));
    }
    return $lines;
}

/**
 * A PHPDoc tag: `$head` (tag, type, variable) kept on one line, since a type broken across
 * lines no longer parses; the description wrapped after it, continuation lines indented.
 *
 * @return list<string>
 */
function tag(string $head, string $text): array
{
    // A placeholder as wide as the head, so the first line's text is wrapped to fit beside it.
    $wrapped = explode("\n", wordwrap(str_repeat('x', strlen($head)) . ' ' . $text, WIDTH, "\n    "));
    $wrapped[0] = $head . substr($wrapped[0], strlen($head));
    return $wrapped;
}

/** @param list<string> $lines */
function docblock(array $lines, string $indent): string
{
    $out = "$indent/**\n";
    foreach ($lines as $line) {
        $out .= rtrim("$indent * $line") . "\n";
    }
    return $out . "$indent */\n";
}

/** Exit code for the command line: 0 done / in sync, 1 stale or failed. */
function main(array $argv): int
{
    $mode = $argv[1] ?? '--print';
    if (php_ini_loaded_file() !== false || php_ini_scanned_files() !== false) {
        fwrite(STDERR, "run this with php -n, so the INI defaults in the stubs are the extension's own\n");
        return 1;
    }
    try {
        $stubs = generate();
    } catch (RuntimeException $e) {
        fwrite(STDERR, $e->getMessage() . "\n");
        return 1;
    }
    switch ($mode) {
        case '--print':
            echo $stubs;
            return 0;
        case '--write':
            file_put_contents(STUBS_FILE, $stubs);
            fwrite(STDERR, 'wrote ' . realpath(STUBS_FILE) . "\n");
            return 0;
        case '--check':
            if (is_file(STUBS_FILE) && file_get_contents(STUBS_FILE) === $stubs) {
                return 0;
            }
            fwrite(STDERR, realpath(dirname(STUBS_FILE)) . "/chat.stubs.php is out of date; run: make stubs\n");
            return 1;
        default:
            fwrite(STDERR, "usage: php -n -d extension=.../libchat.so scripts/gen-stubs.php [--print|--write|--check]\n");
            return 2;
    }
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(main($argv));
}
