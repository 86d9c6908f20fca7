<?php
declare(strict_types=1);

namespace CustomerService;

/** Carried in the connect token as the claim "role", and kept server-side in cs_agents / cs_visitors. */
enum Role: string
{
    case Agent = 'agent';
    case Visitor = 'visitor';
}
