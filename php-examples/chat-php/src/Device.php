<?php

declare(strict_types=1);

namespace Chat;

/**
 * One live connection of a user, as {@see Client::devices()} returns it.
 */
final class Device
{
    /**
     * @param string $id          connection id, unique across sidecar nodes
     * @param string $node        id of the sidecar node holding the connection
     * @param string $device      the label the client connected with (`?device=`), or "unknown"
     * @param string $transport   "websocket"
     * @param int    $connectedAt when it connected, milliseconds since the Unix epoch
     */
    public function __construct(
        public readonly string $id,
        public readonly string $node,
        public readonly string $device,
        public readonly string $transport,
        public readonly int $connectedAt,
    ) {
    }

    /**
     * From one row of `chat_user_devices()`.
     *
     * @param array{id: string, node: string, device: string, transport: string, connected_at: int} $row
     */
    public static function fromArray(array $row): self
    {
        return new self($row['id'], $row['node'], $row['device'], $row['transport'], $row['connected_at']);
    }

    /** {@see $connectedAt} as a date in the default time zone, to the millisecond. */
    public function connectedSince(): \DateTimeImmutable
    {
        $at = \DateTimeImmutable::createFromFormat(
            'U.v',
            sprintf('%d.%03d', intdiv($this->connectedAt, 1000), $this->connectedAt % 1000),
        ) ?: throw new \LogicException("connected_at {$this->connectedAt} is not a time");
        // 'U' parses into UTC; show it the way the app shows every other date.
        return $at->setTimezone(new \DateTimeZone(date_default_timezone_get()));
    }
}
