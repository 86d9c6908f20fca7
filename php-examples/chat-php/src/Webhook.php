<?php

declare(strict_types=1);

namespace Chat;

/**
 * Checks the signature of webhooks the sidecar sends to the app (CHAT_WEBHOOK_URL), e.g.
 * `message.offline`: messages wait for a user who is offline, time for a mobile push.
 *
 * Each webhook request carries the header (Stripe's scheme)
 * `X-Chat-Signature: t=<unix seconds>,v1=<hex of HMAC-SHA256(CHAT_WEBHOOK_SECRET, "<t>.<raw body>")>`,
 * plus `X-Chat-Event` and `X-Chat-Delivery` (a delivery id, also in the body: a retried
 * delivery repeats it, so skip ids already handled). The timestamp is signed with the body, so
 * a captured request cannot be replayed once it is older than the tolerance (5 minutes by
 * default), even after the app has forgotten which delivery ids it handled. Check the signature
 * against the raw body, before decoding it:
 *
 * ```php
 * $body = (string) file_get_contents('php://input');
 * if (!Chat\Webhook::verify($body, $_SERVER['HTTP_X_CHAT_SIGNATURE'] ?? null, $secret)) {
 *     http_response_code(401);
 *     exit;
 * }
 * $event = json_decode($body, true, flags: JSON_THROW_ON_ERROR);
 * ```
 */
final class Webhook
{
    /** The header holding the signature. */
    public const HEADER = 'X-Chat-Signature';

    /** The same header as PHP presents it in `$_SERVER`. */
    public const SERVER_KEY = 'HTTP_X_CHAT_SIGNATURE';

    /** How far, in seconds, a signature's timestamp may be from now by default (5 minutes). */
    public const DEFAULT_TOLERANCE = 300;

    /** The signature scheme this class signs with and checks. */
    private const SCHEME = 'v1';

    /**
     * Whether `$signatureHeader` is a signature of `$body` under `$secret`, made within
     * `$tolerance` seconds of `$now`.
     *
     * The header is `t=<unix seconds>,v1=<hex>`; more `v1=` entries may follow (one matching is
     * enough) and entries of other schemes are ignored, so the sender can add schemes later. A
     * timestamp more than `$tolerance` seconds in the past — a replay — or in the future — a
     * clock off by that much — is refused. The comparison takes the same time however much of a
     * signature matches, so an attacker cannot guess it byte by byte; hex digits may be in
     * either case.
     *
     * @param string      $body            the raw request body, exactly as received
     * @param string|null $signatureHeader the header's value; null or "" (header missing) is false
     * @param string      $secret          the secret shared with the sidecar
     * @param int         $tolerance       seconds a signature stays valid (default 300)
     * @param int|null    $now             the current unix time; null: time()
     *
     * @throws InvalidArgumentException `$secret` is empty (with an empty key anyone could sign),
     *                                  or `$tolerance` is negative
     */
    public static function verify(
        string $body,
        ?string $signatureHeader,
        string $secret,
        int $tolerance = self::DEFAULT_TOLERANCE,
        ?int $now = null,
    ): bool {
        self::checkSecret($secret);
        if ($tolerance < 0) {
            throw new InvalidArgumentException("the webhook tolerance must be at least 0 seconds, got $tolerance");
        }
        $parsed = self::parse($signatureHeader ?? '');
        if ($parsed === null) {
            return false;
        }
        [$timestamp, $signatures] = $parsed;
        if (abs(($now ?? time()) - $timestamp) > $tolerance) {
            return false;
        }
        $expected = self::digest($body, $secret, $timestamp);
        $valid = false;
        foreach ($signatures as $given) {
            // Every candidate is compared, so the time taken does not tell which one matched.
            $valid = hash_equals($expected, strtolower($given)) || $valid;
        }
        return $valid;
    }

    /**
     * The header value for `$body` signed at `$timestamp` (default: now):
     * `t=<unix seconds>,v1=<64 lowercase hex digits>`. For tests, and for apps that forward
     * webhooks.
     *
     * @throws InvalidArgumentException `$secret` is empty, or `$timestamp` is negative
     */
    public static function sign(string $body, string $secret, ?int $timestamp = null): string
    {
        self::checkSecret($secret);
        $timestamp ??= time();
        if ($timestamp < 0) {
            throw new InvalidArgumentException("the webhook timestamp must be a unix time, got $timestamp");
        }
        return 't=' . $timestamp . ',' . self::SCHEME . '=' . self::digest($body, $secret, $timestamp);
    }

    private static function checkSecret(string $secret): void
    {
        if ($secret === '') {
            throw new InvalidArgumentException('the webhook secret is empty; configure the secret shared with the sidecar');
        }
    }

    private static function digest(string $body, string $secret, int $timestamp): string
    {
        return hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    }

    /**
     * The timestamp and the `v1` signatures of a header, or null when it has no usable
     * timestamp or no `v1` signature (a missing header, or the old `sha256=<hex>` form).
     *
     * @return array{0: int, 1: list<string>}|null
     */
    private static function parse(string $header): ?array
    {
        $timestamp = null;
        $signatures = [];
        foreach (explode(',', $header) as $item) {
            $pair = explode('=', trim($item), 2);
            if (count($pair) !== 2) {
                continue;
            }
            [$key, $value] = [strtolower($pair[0]), $pair[1]];
            if ($key === 't') {
                // One timestamp, plain digits: "t=1,t=2" or "t=+5" is not something we sent.
                if ($timestamp !== null || preg_match('/^[0-9]{1,18}$/', $value) !== 1) {
                    return null;
                }
                $timestamp = (int) $value;
            } elseif ($key === self::SCHEME) {
                $signatures[] = $value;
            }
        }
        return $timestamp === null || $signatures === [] ? null : [$timestamp, $signatures];
    }
}
