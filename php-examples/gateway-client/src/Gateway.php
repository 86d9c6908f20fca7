<?php

/**
 * GatewayClient\Gateway backed by the chat extension: the public static API of Workerman's
 * GatewayClient 3.1, so code written against it runs unchanged. See
 * docs/MIGRATING_FROM_GATEWAYWORKER.md for the mapping of concepts and the differences.
 */

declare(strict_types=1);

namespace GatewayClient;

/**
 * Push to and query the connections of chat-sidecar nodes, with GatewayClient's method names,
 * argument order, defaults and return shapes.
 *
 * - A client_id is a connection id of the sidecar (`welcome.conn`, `<node>-<n>`).
 * - Groups are per user here (GatewayWorker's are per connection): joinGroup($client_id, $g)
 *   makes the connection's user a member, so all of that user's connections are in the group.
 * - Each call is one Redis round trip (a few are two, noted below) instead of one request to
 *   every gateway process; there is no Register service to reach.
 * - Errors throw Chat\ChatException (a \RuntimeException, so `catch (\Exception $e)` still
 *   catches them): Chat\ConnectionException when Redis is unreachable.
 *
 * Messages: with $raw (or {@see Gateway::$verbatimFrames}) the client receives $message itself
 * as the WebSocket text frame, live only, exactly as GatewayWorker delivers it ($message must
 * then be JSON text, or an array that is JSON-encoded). Without it the client receives this
 * project's frames: sendToUid() and sendToGroup() store the message (a "message" frame, resumed
 * after reconnects), the other sends are live `{"type":"event","data":$message}` frames.
 */
class Gateway
{
    /**
     * GatewayWorker's Register address. Accepted and ignored: the chat extension reaches Redis
     * through the `chat.redis_url` INI setting.
     *
     * @var string|string[]
     */
    public static $registerAddress = '127.0.0.1:1236';

    /** Accepted and ignored (GatewayWorker's shared secret; Redis access is the credential here). */
    public static $secretKey = '';

    /** Accepted and ignored; the extension's timeout is `chat.timeout_ms`. */
    public static $connectTimeout = 3;

    /** Accepted and ignored; the extension always keeps one Redis connection per process. */
    public static $persistentConnection = false;

    /** Accepted and ignored (GatewayClient 3.0's cache of gateway addresses). */
    public static $registerAddressCache = [];

    /**
     * Deliver every message as GatewayWorker does: the exact frame, live only, as if every
     * send passed `$raw = true`. For frontends written for GatewayWorker that parse frames
     * themselves; leave it false for frontends using this project's frames (chat.js).
     */
    public static bool $verbatimFrames = false;

    /**
     * Sends to every connection, or to those in $client_id_array; live only.
     *
     * @param mixed                      $message           the message (see the class comment)
     * @param string[]|null              $client_id_array   only these connections; [] sends nothing
     * @param string|string[]|null       $exclude_client_id not to these connections
     * @param bool                       $raw               send $message itself as the frame
     */
    public static function sendToAll($message, $client_id_array = null, $exclude_client_id = null, $raw = false): void
    {
        $options = ['raw' => self::raw($raw)];
        $exclude = $exclude_client_id === null || $exclude_client_id === '' ? [] : array_map('strval', (array) $exclude_client_id);
        if ($client_id_array !== null) {
            if (!is_array($client_id_array) || $client_id_array === []) {
                return;
            }
            $only = array_values(array_diff(array_map('strval', $client_id_array), $exclude));
            if ($only === []) {
                return;
            }
            $options['only'] = $only;
        } elseif ($exclude !== []) {
            $options['except'] = $exclude;
        }
        \chat_event('all', $message, $options);
    }

    /**
     * Sends to one connection; live only.
     *
     * @param string $client_id the connection
     * @param mixed  $message   the message (see the class comment)
     * @param bool   $raw       send $message itself as the frame
     * @return bool false when the connection is not live
     */
    public static function sendToClient($client_id, $message, $raw = false): bool
    {
        $id = self::clientId($client_id);
        return $id !== null && \chat_event("c:$id", $message, ['raw' => self::raw($raw)]) === 1;
    }

    /**
     * Sends to every connection of one or more users.
     *
     * Without $raw the message is stored in each user's inbox and delivered once, in order, also
     * to connections that come later (chat_push); one round trip per user. With $raw it is live
     * only, as in GatewayWorker.
     *
     * @param string|int|array<string|int> $uid     the user(s)
     * @param mixed                        $message the message (see the class comment)
     * @param bool                         $raw     send $message itself as the frame, live only
     */
    public static function sendToUid($uid, $message, $raw = false): void
    {
        $raw = self::raw($raw);
        foreach ((array) $uid as $one) {
            if ($raw) {
                \chat_event("u:$one", $message, ['raw' => true]);
            } else {
                \chat_push($one, $message);
            }
        }
    }

