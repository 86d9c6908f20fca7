--TEST--
IDE stubs (php-examples/chat-php/stubs/chat.stubs.php) match the loaded extension and parse
--FILE--
<?php
declare(strict_types=1);

// The generator documents every function, parameter, class and INI setting; it refuses to run
// when the extension has something it does not describe (or describes something gone).
require __DIR__ . '/../../scripts/gen-stubs.php';
$file = __DIR__ . '/../../php-examples/chat-php/stubs/chat.stubs.php';

try {
    $expected = ChatStubs\generate();
} catch (RuntimeException $e) {
    echo $e->getMessage(), "\n";
    exit;
}
$actual = (string) @file_get_contents($file);
if ($actual === $expected) {
    echo "stubs are up to date\n";
} else {
    echo "chat.stubs.php is out of date; run: make stubs\n";
    $a = explode("\n", $actual);
    $e = explode("\n", $expected);
    for ($i = 0, $shown = 0; $i < max(count($a), count($e)) && $shown < 10; $i++) {
        if (($a[$i] ?? null) !== ($e[$i] ?? null)) {
            printf("line %d\n  file:      %s\n  extension: %s\n", $i + 1, $a[$i] ?? '(end)', $e[$i] ?? '(end)');
            $shown++;
        }
    }
}

// Every function and class the extension has appears in the stubs, and they are valid PHP.
exec(escapeshellarg(PHP_BINARY) . ' -n -l ' . escapeshellarg($file), $out, $status);
echo $status === 0 ? "valid PHP\n" : implode("\n", $out) . "\n";
$missing = array_filter(
    array_merge(get_extension_funcs('chat'), (new ReflectionExtension('chat'))->getClassNames()),
    fn (string $name) => !preg_match('/(function|class) ' . preg_quote(substr(strrchr('\\' . $name, '\\'), 1), '/') . '\b/', $actual),
);
echo $missing ? 'missing: ' . implode(', ', $missing) . "\n" : "complete\n";
?>
--EXPECT--
stubs are up to date
valid PHP
complete
