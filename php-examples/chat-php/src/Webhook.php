<?php

declare(strict_types=1);

namespace Chat;

/**
 * Checks the signature of webhooks the sidecar sends to the app (CHAT_WEBHOOK_URL), e.g.
 * `message.offline`: messages wait for a user who is offline, time for a mobile push.
 *
 * Each webhook request carries the header
 * `X-Chat-Signature: sha256=<hex of HMAC-SHA256(CHAT_WEBHOOK_SECRET, raw request body)>`,
 * plus `X-Chat-Event` and `X-Chat-Delivery` (a delivery id, also in the body: a retried
 * delivery repeats it, so skip ids already handled). Check the signature against the raw body,
 * before decoding it:
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

    private const PREFIX = 'sha256=';

    /**
     * Whether `$signatureHeader` is the signature of `$body` under `$secret`.
     *
     * The comparison takes the same time however much of the signature matches, so an attacker
     * cannot guess it byte by byte. Hex digits may be in either case.
     *
     * @param string      $body            the raw request body, exactly as received
     * @param string|null $signatureHeader the header's value; null or "" (header missing) is false
     * @param string      $secret          the secret shared with the sidecar
     *
     * @throws InvalidArgumentException `$secret` is empty: with an empty key anyone could sign
     */
    public static function verify(string $body, ?string $signatureHeader, string $secret): bool
    {
        $expected = self::sign($body, $secret);
        if ($signatureHeader === null) {
            return false;
        }
        $given = trim($signatureHeader);
        // Scheme name and hex digits are case-insensitive; normalise before the constant-time
        // comparison rather than branching on the contents.
        return hash_equals($expected, strtolower($given));
    }

    /**
     * The header value for `$body`: `sha256=<64 lowercase hex digits>`. For tests, and for
     * apps that forward webhooks.
     *
     * @throws InvalidArgumentException `$secret` is empty
     */
    public static function sign(string $body, string $secret): string
    {
        if ($secret === '') {
            throw new InvalidArgumentException('the webhook secret is empty; configure the secret shared with the sidecar');
        }
        return self::PREFIX . hash_hmac('sha256', $body, $secret);
    }
}
