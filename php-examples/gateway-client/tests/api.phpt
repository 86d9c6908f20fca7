--TEST--
GatewayClient\Gateway offers GatewayClient 3.1's public API: methods, parameter names, defaults, static properties
--FILE--
<?php
declare(strict_types=1);
require __DIR__ . '/../src/Gateway.php';

use GatewayClient\Gateway;

// GatewayClient 3.1's public static methods as its source declares them: name => parameters
// (name => default, or null for a required one). Existing calls depend on order and defaults.
$expected = [
    'sendToAll' => ['message' => null, 'client_id_array' => ['default' => null], 'exclude_client_id' => ['default' => null], 'raw' => ['default' => false]],
    'sendToClient' => ['client_id' => null, 'message' => null, 'raw' => ['default' => false]],
    'sendToUid' => ['uid' => null, 'message' => null, 'raw' => ['default' => false]],
    'sendToGroup' => ['group' => null, 'message' => null, 'exclude_client_id' => ['default' => null], 'raw' => ['default' => false]],
    'bindUid' => ['client_id' => null, 'uid' => null],
    'unbindUid' => ['client_id' => null, 'uid' => null],
    'joinGroup' => ['client_id' => null, 'group' => null],
    'leaveGroup' => ['client_id' => null, 'group' => null],
    'ungroup' => ['group' => null],
    'isOnline' => ['client_id' => null],
    'isUidOnline' => ['uid' => null],
    'isUidsOnline' => ['uids' => null],
    'getClientIdByUid' => ['uid' => null],
    'batchGetClientIdByUid' => ['uids' => null],
    'getUidByClientId' => ['client_id' => null],
    'getAllClientIdList' => [],
    'getAllClientIdCount' => [],
    'getAllClientCount' => [],
    'getClientIdListByGroup' => ['group' => null],
    'getClientIdCountByGroup' => ['group' => ['default' => '']],
    'getClientCountByGroup' => ['group' => ['default' => '']],
    'batchGetClientIdCountByGroup' => ['groups' => null],
    'getUidListByGroup' => ['group' => null],
    'getUidCountByGroup' => ['group' => null],
    'getAllUidList' => [],
    'getAllUidCount' => [],
    'getAllGroupIdList' => [],
    'getAllGroupUidCount' => [],
    'getAllGroupUidList' => [],
    'getAllGroupClientIdList' => [],
    'getAllGroupClientIdCount' => [],
    'getAllClientSessions' => ['group' => ['default' => '']],
    'getClientSessionsByGroup' => ['group' => null],
    'setSession' => ['client_id' => null, 'session' => null],
    'updateSession' => ['client_id' => null, 'session' => null],
    'getSession' => ['client_id' => null],
    'closeClient' => ['client_id' => null, 'message' => ['default' => null]],
];

$class = new ReflectionClass(Gateway::class);
$problems = [];
foreach ($expected as $name => $params) {
    if (!$class->hasMethod($name)) {
        $problems[] = "missing $name()";
        continue;
    }
    $m = $class->getMethod($name);
    if (!$m->isPublic() || !$m->isStatic()) {
        $problems[] = "$name() is not public static";
    }
    $actual = [];
    foreach ($m->getParameters() as $p) {
        $actual[$p->getName()] = $p->isOptional() ? ['default' => $p->getDefaultValue()] : null;
    }
    if ($actual !== $params) {
        $problems[] = "$name(): expected " . json_encode($params) . ', got ' . json_encode($actual);
    }
}
echo $problems ? implode("\n", $problems) : 'all ' . count($expected) . ' methods match', "\n";

// Settings existing code assigns (arrays for several Register addresses included).
foreach (['registerAddress', 'secretKey', 'connectTimeout', 'persistentConnection'] as $p) {
    var_dump($class->hasProperty($p) && $class->getProperty($p)->isStatic() && $class->getProperty($p)->isPublic());
}
Gateway::$registerAddress = ['127.0.0.1:1236', '127.0.0.1:1237'];
Gateway::$secretKey = 'abc';

// Composer swaps the package in for GatewayClient and autoloads the same class name.
$composer = json_decode(file_get_contents(__DIR__ . '/../composer.json'), true);
var_dump($composer['replace']['workerman/gatewayclient'] ?? null, $composer['autoload']['psr-4']['GatewayClient\\'] ?? null);

// Malformed client ids (e.g. GatewayWorker's hex ids left in a database) answer like
// GatewayClient does for an unknown client, without touching Redis.
var_dump(Gateway::isOnline('7f00000108fc00000008'), Gateway::getSession('x y'), Gateway::sendToClient([], 'x'));
?>
--EXPECT--
all 37 methods match
bool(true)
bool(true)
bool(true)
bool(true)
string(1) "*"
string(4) "src/"
int(0)
bool(false)
bool(false)
