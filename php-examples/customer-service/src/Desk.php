<?php
declare(strict_types=1);

namespace CustomerService;

use CustomerService\Http\ApiError;
use PDO;

/**
 * The customer-service desk: visitors, agents, and who answers whom.
 *
 * Every visitor conversation is the chat group "cs-<visitor id>"; its members are the visitor
 * and the assigned agent, so both send to it over their WebSocket and the sidecar refuses
 * everyone else. MySQL/MariaDB holds the assignment (cs_conversations, one row per visitor by
 * a unique key); Redis, through the chat functions, holds membership, presence and messages.
 *
 * Assignment is race-free under concurrent requests: it runs in a transaction that locks the
 * visitor's conversation row and then every candidate agent's row (SELECT … FOR UPDATE, always
 * conversations first and agents in primary-key order, so two assignments never deadlock on
 * each other), and picks the least busy agent while nobody else can change their load. The
 * chat group is joined before the commit and left again if the transaction rolls back.
 */
final class Desk
{
    public const NO_AGENT_NOTICE = 'No agent is online right now. Leave your message here: '
        . 'it waits for the first agent who comes online, and you will be answered in this window.';

    /** @var list<callable(): void> Redis changes to undo if the current transaction rolls back */
    private array $undo = [];

    public function __construct(
        private readonly Database $db,
        private readonly Config $config,
    ) {
    }

    // ---------------------------------------------------------------- agents

