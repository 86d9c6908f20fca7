--TEST--
phpinfo() / php --ri chat: version, build info and the settings in effect, secrets hidden
--INI--
chat.redis_url=redis://app:s3cret@10.0.0.5:6380/2
chat.jwt_secret=top-secret-value
chat.timeout_ms=250
--FILE--
<?php
declare(strict_types=1);

ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
// Only the chat section: from its title to the next module's.
$section = substr($info, strpos($info, "\nchat\n"));
$section = substr($section, 0, strpos($section, "\n\n", strpos($section, 'chat support')));
echo $section, "\n";

var_dump(str_contains($info, 's3cret'), str_contains($info, 'top-secret-value'));
?>
--EXPECTF--
chat

chat support => enabled
version => %d.%d.%s
build => %s
build profile => %s, %s
built with => rustc %s
built for PHP => %d.%d.%d %s
redis url (chat.redis_url) => redis://app:***@10.0.0.5:6380/2
namespace (chat.namespace) => chat
timeout (chat.timeout_ms) => 250 ms
failover timeout (chat.failover_timeout_ms) => 5000 ms
retention (chat.retention) => 10000
max message bytes (chat.max_message_bytes) => 65536
jwt secret (chat.jwt_secret) => set
bool(false)
bool(false)
