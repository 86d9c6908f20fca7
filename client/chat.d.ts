// TypeScript declarations of chat.js, the browser client of chat-sidecar. They describe the
// module exactly as shipped; frames follow docs/PROTOCOL.md.

export type Transport = 'websocket' | 'sse' | 'poll';
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
/** Per conversation (`u:<uid>`, `g:<group>`), the last sequence number the client has. */
export type Cursors = Record<string, number>;
/** Who a message or typing indicator is for: a user or a group. */
export type Target = { to: string } | { group: string };

/** Where cursors are kept between page loads; `localStorage` and `sessionStorage` fit. */
export interface CursorStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface ChatClientOptions {
  /** The sidecar's base URL (`http://127.0.0.1:9501`); a `ws://…/ws` URL is accepted too. */
  url: string;
  /**
   * The token PHP minted with `chat_token()`. A function is called for the first token and
   * again whenever the node refuses the token (close codes 4001/4002, HTTP 401), so the app
   * can fetch a fresh one; a plain string cannot be refreshed and the client closes instead.
   */
  token: string | (() => string | Promise<string>);
  /** Label shown in `chat_user_devices()`. Default `web`. */
  device?: string;
  /** Transports in the order they are tried; default `['websocket', 'sse', 'poll']`. */
  transports?: Transport[];
  /** Where delivery starts, e.g. right after the history the page rendered. */
  cursors?: Cursors;
  /** `client` (default): acknowledge messages after the listeners ran; `auto`: the node counts a message as received once written. */
  ack?: 'client' | 'auto';
  /** Keeps cursors across page loads, under `<storageKey>:<uid>`. Default: none. */
  storage?: CursorStorage | null;
  /** Default `chat-cursors`. */
  storageKey?: string;
  /** How long `send()` waits for the node's answer, queue time included (ms). Default 15000. */
  sendTimeout?: number;
  /** How long a transport may take to deliver `welcome` before it counts as failed (ms). Default 10000. */
  openTimeout?: number;
  /** How long the node holds a long-poll (ms). Default 25000. */
  pollTimeout?: number;
  /** Reconnect delays: doubling from `min` up to `max` ms, each randomised to between half and all of it. Default 500 / 30000. */
  backoff?: { min?: number; max?: number };
}

export interface WelcomeFrame {
  type: 'welcome';
  uid: string;
  conn: string;
  node: string;
  heartbeat_ms: number;
  max_frame_bytes: number;
  cursors: Cursors;
  /** Per conversation, its current epoch (it changes when Redis lost part of the conversation). */
  epochs: Cursors;
}

export interface MessageFrame<D = unknown> {
  type: 'message';
  id: string;
  conv: string;
  seq: number;
  /** The conversation's epoch; a new one starts above every earlier sequence number. */
  epoch?: number;
  from: string | null;
  to?: string;
  ts: number;
  data: D;
}

export interface ReceiptFrame { type: 'receipt'; conv: string; reader: string; seq: number; id: string; ts: number }
export interface ReadFrame { type: 'read'; conv: string; seq: number }
export interface PresenceFrame { type: 'presence'; group: string; uid: string; status: 'online' | 'offline' }
export interface MemberFrame { type: 'member'; group: string; uid: string; event: 'join' | 'leave' }
export type TypingFrame = { type: 'typing'; from: string } & ({ to: string } | { group: string });
export interface SignalFrame<D = unknown> { type: 'signal'; group: string; from: string; data: D }
export interface BroadcastFrame<D = unknown> { type: 'broadcast'; data: D }
/**
 * Redis lost messages of `conv` this client had seen (a failover to a replica that lagged, a
 * restart without persistence): the server's history now ends at `seq`, the client had seen up
 * to `was`. Delivery goes on with new messages in `epoch`; re-read what the page shows of `conv`.
 */
export interface ResetFrame { type: 'reset'; conv: string; seq: number; was: number; epoch: number }
/** `chat_event()` from the app to some connections. */
export interface EventFrame<D = unknown> { type: 'event'; data: D }
export interface SentFrame { type: 'sent'; ref: unknown; id: string; conv: string; seq: number }
export interface PongFrame { type: 'pong'; ref?: unknown }
/** A refused client frame (`ref` set when it answers one), or an error of the client itself. */
export interface ErrorFrame { type: 'error'; code: string; message: string; ref?: unknown }

