<?php
/**
 * The JSON API front controller: api.php?action=<name> (see README.md).
 */
declare(strict_types=1);

require __DIR__ . '/../bootstrap.php';

CustomerService\Api::run();