    /**
     * Sends to the members of one or more groups.
     *
     * Without $raw and without $exclude_client_id the message is stored in the group's stream
     * and delivered once, in order, to every member (chat_send_to_group). With either, it is
     * live only, to the members' current connections.
     *
     * @param string|int|array<string|int> $group             the group(s); empty values send nothing
     * @param mixed                        $message           the message (see the class comment)
     * @param string|string[]|null         $exclude_client_id not to these connections
     * @param bool                         $raw               send $message itself as the frame, live only
     * @return false|null false for an empty $group, as GatewayClient
     */
    public static function sendToGroup($group, $message, $exclude_client_id = null, $raw = false)
    {
        if (empty($group)) {
            return false;
        }
        $raw = self::raw($raw);
        $exclude = $exclude_client_id === null || $exclude_client_id === '' ? [] : array_map('strval', (array) $exclude_client_id);
        foreach ((array) $group as $one) {
            if (!$raw && $exclude === []) {
                \chat_send_to_group($one, $message);
            } else {
                \chat_event("g:$one", $message, $exclude === [] ? ['raw' => $raw] : ['raw' => $raw, 'except' => $exclude]);
            }
        }
        return null;
    }

    /**
     * Binds a connection to a user.
     *
     * A connection that authenticated with a token already belongs to its user: binding it to
     * that user is a no-op (true). An anonymous connection (sidecar setting
     * CHAT_ANONYMOUS_CONNECT=true) becomes that user's, on whichever node holds it; this
     * returns once that node has subscribed it to the user's conversations (at most 5 s), so a
     * sendToUid() right after it reaches the connection. A connection cannot change users:
     * binding one of another user throws.
     *
     * @param string     $client_id the connection
     * @param string|int $uid       the user
     * @return bool false when the connection is not live
     * @throws \Chat\ChatException the connection belongs to another user, or its node did not confirm in time
     */
    public static function bindUid($client_id, $uid): bool
    {
        $id = self::clientId($client_id);
        return $id !== null && \chat_bind($id, $uid);
    }

    /**
     * Unbinds a connection from its user: the connection is closed (close code 4004, reason
     * "unbound"), since a connection's user cannot change here.
     *
     * @param string     $client_id the connection
     * @param string|int $uid       its user; nothing happens when the connection is not this user's
     * @return bool false when the connection is not live or not this user's
     */
    public static function unbindUid($client_id, $uid): bool
    {
        $client = self::client($client_id);
        if ($client === null || $client['uid'] !== (string) $uid) {
            return false;
        }
        return \chat_client_close($client['id'], 'unbound');
    }

    /**
     * Puts the connection's user into a group (groups are per user here: all of the user's
     * connections receive the group). Two round trips.
     *
     * @param string     $client_id the connection
     * @param string|int $group     the group
     * @return bool false when the connection is not live or has no user yet
     */
    public static function joinGroup($client_id, $group): bool
    {
        $uid = self::getUidByClientId($client_id);
        if ($uid === null) {
            return false;
        }
        \chat_join_group($uid, $group);
        return true;
    }

    /**
     * Takes the connection's user out of a group (all of the user's connections leave it).
     * Two round trips.
     *
     * @param string     $client_id the connection
     * @param string|int $group     the group
     * @return bool false when the connection is not live or has no user yet
     */
    public static function leaveGroup($client_id, $group): bool
    {
        $uid = self::getUidByClientId($client_id);
        if ($uid === null) {
            return false;
        }
        \chat_leave_group($uid, $group);
        return true;
    }

    /**
     * Dissolves a group: every member leaves it. One round trip per member.
     *
     * @param string|int $group the group
     * @return false|null false for an empty $group, as GatewayClient
     */
    public static function ungroup($group)
    {
        if (empty($group)) {
            return false;
        }
        foreach (\chat_group_members($group) as $uid) {
            \chat_leave_group($uid, $group);
        }
        return null;
    }

    /**
     * Whether a connection is live.
     *
     * @param string $client_id the connection
     * @return int 1 or 0, as GatewayClient
     */
    public static function isOnline($client_id): int
    {
        return self::client($client_id) === null ? 0 : 1;
    }

    /**
     * Whether a user has at least one live connection.
     *
     * @param string|int $uid the user
     * @return int 1 or 0, as GatewayClient
     */
    public static function isUidOnline($uid): int
    {
        return self::getClientIdByUid($uid) === [] ? 0 : 1;
    }