export type ServerFrame =
  | WelcomeFrame | MessageFrame | ReceiptFrame | ReadFrame | PresenceFrame | MemberFrame
  | TypingFrame | SignalFrame | BroadcastFrame | EventFrame | SentFrame | PongFrame | ErrorFrame | ResetFrame;

export interface StateChange {
  state: ConnectionState;
  /** The transport in use or being tried. */
  transport: Transport | null;
  /** Close code and reason of the connection that ended (docs/PROTOCOL.md, "Close codes"). */
  code?: number;
  reason?: string;
  /** Milliseconds until the next attempt, when reconnecting. */
  delay?: number;
  /** With `state: 'open'`. */
  welcome?: WelcomeFrame;
}

export interface ChatEvents {
  message: MessageFrame;
  receipt: ReceiptFrame;
  read: ReadFrame;
  presence: PresenceFrame;
  member: MemberFrame;
  typing: TypingFrame;
  signal: SignalFrame;
  broadcast: BroadcastFrame;
  event: EventFrame;
  reset: ResetFrame;
  /** A frame without a `type` (the app's verbatim `chat_event()` frames): parsed JSON, or the text when it is not JSON. */
  raw: unknown;
  welcome: WelcomeFrame;
  state: StateChange;
  /** Error frames that answer no pending send, and the client's own problems (`token_refused`, `token_unavailable`). */
  error: ErrorFrame;
  /** Every server frame, except duplicates that were dropped. */
  frame: ServerFrame;
}

export interface SendResult {
  id: string;
  conv: string;
  seq: number;
}

/**
 * `code` is the server's error code (`forbidden`, `rate_limited`, `send_disabled`,
 * `unavailable`, `bad_frame` …) or the client's: `timeout`, `connection_lost` (the connection
 * dropped before the answer: the message may or may not have been stored), `closed`, `kicked`,
 * `too_large`, `token_refused`.
 */
export declare class ChatError extends Error {
  constructor(code: string, message?: string, details?: Record<string, unknown>);
  readonly name: 'ChatError';
  code: string;
  /** The send's `ref`, when the error answers one. */
  ref?: unknown;
  /** HTTP status, for errors of `POST /send`. */
  status?: number;
  /** The close code that ended the client (`kicked`, `token_refused`). */
  closeCode?: number;
}

export declare class ChatClient extends EventTarget {
  constructor(options: ChatClientOptions);
  readonly options: Required<Omit<ChatClientOptions, 'cursors'>> & { cursors?: Cursors };
  /** The node's base URL, as http(s). */
  readonly baseUrl: string;
  readonly state: ConnectionState;
  readonly transport: Transport | null;
  /** The user id, from the last welcome. */
  readonly uid: string | null;
  readonly welcome: WelcomeFrame | null;
  /** How many messages were dropped as duplicates (seq at or below the cursor). */
  readonly duplicatesDropped: number;
  /** A copy of the cursors: per conversation, the last sequence processed. */
  readonly cursors: Cursors;

  /** Calls `listener` with each event's frame; returns a function that unsubscribes. */
  on<K extends keyof ChatEvents>(type: K, listener: (detail: ChatEvents[K]) => void): () => void;
  /** Starts connecting; resolves with the next welcome, rejects (ChatError) if the client closes for good first. */
  connect(): Promise<WelcomeFrame>;
  /** Closes for good, until `connect()` again; queued sends are rejected with `closed`. */
  close(): void;
  /** Records a message obtained elsewhere (history over HTTP): true when new, false when already seen. */
  accept(message: Pick<MessageFrame, 'conv' | 'seq'>): boolean;
  /** Stops resuming `conv` (e.g. a group the user left). */
  forget(conv: string): void;
  /** A new token for the next connect and for HTTP sends. */
  setToken(token: string): void;
  /** Sends a message; survives reconnects while queued. */
  send(target: Target, data: unknown): Promise<SendResult>;
  /** Typing indicator; dropped while disconnected. */
  typing(target: Target): void;
  /** Marks `conv` read up to `seq`; sent once connected when disconnected. */
  read(conv: string, seq: number): void;
  /** WebRTC signalling to `to` through the room `group`; queued while disconnected. */
  signal(group: string, to: string, data: unknown): void;
}
