<?php
declare(strict_types=1);

namespace CustomerService;

use CustomerService\Http\ApiError;
use CustomerService\Http\JsonResponse;
use CustomerService\Http\Request;

/**
 * The JSON API: `api.php?action=<name>`. Callers authenticate with the connect token the API
 * gave them (`Authorization: Bearer <token>`); its "role" claim says visitor or agent, and the
 * app checks that role against its own tables too. README.md lists every action.
 */
final class Api
{
    private const ACTIONS = [
        'health' => ['GET', 'health'],
        'visitor.start' => ['POST', 'visitorStart'],
        'visitor.status' => ['GET', 'visitorStatus'],
        'agent.login' => ['POST', 'agentLogin'],
        'agent.sync' => ['POST', 'agentSync'],
        'conversation.history' => ['GET', 'history'],
        'conversation.transfer' => ['POST', 'transfer'],
        'conversation.close' => ['POST', 'close'],
    ];

    public function __construct(private readonly App $app)
    {
    }

    /** Answers the current request; every failure becomes a JSON error with a fitting status. */
    public static function run(): void
    {
        try {
            $request = Request::fromGlobals();
            $api = new self(App::fromEnvironment());
            JsonResponse::send(200, $api->handle($request));
        } catch (ApiError $e) {
            JsonResponse::error($e);
        } catch (\Chat\InvalidArgumentException $e) {
            JsonResponse::error(new ApiError(400, 'bad_parameter', $e->getMessage()));
        } catch (\Chat\ChatException $e) {
            error_log('customer-service: chat: ' . $e->getMessage());
            JsonResponse::error(new ApiError(503, 'chat_unavailable', 'the chat service is unavailable: ' . $e->getMessage()));
        } catch (\PDOException $e) {
            error_log('customer-service: database: ' . $e->getMessage());
            JsonResponse::error(new ApiError(503, 'database_unavailable', 'the database is unavailable; try again'));
        } catch (\Throwable $e) {
            error_log('customer-service: ' . $e);
            JsonResponse::error(new ApiError(500, 'internal', 'internal error'));
        }
    }

    /** @return array<string, mixed> */
    public function handle(Request $r): array
    {
        $action = $r->query['action'] ?? null;
        if (!is_string($action) || !isset(self::ACTIONS[$action])) {
            throw new ApiError(404, 'unknown_action', 'unknown action; known: ' . implode(', ', array_keys(self::ACTIONS)));
        }
        [$method, $handler] = self::ACTIONS[$action];
        if ($r->method !== $method) {
            throw new ApiError(405, 'method_not_allowed', "$action takes $method", ['Allow' => $method]);
        }
        return $this->$handler($r);
    }

    /** @return array<string, mixed> */
    private function health(Request $r): array
    {
        return ['ok' => true, 'agents_online' => count($this->app->desk->onlineAgents())];
    }

    /**
     * A visitor opens the widget. Without a token: a new visitor. With their token: the same
     * visitor again (a closed conversation reopens). Answers with a fresh token, the group to
     * send to, the assigned agent or a notice that nobody is online, and the history.
     *
     * @return array<string, mixed>
     */
    private function visitorStart(Request $r): array
    {
        $name = self::displayName($r->string('name', false));
        $visitorId = null;
        $token = $r->bearer();
        if ($token !== null) {
            $visitorId = $this->authenticate($r, Role::Visitor)->uid;
        }
        $conversation = $this->app->desk->startVisitor($visitorId, $name);
        return $this->visitorView($conversation, withHistory: true);
    }

    /** @return array<string, mixed> */
    private function visitorStatus(Request $r): array
    {
        $me = $this->authenticate($r, Role::Visitor);
        return $this->visitorView($this->app->desk->conversation($me->uid), withHistory: false);
    }

    /**
     * An agent signs in (the demo's login: the id must be in CS_AGENTS; a real app uses its
     * own login here) and gets a token with the role "agent".
     *
     * @return array<string, mixed>
     */
    private function agentLogin(Request $r): array
    {
        $agentId = (string) $r->string('agent');
        if (!Ids::isAgentId($agentId)) {
            throw new ApiError(400, 'bad_parameter', '"agent" must be an agent id');
        }
        $name = $this->app->desk->registerAgent($agentId);
        return [
            'agent' => ['id' => $agentId, 'name' => $name],
            'token' => $this->app->tokens->issue($agentId, Role::Agent, ['name' => $name]),
            'ws_url' => $this->app->config->wsUrl,
        ];
    }

    /**
     * The console's refresh: first assigns waiting visitors if any agent is online (so the
     * first agent to come online picks up the queue), then returns the dashboard.
     *
     * @return array<string, mixed>
     */
    private function agentSync(Request $r): array
    {
        $me = $this->authenticate($r, Role::Agent);
        $assigned = $this->app->desk->assignWaiting();
        return [
            'me' => ['id' => $me->uid, 'name' => $this->app->desk->agentName($me->uid), 'online' => chat_is_online($me->uid)],
            'assigned_now' => $assigned,
        ] + $this->app->desk->dashboard($me->uid);
    }

