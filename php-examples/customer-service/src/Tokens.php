<?php
declare(strict_types=1);

namespace CustomerService;

use CustomerService\Http\ApiError;

/**
 * Connect tokens double as API credentials: chat_token() mints them (HS256, signed with
 * chat.jwt_secret) with the claim "role", the browser presents them to the sidecar and, as
 * `Authorization: Bearer …`, to this app's API, which checks them with the same secret.
 */
final class Tokens
{
    public function __construct(private readonly Config $config)
    {
    }

    /** @param array<string, string> $claims more claims, e.g. a display name */
    public function issue(string $uid, Role $role, array $claims = []): string
    {
        return chat_token($uid, $this->config->tokenTtl, ['role' => $role->value] + $claims);
    }

    /** @throws ApiError 401 when the token is not one this app minted, or has expired */
    public function verify(string $token): Identity
    {
        if ($this->config->jwtSecret === '') {
            throw new ApiError(500, 'misconfigured', 'chat.jwt_secret is not set');
        }
        $parts = explode('.', $token);
        if (count($parts) !== 3) {
            throw new ApiError(401, 'bad_token', 'the token is not a JWT');
        }
        [$head, $body, $signature] = $parts;
        $expected = self::base64url(hash_hmac('sha256', "$head.$body", $this->config->jwtSecret, true));
        if (!hash_equals($expected, $signature)) {
            throw new ApiError(401, 'bad_token', 'the token signature is not valid');
        }
        $header = json_decode(self::unbase64url($head), true);
        $claims = json_decode(self::unbase64url($body), true);
        if (!is_array($header) || ($header['alg'] ?? null) !== 'HS256' || !is_array($claims)) {
            throw new ApiError(401, 'bad_token', 'the token is malformed');
        }
        if (!is_int($claims['exp'] ?? null) || $claims['exp'] <= time()) {
            throw new ApiError(401, 'token_expired', 'the token has expired; start again');
        }
        $role = is_string($claims['role'] ?? null) ? Role::tryFrom($claims['role']) : null;
        if (!is_string($claims['sub'] ?? null) || $role === null) {
            throw new ApiError(401, 'bad_token', 'the token has no subject or no role');
        }
        return new Identity($claims['sub'], $role);
    }

    private static function base64url(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    private static function unbase64url(string $text): string
    {
        return (string) base64_decode(strtr($text, '-_', '+/'), true);
    }
}
