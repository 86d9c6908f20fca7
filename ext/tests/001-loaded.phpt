--TEST--
chat is loaded: its functions, exception classes and version
--FILE--
<?php
declare(strict_types=1);

var_dump(extension_loaded('chat'));
var_dump(phpversion('chat') === (new ReflectionExtension('chat'))->getVersion());
var_dump((bool) preg_match('/^\d+\.\d+\.\d+/', phpversion('chat')));

// Which functions exist is checked by 090-stubs.phpt (the IDE stubs must list them all).
var_dump(count(get_extension_funcs('chat')) >= 6);

// The documented hierarchy: catch Chat\ChatException to catch everything, or RuntimeException.
foreach (['Chat\ChatException', 'Chat\ConnectionException', 'Chat\InvalidArgumentException'] as $class) {
    echo $class, ' < ', implode(' < ', class_parents($class)), "\n";
}

// Ordinary exception classes: constructible, catchable as RuntimeException, extensible.
final class AppChatError extends Chat\ConnectionException {}
try {
    throw new AppChatError('down', 7, new LogicException('cause'));
} catch (RuntimeException $e) {
    echo get_class($e), ' ', $e->getMessage(), ' ', $e->getCode(), ' ', get_class($e->getPrevious()), "\n";
}
$copy = unserialize(serialize(new Chat\InvalidArgumentException('bad id')));
echo get_class($copy), ': ', $copy->getMessage(), "\n";
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
Chat\ChatException < RuntimeException < Exception
Chat\ConnectionException < Chat\ChatException < RuntimeException < Exception
Chat\InvalidArgumentException < Chat\ChatException < RuntimeException < Exception
AppChatError down 7 LogicException
Chat\InvalidArgumentException: bad id