    /**
     * History of a visitor's conversation (chat_history): for the visitor, for their agent,
     * and for any agent while it waits in the queue.
     *
     * @return array<string, mixed>
     */
    private function history(Request $r): array
    {
        $identity = $this->authenticate($r);
        $limit = (int) $r->int('limit', 1, 1000, 50);
        $before = $r->int('before', 1, PHP_INT_MAX, null);
        $visitorId = $identity->role === Role::Visitor ? $identity->uid : $this->visitorParam($r);
        if ($identity->role === Role::Visitor && ($r->string('visitor', false) ?? $visitorId) !== $visitorId) {
            throw new ApiError(403, 'forbidden', 'visitors read only their own conversation');
        }
        if ($identity->role === Role::Agent && !$this->app->desk->agentMayRead($identity->uid, $visitorId)) {
            throw new ApiError(403, 'forbidden', 'this conversation is neither yours nor waiting in the queue');
        }
        $conversation = Ids::conversation($visitorId);
        return [
            'visitor' => $visitorId,
            'conversation' => $conversation,
            'messages' => chat_history($conversation, $limit, $before),
        ];
    }

    /** @return array<string, mixed> */
    private function transfer(Request $r): array
    {
        $me = $this->authenticate($r, Role::Agent);
        $visitorId = $this->visitorParam($r);
        $to = (string) $r->string('to');
        if (!Ids::isAgentId($to)) {
            throw new ApiError(400, 'bad_parameter', '"to" must be an agent id');
        }
        $this->app->desk->transfer($visitorId, $me->uid, $to);
        return ['ok' => true, 'conversation' => $this->app->desk->conversation($visitorId)];
    }

    /** @return array<string, mixed> */
    private function close(Request $r): array
    {
        $me = $this->authenticate($r, Role::Agent);
        $visitorId = $this->visitorParam($r);
        $this->app->desk->close($visitorId, $me->uid);
        return ['ok' => true, 'conversation' => $this->app->desk->conversation($visitorId)];
    }

    // ------------------------------------------------------------------------------------

    /**
     * The caller, from their bearer token, checked against the app's own records: an agent
     * must be in cs_agents (and CS_AGENTS), a visitor in cs_visitors.
     */
    private function authenticate(Request $r, ?Role $role = null): Identity
    {
        $token = $r->bearer() ?? throw new ApiError(401, 'no_token', 'send "Authorization: Bearer <token>"');
        $identity = $this->app->tokens->verify($token);
        if ($role !== null && $identity->role !== $role) {
            throw new ApiError(403, 'wrong_role', "this action is for {$role->value}s; the token is a {$identity->role->value}'s");
        }
        $known = match ($identity->role) {
            Role::Agent => $this->app->desk->isAgent($identity->uid),
            Role::Visitor => $this->app->desk->isVisitor($identity->uid),
        };
        if (!$known) {
            throw new ApiError(403, 'unknown_' . $identity->role->value, "\"$identity->uid\" is not a known {$identity->role->value}");
        }
        return $identity;
    }

    private function visitorParam(Request $r): string
    {
        $visitorId = (string) $r->string('visitor');
        if (!Ids::isVisitorId($visitorId)) {
            throw new ApiError(400, 'bad_parameter', '"visitor" must be a visitor id (v + 16 hex digits)');
        }
        return $visitorId;
    }

    /** Trimmed, 1 to 64 characters of valid UTF-8 without control characters; null when absent. */
    private static function displayName(?string $name): ?string
    {
        if ($name === null) {
            return null;
        }
        $name = trim($name);
        // /u fails on invalid UTF-8; \P{Cc} excludes control characters.
        if (preg_match('/^\P{Cc}{1,64}$/uD', $name) !== 1) {
            throw new ApiError(400, 'bad_parameter', '"name" must be 1 to 64 characters without control characters');
        }
        return $name;
    }

    /**
     * @param array<string, mixed> $conversation from Desk::conversation()
     * @return array<string, mixed>
     */
    private function visitorView(array $conversation, bool $withHistory): array
    {
        $visitor = $conversation['visitor'];
        $agentsOnline = count($this->app->desk->onlineAgents());
        $view = $conversation + [
            'agents_online' => $agentsOnline,
            'notice' => $conversation['status'] === 'waiting' && $agentsOnline === 0 ? Desk::NO_AGENT_NOTICE : null,
        ];
        if ($withHistory) {
            $view['token'] = $this->app->tokens->issue($visitor['id'], Role::Visitor, ['name' => $visitor['name']]);
            $view['ws_url'] = $this->app->config->wsUrl;
            $view['history'] = chat_history($conversation['conversation'], 100);
        }
        return $view;
    }
}
