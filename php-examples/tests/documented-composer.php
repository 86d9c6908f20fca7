<?php
/**
 * The Composer set-ups the docs show, turned into projects that run.sh installs: so what a
 * reader copies is what is tested, and a doc that changes is tested as it now reads.
 *
 *   php documented-composer.php <repository root> <output directory>
 *
 * Takes, from each document below, the ```json blocks and the added side of ```diff blocks
 * that declare a path repository, and the ```sh blocks that add one (`composer config
 * repositories.…`). "/path/to/chat" becomes the repository root; Packagist is turned off, as
 * it is unreachable here and must not be needed. Writes one directory per block (a
 * composer.json, and commands.sh for shell blocks) and prints one line per directory:
 * "<directory> <class the package provides> <where the block is>".
 */

declare(strict_types=1);

const DOCUMENTS = [
    'php-examples/chat-php/README.md',
    'php-examples/gateway-client/README.md',
    'php-examples/thinkphp/README.md',
    'docs/MIGRATING_FROM_GATEWAYWORKER.md',
];
const CLASSES = ['chat/gateway-client' => 'GatewayClient\Gateway', 'chat/chat-php' => 'Chat\Client'];

[, $root, $out] = $argv + [null, null, null];
if ($root === null || $out === null) {
    fwrite(STDERR, "usage: php documented-composer.php <repository root> <output directory>\n");
    exit(2);
}

/** The package a block installs, by the class that proves it is there. */
function provided_class(string $text): string
{
    foreach (CLASSES as $package => $class) {
        if (str_contains($text, "\"$package\"") || str_contains($text, "$package:")) {
            return $class;
        }
    }
    throw new RuntimeException("a block that installs none of: " . implode(', ', array_keys(CLASSES)));
}

$count = 0;
foreach (DOCUMENTS as $document) {
    $markdown = (string) file_get_contents("$root/$document");
    preg_match_all('/^ *```(json|diff|sh)\n(.*?)^ *```$/ms', $markdown, $blocks, PREG_SET_ORDER | PREG_OFFSET_CAPTURE);
    foreach ($blocks as $block) {
        [$kind, $body] = [$block[1][0], $block[2][0]];
        $line = substr_count($markdown, "\n", 0, $block[0][1]) + 1;
        $body = str_replace('/path/to/chat', $root, $body);
        $dir = sprintf('%s/%02d-%s', $out, ++$count, preg_replace('/\W+/', '-', basename(dirname($document)) . '-' . basename($document, '.md')));
        if ($kind === 'sh') {
            if (!str_contains($body, 'composer config repositories.')) {
                $count--;
                continue;
            }
            // Indented in a list item: the commands as typed.
            $commands = implode("\n", array_map('ltrim', explode("\n", $body)));
            // An app that used GatewayClient has it in its require, which the block removes.
            $composer = ['name' => 'chat-test/app', 'repositories' => [['packagist.org' => false]]];
            if (str_contains($commands, 'workerman/gatewayclient')) {
                $composer['require'] = ['workerman/gatewayclient' => '^3.1'];
            }
            @mkdir($dir, 0777, true);
            file_put_contents("$dir/commands.sh", "set -ex\n$commands");
        } else {
            if (!str_contains($body, '"type": "path"')) {
                $count--;
                continue;
            }
            if ($kind === 'diff') {
                // The file after the change: unchanged and added lines, without their markers.
                $after = [];
                foreach (explode("\n", rtrim($body)) as $l) {
                    if ($l !== '' && $l[0] !== '-') {
                        $after[] = substr($l, 1);
                    }
                }
                $body = implode("\n", $after);
            }
            $json = trim($body);
            $composer = json_decode(str_starts_with($json, '{') ? $json : "{{$json}}", true, flags: JSON_THROW_ON_ERROR);
            $composer['name'] = 'chat-test/app';
            if (array_is_list($composer['repositories'])) {
                $composer['repositories'][] = ['packagist.org' => false];
            } else {
                $composer['repositories']['packagist.org'] = false;
            }
            @mkdir($dir, 0777, true);
        }
        file_put_contents("$dir/composer.json", json_encode($composer, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");
        echo $dir, ' ', provided_class($body), " $document:$line ($kind)\n";
    }
}
if ($count === 0) {
    fwrite(STDERR, "no documented Composer set-up found\n");
    exit(1);
}