    /**
     * Whether each of several users has a live connection.
     *
     * @param array<string|int> $uids the users
     * @return array<string|int, int> uid => 1 or 0, for every user asked about
     */
    public static function isUidsOnline(array $uids): array
    {
        return array_map(static fn (array $ids): int => $ids === [] ? 0 : 1, self::batchGetClientIdByUid($uids));
    }

    /**
     * The live connections of a user.
     *
     * @param string|int $uid the user
     * @return list<string> client ids ([] when offline)
     */
    public static function getClientIdByUid($uid): array
    {
        return \chat_user_clients([$uid])[(string) $uid] ?? [];
    }

    /**
     * The live connections of several users, in one round trip.
     *
     * @param array<string|int> $uids the users
     * @return array<string|int, list<string>> uid => client ids, for every user asked about
     */
    public static function batchGetClientIdByUid(array $uids): array
    {
        return \chat_user_clients($uids);
    }

    /**
     * The user of a connection.
     *
     * @param string $client_id the connection
     * @return string|null null when the connection is not live or has no user yet
     */
    public static function getUidByClientId($client_id)
    {
        return self::client($client_id)['uid'] ?? null;
    }

    /**
     * Every live connection.
     *
     * @return array<string, string> client id => client id
     */
    public static function getAllClientIdList(): array
    {
        $ids = array_keys(\chat_clients());
        return array_combine($ids, $ids);
    }

    /** The number of live connections. */
    public static function getAllClientIdCount(): int
    {
        return \chat_client_count();
    }

    /** Alias of {@see Gateway::getAllClientIdCount()}. */
    public static function getAllClientCount(): int
    {
        return \chat_client_count();
    }

    /**
     * The live connections of a group's members.
     *
     * @param string|int|array<string|int> $group the group (or several: their union)
     * @return array<string, string> client id => client id
     */
    public static function getClientIdListByGroup($group): array
    {
        if (empty($group)) {
            return [];
        }
        $out = [];
        foreach ((array) $group as $one) {
            foreach (array_keys(\chat_clients($one)) as $id) {
                $out[$id] = $id;
            }
        }
        return $out;
    }

    /**
     * The number of live connections of a group's members.
     *
     * @param string|int $group the group; '' = every connection
     */
    public static function getClientIdCountByGroup($group = ''): int
    {
        return \chat_client_count($group === '' || $group === null ? null : $group);
    }

    /** Alias of {@see Gateway::getClientIdCountByGroup()}. */
    public static function getClientCountByGroup($group = ''): int
    {
        return self::getClientIdCountByGroup($group);
    }

    /**
     * Live connections per group, in one round trip.
     *
     * @param array<string|int> $groups the groups
     * @return array<string|int, int> group => number of live connections of its members
     */
    public static function batchGetClientIdCountByGroup(array $groups): array
    {
        return \chat_group_client_counts($groups);
    }

    /**
     * The online members of a group.
     *
     * @param string|int|array<string|int> $group the group (or several: their union)
     * @return array<string|int, string> uid => uid
     */
    public static function getUidListByGroup($group): array
    {
        if (empty($group)) {
            return [];
        }
        $out = [];
        foreach ((array) $group as $one) {
            foreach (\chat_online_users($one) as $uid) {
                $out[$uid] = $uid;
            }
        }
        return $out;
    }

    /**
     * The number of online members of a group.
     *
     * @param string|int $group the group
     */
    public static function getUidCountByGroup($group): int
    {
        return empty($group) ? 0 : \chat_online_count($group);
    }

    /**
     * Every user with a live connection.
     *
     * @return array<string|int, string> uid => uid
     */
    public static function getAllUidList(): array
    {
        $uids = \chat_online_users();
        return $uids === [] ? [] : array_combine($uids, $uids);
    }

    /** The number of users with a live connection. */
    public static function getAllUidCount(): int
    {
        return \chat_online_count();
    }

    /**
     * Groups with at least one online member.
     *
     * @return array<string|int, string> group => group
     */
    public static function getAllGroupIdList(): array
    {
        $groups = array_map('strval', array_keys(\chat_online_groups()));
        return $groups === [] ? [] : array_combine($groups, $groups);
    }

    /**
     * Online members per group.
     *
     * @return array<string|int, int> group => number of online members
     */
    public static function getAllGroupUidCount(): array
    {
        return array_map('count', \chat_online_groups());
    }

