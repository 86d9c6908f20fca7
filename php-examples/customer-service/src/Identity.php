<?php
declare(strict_types=1);

namespace CustomerService;

/** Who is calling the API: the token's subject and role. */
final class Identity
{
    public function __construct(
        public readonly string $uid,
        public readonly Role $role,
    ) {
    }
}