    /** Records an agent from the roster (CS_AGENTS) in cs_agents; the app's server-side role. */
    public function registerAgent(string $agentId): string
    {
        $name = $this->config->agents[$agentId]
            ?? throw new ApiError(403, 'unknown_agent', "\"$agentId\" is not an agent (see CS_AGENTS)");
        $this->db->pdo
            ->prepare('INSERT INTO cs_agents (agent_id, display_name) VALUES (?, ?)
                       ON DUPLICATE KEY UPDATE display_name = VALUES(display_name)')
            ->execute([$agentId, $name]);
        return $name;
    }

    public function isAgent(string $agentId): bool
    {
        return isset($this->config->agents[$agentId]) && $this->agentName($agentId) !== null;
    }

    public function agentName(string $agentId): ?string
    {
        $st = $this->db->pdo->prepare('SELECT display_name FROM cs_agents WHERE agent_id = ?');
        $st->execute([$agentId]);
        $name = $st->fetchColumn();
        return is_string($name) ? $name : null;
    }

    /**
     * Registered agents with at least one live connection (chat_is_online), by id.
     *
     * @return list<string>
     */
    public function onlineAgents(): array
    {
        $ids = $this->db->pdo->query('SELECT agent_id FROM cs_agents ORDER BY agent_id')->fetchAll(PDO::FETCH_COLUMN);
        return array_values(array_filter($ids, static fn (string $id): bool => chat_is_online($id)));
    }

    // ---------------------------------------------------------------- visitors

    public function isVisitor(string $visitorId): bool
    {
        return $this->visitorName($visitorId) !== null;
    }

    public function visitorName(string $visitorId): ?string
    {
        $st = $this->db->pdo->prepare('SELECT display_name FROM cs_visitors WHERE visitor_id = ?');
        $st->execute([$visitorId]);
        $name = $st->fetchColumn();
        return is_string($name) ? $name : null;
    }

    /**
     * Starts a conversation for a new visitor ($visitorId null) or resumes a returning one
     * (a closed conversation opens again), then assigns it to the least busy online agent
     * if there is one. When nobody is online the visitor's group gets a notice saying so, and
     * the conversation waits in the queue.
     *
     * @return array<string, mixed> the conversation (see conversation())
     */
    public function startVisitor(?string $visitorId, ?string $name): array
    {
        $announceWaiting = false;
        if ($visitorId === null) {
            $visitorId = Ids::newVisitorId();
            $group = Ids::group($visitorId);
            $this->transaction(function (PDO $pdo) use ($visitorId, $group, $name): void {
                $pdo->prepare('INSERT INTO cs_visitors (visitor_id, display_name) VALUES (?, ?)')
                    ->execute([$visitorId, $name ?? 'Visitor ' . substr($visitorId, -4)]);
                $pdo->prepare("INSERT INTO cs_conversations (visitor_id, group_name, status) VALUES (?, ?, 'waiting')")
                    ->execute([$visitorId, $group]);
                $this->joinGroup($visitorId, $group);
            });
            $announceWaiting = true;
        } else {
            if ($name !== null) {
                $this->db->pdo->prepare('UPDATE cs_visitors SET display_name = ? WHERE visitor_id = ?')->execute([$name, $visitorId]);
            }
            $st = $this->db->pdo->prepare("UPDATE cs_conversations SET status = 'waiting', waiting_since = NOW(6), closed_at = NULL
                                           WHERE visitor_id = ? AND status = 'closed'");
            $st->execute([$visitorId]);
            $announceWaiting = $st->rowCount() === 1;
            chat_join_group($visitorId, Ids::group($visitorId)); // no-op unless Redis lost it
        }
        $this->assign($visitorId);
        $conversation = $this->conversation($visitorId);
        if ($announceWaiting && $conversation['status'] === 'waiting') {
            chat_send_to_group(Ids::group($visitorId), self::system('waiting', self::NO_AGENT_NOTICE));
        }
        return $conversation;
    }

    // ---------------------------------------------------------------- assignment

    /** Assigns the visitor's conversation if it is waiting and an agent is online; otherwise leaves it. */
    public function assign(string $visitorId): void
    {
        $online = $this->onlineAgents();
        if ($online === []) {
            return;
        }
        $done = $this->transaction(function (PDO $pdo) use ($visitorId, $online): ?array {
            $conversation = $this->lockConversation($pdo, $visitorId);
            if ($conversation['status'] !== 'waiting') {
                return null; // assigned already (by a concurrent request, say), or closed
            }
            $agent = $this->lockLeastBusy($pdo, $online);
            return $agent === null ? null : $this->assignLocked($pdo, $conversation, $agent);
        });
        if ($done !== null) {
            $this->announceAssignment(...$done);
        }
    }

    /**
     * Assigns waiting conversations, oldest first, while an agent is online. Runs when an
     * agent's console syncs, so the first agent to come online picks up the queue.
     * Concurrent callers take different conversations (SKIP LOCKED).
     *
     * @return int how many were assigned
     */
    public function assignWaiting(int $max = 100): int
    {
        $online = $this->onlineAgents();
        $assigned = 0;
        while ($online !== [] && $assigned < $max) {
            $done = $this->transaction(function (PDO $pdo) use ($online): ?array {
                $st = $pdo->query("SELECT conversation_id, visitor_id, group_name, status, agent_id FROM cs_conversations
                                   WHERE status = 'waiting' ORDER BY waiting_since, conversation_id
                                   LIMIT 1 FOR UPDATE SKIP LOCKED");
                $conversation = $st->fetch();
                if ($conversation === false) {
                    return null;
                }
                $agent = $this->lockLeastBusy($pdo, $online);
                return $agent === null ? null : $this->assignLocked($pdo, $conversation, $agent);
            });
            if ($done === null) {
                break;
            }
            $this->announceAssignment(...$done);
            $assigned++;
        }
        return $assigned;
    }

    /**
     * Hands a conversation from $fromAgent (who must hold it) to $toAgent (who must be online):
     * the new agent joins the group, the old one leaves it, and the new agent's console loads
     * the history with chat_history().
     */
    public function transfer(string $visitorId, string $fromAgent, string $toAgent): void
    {
        if ($fromAgent === $toAgent) {
            throw new ApiError(400, 'same_agent', 'the conversation is already yours');
        }
        $toName = $this->agentName($toAgent) ?? throw new ApiError(404, 'unknown_agent', "\"$toAgent\" is not a registered agent");
        if (!chat_is_online($toAgent)) {
            throw new ApiError(409, 'agent_offline', "$toName is not online; transfer to an online agent");
        }
        $group = Ids::group($visitorId);
        $this->transaction(function (PDO $pdo) use ($visitorId, $fromAgent, $toAgent, $group): void {
            $conversation = $this->lockConversation($pdo, $visitorId);
            if ($conversation['status'] !== 'assigned' || $conversation['agent_id'] !== $fromAgent) {
                throw new ApiError(409, 'not_your_conversation', 'this conversation is not assigned to you');
            }
            $this->lockAgents($pdo, [$fromAgent, $toAgent]);
            $pdo->prepare('UPDATE cs_conversations SET agent_id = ?, assigned_at = NOW(6) WHERE conversation_id = ?')
                ->execute([$toAgent, $conversation['conversation_id']]);
            $pdo->prepare('UPDATE cs_agents SET active_conversations = GREATEST(active_conversations, 1) - 1 WHERE agent_id = ?')
                ->execute([$fromAgent]);
            $pdo->prepare('UPDATE cs_agents SET active_conversations = active_conversations + 1, last_assigned_at = NOW(6) WHERE agent_id = ?')
                ->execute([$toAgent]);
            $pdo->prepare("INSERT INTO cs_assignments (conversation_id, event, from_agent_id, to_agent_id) VALUES (?, 'transferred', ?, ?)")
                ->execute([$conversation['conversation_id'], $fromAgent, $toAgent]);
            // Join first, then leave: the visitor is never left alone in the group.
            $this->joinGroup($toAgent, $group);
            $this->leaveGroup($fromAgent, $group);
        });
        $fromName = $this->agentName($fromAgent) ?? $fromAgent;
        chat_send_to_group($group, self::system('transferred', "$fromName transferred you to $toName.", [
            'agent' => $toAgent, 'agent_name' => $toName, 'from_agent' => $fromAgent,
        ]), ['from' => $toAgent]);
        chat_push($toAgent, [
            'kind' => 'cs.assigned', 'visitor' => $visitorId, 'group' => $group, 'transferred_from' => $fromAgent,
        ]);
    }

    /** The agent ends the conversation; the visitor opens it again by writing after a reload. */
    public function close(string $visitorId, string $agentId): void
    {
        $group = Ids::group($visitorId);
        $this->transaction(function (PDO $pdo) use ($visitorId, $agentId, $group): void {
            $conversation = $this->lockConversation($pdo, $visitorId);
            if ($conversation['status'] !== 'assigned' || $conversation['agent_id'] !== $agentId) {
                throw new ApiError(409, 'not_your_conversation', 'this conversation is not assigned to you');
            }
            $this->lockAgents($pdo, [$agentId]);
            $pdo->prepare("UPDATE cs_conversations SET status = 'closed', agent_id = NULL, closed_at = NOW(6) WHERE conversation_id = ?")
                ->execute([$conversation['conversation_id']]);
            $pdo->prepare('UPDATE cs_agents SET active_conversations = GREATEST(active_conversations, 1) - 1 WHERE agent_id = ?')
                ->execute([$agentId]);
            $pdo->prepare("INSERT INTO cs_assignments (conversation_id, event, from_agent_id) VALUES (?, 'closed', ?)")
                ->execute([$conversation['conversation_id'], $agentId]);
            $this->leaveGroup($agentId, $group);
        });
        $name = $this->agentName($agentId) ?? $agentId;
        chat_send_to_group($group, self::system('closed', "$name closed the conversation. Write again any time."), ['from' => $agentId]);
    }

    // ---------------------------------------------------------------- reading

    /**
     * One visitor's conversation: status, agent, and whether the agent is online.
     *
     * @return array{visitor: array{id: string, name: string}, group: string, conversation: string,
     *               status: string, agent: ?array{id: string, name: string, online: bool}}
     */
    public function conversation(string $visitorId): array
    {
        $st = $this->db->pdo->prepare(
            'SELECT c.status, c.agent_id, v.display_name AS visitor_name, a.display_name AS agent_name
             FROM cs_conversations c JOIN cs_visitors v ON v.visitor_id = c.visitor_id
             LEFT JOIN cs_agents a ON a.agent_id = c.agent_id
             WHERE c.visitor_id = ?'
        );
        $st->execute([$visitorId]);
        $row = $st->fetch() ?: throw new ApiError(404, 'unknown_visitor', 'no such visitor');
        return [
            'visitor' => ['id' => $visitorId, 'name' => $row['visitor_name']],
            'group' => Ids::group($visitorId),
            'conversation' => Ids::conversation($visitorId),
            'status' => $row['status'],
            'agent' => $row['agent_id'] === null ? null : [
                'id' => $row['agent_id'], 'name' => $row['agent_name'], 'online' => chat_is_online($row['agent_id']),
            ],
        ];
    }

    /** Whether $agentId may read the visitor's conversation: theirs, or waiting in the queue. */
    public function agentMayRead(string $agentId, string $visitorId): bool
    {
        $st = $this->db->pdo->prepare('SELECT status, agent_id FROM cs_conversations WHERE visitor_id = ?');
        $st->execute([$visitorId]);
        $row = $st->fetch();
        return $row !== false && ($row['agent_id'] === $agentId || $row['status'] === 'waiting');
    }

    /**
     * What an agent's console shows: their conversations with unread counts (chat_unread) and
     * the visitors' online status (chat_is_online), the queue of waiting visitors, and the agents.
     *
     * @return array<string, mixed>
     */
    public function dashboard(string $agentId): array
    {
        $pdo = $this->db->pdo;
        $unread = chat_unread($agentId);
        $st = $pdo->prepare(
            "SELECT c.visitor_id, v.display_name, c.assigned_at FROM cs_conversations c
             JOIN cs_visitors v ON v.visitor_id = c.visitor_id
             WHERE c.agent_id = ? AND c.status = 'assigned' ORDER BY c.assigned_at, c.conversation_id"
        );
        $st->execute([$agentId]);
        $mine = [];
        foreach ($st->fetchAll() as $row) {
            $conv = Ids::conversation($row['visitor_id']);
            $last = chat_history($conv, 1);
            $mine[] = [
                'visitor' => ['id' => $row['visitor_id'], 'name' => $row['display_name'], 'online' => chat_is_online($row['visitor_id'])],
                'group' => Ids::group($row['visitor_id']),
                'conversation' => $conv,
                'assigned_at' => $row['assigned_at'],
                'unread' => $unread[$conv] ?? 0,
                'last_message' => $last[0] ?? null,
            ];
        }
        $queue = [];
        $st = $pdo->query(
            "SELECT c.visitor_id, v.display_name, c.waiting_since FROM cs_conversations c
             JOIN cs_visitors v ON v.visitor_id = c.visitor_id
             WHERE c.status = 'waiting' ORDER BY c.waiting_since, c.conversation_id LIMIT 100"
        );
        foreach ($st->fetchAll() as $row) {
            $history = chat_history(Ids::conversation($row['visitor_id']), 100);
            $fromVisitor = array_filter($history, static fn (array $m): bool => $m['from'] === $row['visitor_id']);
            $queue[] = [
                'visitor' => ['id' => $row['visitor_id'], 'name' => $row['display_name'], 'online' => chat_is_online($row['visitor_id'])],
                'group' => Ids::group($row['visitor_id']),
                'conversation' => Ids::conversation($row['visitor_id']),
                'waiting_since' => $row['waiting_since'],
                'messages' => count($fromVisitor),
                'last_message' => $history === [] ? null : end($history),
            ];
        }
        $agents = [];
        foreach ($pdo->query('SELECT agent_id, display_name, active_conversations FROM cs_agents ORDER BY agent_id') as $row) {
            $agents[] = [
                'id' => $row['agent_id'], 'name' => $row['display_name'],
                'online' => chat_is_online($row['agent_id']), 'active' => (int) $row['active_conversations'],
            ];
        }
        return ['conversations' => $mine, 'queue' => $queue, 'agents' => $agents];
    }

    // ---------------------------------------------------------------- internals

    /**
     * Runs $work in a transaction (retried on deadlock); chat group changes made through
     * joinGroup()/leaveGroup() inside it are undone when it rolls back.
     *
     * @template T
     * @param callable(PDO): T $work
     * @return T
     */
    private function transaction(callable $work): mixed
    {
        return $this->db->transaction(function (PDO $pdo) use ($work): mixed {
            $this->undo = [];
            return $work($pdo);
        }, function (): void {
            foreach (array_reverse($this->undo) as $step) {
                try {
                    $step();
                } catch (\Chat\ChatException $e) {
                    error_log('customer-service: could not undo a group change: ' . $e->getMessage());
                }
            }
            $this->undo = [];
        });
    }

    private function joinGroup(string $uid, string $group): void
    {
        if (chat_join_group($uid, $group)) {
            $this->undo[] = static fn () => chat_leave_group($uid, $group);
        }
    }

    private function leaveGroup(string $uid, string $group): void
    {
        if (chat_leave_group($uid, $group)) {
            $this->undo[] = static fn () => chat_join_group($uid, $group);
        }
    }

    /** @return array{conversation_id: int, visitor_id: string, group_name: string, status: string, agent_id: ?string} */
    private function lockConversation(PDO $pdo, string $visitorId): array
    {
        $st = $pdo->prepare('SELECT conversation_id, visitor_id, group_name, status, agent_id FROM cs_conversations
                             WHERE visitor_id = ? FOR UPDATE');
        $st->execute([$visitorId]);
        return $st->fetch() ?: throw new ApiError(404, 'unknown_visitor', 'no conversation for this visitor');
    }

    /**
     * Locks the agents' rows in primary-key order.
     *
     * @param list<string> $agentIds
     * @return list<array{agent_id: string, display_name: string, active_conversations: int, last_assigned_at: ?string}>
     */
    private function lockAgents(PDO $pdo, array $agentIds): array
    {
        $st = $pdo->prepare('SELECT agent_id, display_name, active_conversations, last_assigned_at FROM cs_agents
                             WHERE agent_id IN (' . Database::placeholders(count($agentIds)) . ')
                             ORDER BY agent_id FOR UPDATE');
        $st->execute(array_values($agentIds));
        return $st->fetchAll();
    }

    /**
     * Locks the candidates and returns the least busy: fewest open conversations, then the one
     * whose last assignment is oldest (round robin among equals), then by id.
     *
     * @param list<string> $online
     * @return array{agent_id: string, display_name: string, active_conversations: int, last_assigned_at: ?string}|null
     */
    private function lockLeastBusy(PDO $pdo, array $online): ?array
    {
        $agents = $this->lockAgents($pdo, $online);
        usort($agents, static fn (array $a, array $b): int =>
            [$a['active_conversations'], $a['last_assigned_at'] ?? '', $a['agent_id']]
            <=> [$b['active_conversations'], $b['last_assigned_at'] ?? '', $b['agent_id']]);
        if ($this->config->assignPauseMs > 0) {
            // Test hook (CS_ASSIGN_PAUSE_MS): widens the window between choosing and recording,
            // where concurrent assignments would pick the same agent were the rows not locked.
            usleep($this->config->assignPauseMs * 1000);
        }
        return $agents[0] ?? null;
    }

    /**
     * @param array{conversation_id: int, visitor_id: string, group_name: string} $conversation locked, waiting
     * @param array{agent_id: string, display_name: string} $agent locked
     * @return array{0: string, 1: string, 2: string} what announceAssignment() needs
     */
    private function assignLocked(PDO $pdo, array $conversation, array $agent): array
    {
        $st = $pdo->prepare("UPDATE cs_conversations SET status = 'assigned', agent_id = ?, assigned_at = NOW(6)
                             WHERE conversation_id = ? AND status = 'waiting'");
        $st->execute([$agent['agent_id'], $conversation['conversation_id']]);
        if ($st->rowCount() !== 1) {
            throw new \LogicException('a locked waiting conversation changed under the lock');
        }
        $pdo->prepare('UPDATE cs_agents SET active_conversations = active_conversations + 1, last_assigned_at = NOW(6) WHERE agent_id = ?')
            ->execute([$agent['agent_id']]);
        $pdo->prepare("INSERT INTO cs_assignments (conversation_id, event, to_agent_id) VALUES (?, 'assigned', ?)")
            ->execute([$conversation['conversation_id'], $agent['agent_id']]);
        $this->joinGroup($agent['agent_id'], $conversation['group_name']);
        return [$conversation['visitor_id'], $agent['agent_id'], $agent['display_name']];
    }

    /** Tells the visitor (a system message in the group) and the agent (a message to their inbox). */
    private function announceAssignment(string $visitorId, string $agentId, string $agentName): void
    {
        $group = Ids::group($visitorId);
        chat_send_to_group($group, self::system('assigned', "$agentName joined the conversation.", [
            'agent' => $agentId, 'agent_name' => $agentName,
        ]), ['from' => $agentId]);
        chat_push($agentId, ['kind' => 'cs.assigned', 'visitor' => $visitorId, 'group' => $group]);
    }

    /**
     * A notice in the conversation, stored with it: the visitor's widget and the agent's console
     * show it as a status line. Sent "from" the agent it concerns, so it is not unread for them.
     *
     * @param array<string, string> $extra
     * @return array<string, string>
     */
    private static function system(string $event, string $text, array $extra = []): array
    {
        return ['kind' => 'system', 'event' => $event, 'text' => $text] + $extra;
    }
}
