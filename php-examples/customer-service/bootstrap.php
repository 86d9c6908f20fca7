<?php
/**
 * Loads the classes under src/ (namespace CustomerService\, PSR-4).
 *
 * With `composer install` Composer's autoloader is used; without it (the app needs no
 * packages at run time) a four-line PSR-4 loader does the same job.
 */
declare(strict_types=1);

if (is_file(__DIR__ . '/vendor/autoload.php')) {
    require __DIR__ . '/vendor/autoload.php';
} else {
    spl_autoload_register(static function (string $class): void {
        $prefix = 'CustomerService\\';
        if (str_starts_with($class, $prefix)) {
            $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