    /**
     * Online members of every group with at least one.
     *
     * @return array<string|int, array<string|int, string>> group => [uid => uid]
     */
    public static function getAllGroupUidList(): array
    {
        $out = [];
        foreach (\chat_online_groups() as $group => $members) {
            foreach (array_keys($members) as $uid) {
                $out[$group][$uid] = (string) $uid;
            }
        }
        return $out;
    }

    /**
     * Live connections of every group's members.
     *
     * @return array<string|int, array<string, string>> group => [client id => client id]
     */
    public static function getAllGroupClientIdList(): array
    {
        $out = [];
        foreach (\chat_online_groups() as $group => $members) {
            foreach ($members as $ids) {
                foreach ($ids as $id) {
                    $out[$group][$id] = $id;
                }
            }
        }
        return $out;
    }

    /**
     * Live connections per group.
     *
     * @return array<string|int, int> group => number of live connections of its members
     */
    public static function getAllGroupClientIdCount(): array
    {
        return array_map('count', self::getAllGroupClientIdList());
    }

    /**
     * Sessions of every live connection, or of a group's members' connections.
     *
     * @param string|int|null $group the group; null or '' = every connection
     * @return array<string, array> client id => session ([] when none was set)
     */
    public static function getAllClientSessions($group = ''): array
    {
        return \chat_sessions($group === '' || $group === null ? null : $group);
    }

    /**
     * Sessions of a group's members' live connections.
     *
     * @param string|int $group the group
     * @return array<string, array> client id => session
     */
    public static function getClientSessionsByGroup($group): array
    {
        return empty($group) ? [] : \chat_sessions($group);
    }

    /**
     * Replaces a connection's session (kept in Redis while the connection is live).
     *
     * @param string $client_id the connection
     * @param array  $session   the session, at most 64 KiB once serialize()d
     * @return bool false when the connection is not live
     */
    public static function setSession($client_id, array $session): bool
    {
        $id = self::clientId($client_id);
        return $id !== null && \chat_set_session($id, $session);
    }

    /**
     * Merges into a connection's session (array_replace_recursive), atomically.
     *
     * @param string $client_id the connection
     * @param array  $session   the keys to change
     * @return bool false when the connection is not live
     */
    public static function updateSession($client_id, array $session): bool
    {
        $id = self::clientId($client_id);
        return $id !== null && \chat_update_session($id, $session);
    }

    /**
     * A connection's session.
     *
     * @param string $client_id the connection
     * @return array|null|false the session ([] when none was set), null when the connection is
     *                          not live, false for a malformed client id (as GatewayClient)
     */
    public static function getSession($client_id)
    {
        $id = self::clientId($client_id);
        return $id === null ? false : \chat_session($id);
    }

    /**
     * Closes a connection (close code 4004), after sending it $message when given.
     *
     * @param string     $client_id the connection
     * @param mixed|null $message   sent to it first (see the class comment)
     * @return bool false when the connection is not live
     */
    public static function closeClient($client_id, $message = null): bool
    {
        $id = self::clientId($client_id);
        if ($id === null) {
            return false;
        }
        if ($message !== null) {
            self::sendToClient($id, $message);
        }
        return \chat_client_close($id);
    }

    /** GatewayClient's misspelt alias of closeClient() without a message. */
    public static function destoryClient($client_id): bool
    {
        return self::closeClient($client_id);
    }

    /** Deprecated GatewayClient alias of {@see Gateway::getAllClientSessions()}. */
    public static function getAllClientInfo($group = ''): array
    {
        return self::getAllClientSessions($group);
    }

    /** Deprecated GatewayClient alias of {@see Gateway::getClientSessionsByGroup()}. */
    public static function getClientInfoByGroup($group): array
    {
        return self::getClientSessionsByGroup($group);
    }

    /** @param bool $raw the caller's $raw */
    private static function raw($raw): bool
    {
        return (bool) $raw || self::$verbatimFrames;
    }

    /**
     * The client id, or null when it cannot be one (GatewayClient answers 0/false/null for
     * those rather than throwing, e.g. for ids stored by GatewayWorker before the switch).
     */
    private static function clientId($client_id): ?string
    {
        return self::wellFormed($client_id) ? (string) $client_id : null;
    }

    /** @return array{id: string, uid: ?string}|null */
    private static function client($client_id): ?array
    {
        if (!self::wellFormed($client_id)) {
            return null;
        }
        return \chat_client((string) $client_id);
    }

    private static function wellFormed($client_id): bool
    {
        return (is_string($client_id) || is_int($client_id))
            && preg_match('/\A[A-Za-z0-9_.@+-]{1,126}-[0-9a-z]{1,13}\z/', (string) $client_id) === 1;
    }
}
