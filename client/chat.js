// chat.js — the browser client of chat-sidecar (docs/PROTOCOL.md): one live connection over
// WebSocket, Server-Sent Events or long-polling, with automatic reconnect, resume from its own
// cursors, dedupe by (conv, seq), transport fallback, token refresh and a send queue.
// An ES module with no dependencies and no build step; the sidecar serves it at /chat.js.
// Types: chat.d.ts. Usage: README.md in this folder.

const WEBSOCKET = 'websocket';
const SSE = 'sse';
const POLL = 'poll';
const ALL_TRANSPORTS = [WEBSOCKET, SSE, POLL];

// Close codes with a meaning for the client (docs/PROTOCOL.md, "Close codes").
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;        // node shutting down: any node will do, reconnect soon
const CLOSE_ABNORMAL = 1006;          // no close frame: network, proxy, node gone
const CLOSE_POLICY = 1008;            // flooding: back off harder
const TOKEN_INVALID = 4001;
const TOKEN_EXPIRED = 4002;
const KICKED = 4004;

// Frames the app may listen to, besides the client's own 'state', 'welcome', 'error', 'frame'.
// 'reset': Redis lost messages of a conversation that this client had already seen (a failover
// to a replica that lagged, a restart without persistence): {conv, seq, was, epoch} says the
// server's history now ends at seq where the client had seen up to was. Nothing is rewound and
// nothing new is dropped (a new epoch's numbers start above every earlier one); the app should
// re-read what it shows of conv.
const EVENT_FRAMES = new Set(['message', 'receipt', 'read', 'presence', 'member', 'typing', 'signal', 'broadcast', 'event', 'reset']);

/** An error carrying the server's error code (`forbidden`, `rate_limited` …) or the client's. */
export class ChatError extends Error {
  constructor(code, message, details = {}) {
    super(message || code);
    this.name = 'ChatError';
    this.code = code;
    Object.assign(this, details);
  }
}

/**
 * A connection to chat-sidecar that keeps itself up. Events (`client.on(type, fn)`, or
 * `addEventListener` with the frame in `event.detail`): message, receipt, read, presence,
 * member, typing, signal, broadcast, event, reset (Redis lost messages this client had seen: re-read
 * the conversation), welcome, state, error, frame (every server frame),
 * raw (frames without a `type`: the app's verbatim `chat_event()` frames).
 */
export class ChatClient extends EventTarget {
  constructor(options) {
    super();
    if (!options || !options.url) throw new TypeError('ChatClient: options.url (the sidecar, e.g. http://127.0.0.1:9501) is required');
    if (options.token == null) throw new TypeError('ChatClient: options.token (a string, or a function returning one) is required');
    this.options = {
      device: 'web',
      transports: ALL_TRANSPORTS,
      ack: 'client',
      sendTimeout: 15000,
      openTimeout: 10000,
      pollTimeout: 25000,
      backoff: {},
      storage: null,
      storageKey: 'chat-cursors',
      ...options,
    };
    const unknown = this.options.transports.filter((t) => !ALL_TRANSPORTS.includes(t));
    if (unknown.length || !this.options.transports.length) {
      throw new TypeError('ChatClient: transports must be a non-empty list of ' + ALL_TRANSPORTS.join(', '));
    }
    this.baseUrl = httpBase(this.options.url);
    this.backoff = { min: 500, max: 30000, ...this.options.backoff };
    this.state = 'idle';
    this.transport = null;
    this.uid = null;
    this.welcome = null;
    /** Messages dropped because their (conv, seq) was at or below the cursor. */
    this.duplicatesDropped = 0;

    this._cursors = {};
    this._recentIds = new Map();     // conv -> ids of its latest messages (see _seenBefore)
    this._storedFor = null;          // uid whose stored cursors were merged already
    this._token = typeof this.options.token === 'string' ? this.options.token : null;
    this._tokenRefusals = 0;
    this._transportIndex = 0;
    this._worked = new Set();        // transports that reached a welcome in this client's life
    this._misses = new Map();        // transport -> failures to open while the node answered HTTP
    this._attempt = 0;               // failed attempts since the last welcome (backoff)
    this._gen = 0;                   // bumps on every (re)connect: callbacks of older ones are ignored
    this._conn = null;               // the transport object of the current attempt
    this._welcomed = false;          // the current attempt got its welcome
    this._timers = new Set();
    this._queue = [];                // client frames waiting for an open connection
    this._inflight = new Map();      // ref -> queued send written to a WebSocket, awaiting `sent`
    this._reads = new Map();         // conv -> seq: read marks to send once open
    this._acks = new Map();          // conv -> seq: acknowledgements not yet sent
    this._ackTimer = null;
    this._httpChain = Promise.resolve();
    this._refs = 0;
    this._waiters = [];              // connect() promises waiting for the next welcome
    this._lastFrameAt = 0;

    for (const [conv, seq] of Object.entries(this.options.cursors ?? {})) this._advance(conv, seq);

    if (typeof window !== 'undefined' && window.addEventListener) {
      // Back from offline: reconnect now instead of waiting out the backoff.
      this._onOnline = () => { if (this.state === 'reconnecting') this._reconnectNow(); };
      window.addEventListener('online', this._onOnline);
    }
  }

  /** Subscribes to an event; the listener gets the frame (or state). Returns an unsubscribe function. */
  on(type, listener) {
    const h = (e) => listener(e.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  /** Opens the connection; resolves with the next `welcome` frame, rejects if the client closes for good first. */
  connect() {
    const p = new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
    p.catch(() => {});               // awaiting is optional: no unhandled-rejection noise
    if (this.state === 'idle' || this.state === 'closed') {
      this._stopped = false;
      this._attempt = 0;
      this._tokenRefusals = 0;
      this._setState('connecting');
      this._open();
    } else if (this.state === 'open') {
      this._settleWaiters(null, this.welcome);
    }
    return p;
  }

  /** Closes for good (until connect() is called again). Unsent sends are rejected with code `closed`. */
  close() {
    if (this.state === 'closed' || this.state === 'idle') return;
    this._flushAcks();
    this._shutdown(new ChatError('closed', 'the client was closed'));
    this._setState('closed', { code: CLOSE_NORMAL, reason: 'closed by the client' });
  }

  /** Per conversation, the last sequence this client has processed. */
  get cursors() {
    return { ...this._cursors };
  }

  /**
   * Records a message the app got elsewhere (history loaded over HTTP): true when it is new,
   * false when its (conv, seq) is at or below the cursor. Live messages before it are then dropped.
   */
  accept(message) {
    if (!(message.seq > (this._cursors[message.conv] ?? 0))) return false;
    this._advance(message.conv, message.seq);
    return !this._seenBefore(message);
  }

  /** Stops resuming a conversation (e.g. a group the user left). */
  forget(conv) {
    delete this._cursors[conv];
    this._saveCursors();
  }

  /** Replaces the token used from the next (re)connect and for HTTP sends. */
  setToken(token) {
    this._token = token;
    this._tokenRefusals = 0;
  }

  /**
   * Sends a message to a user ({to}) or a group ({group}). Resolves with {id, conv, seq} once
   * the node stored it; rejects with a ChatError (the server's code, or `timeout`,
   * `connection_lost` when the connection dropped before the answer, `closed`, `kicked`, `too_large`).
   * Sends made while disconnected wait in a queue and go out after the next welcome.
   */
  send(target, data) {
    const frame = { type: 'send', ...targetOf(target), data, ref: 'c' + (++this._refs) };
    return new Promise((resolve, reject) => {
      const item = { frame, resolve, reject, timer: null };
      item.timer = this._after(this.options.sendTimeout, () => {
        this._dropItem(item);
        reject(new ChatError('timeout', `no answer to the send within ${this.options.sendTimeout} ms`, { ref: frame.ref }));
      });
      this._enqueue(item);
    });
  }

  /** Typing indicator to a user ({to}) or group ({group}); dropped while disconnected (it would be stale). */
  typing(target) {
    if (this.state !== 'open') return;
    this._transmit({ type: 'typing', ...targetOf(target) });
  }

  /** Marks `conv` read up to `seq` (the senders get a receipt); sent once connected if need be. */
  read(conv, seq) {
    if (this.state === 'open') this._transmit({ type: 'read', conv, seq });
    else this._reads.set(conv, Math.max(seq, this._reads.get(conv) ?? 0));
  }

  /** WebRTC signalling to `to` through the room `group`; queued while disconnected. */
  signal(group, to, data) {
    this._enqueue({ frame: { type: 'signal', group, to, data } });
  }

  // ----- connecting -----

  async _open() {
    const gen = ++this._gen;
    this._welcomed = false;
    const name = this.options.transports[this._transportIndex];
    this.transport = name;
    let token;
    try {
      token = await this._currentToken();
    } catch (e) {
      if (gen !== this._gen) return;
      this._emit('error', { type: 'error', code: 'token_unavailable', message: 'the token callback failed: ' + (e?.message ?? e) });
      return this._ended(gen, { code: CLOSE_ABNORMAL, reason: 'no token', noFallback: true });
    }
    if (gen !== this._gen) return;
    this._loadStoredCursors(token);
    const params = new URLSearchParams({ token, device: this.options.device });
    if (Object.keys(this._cursors).length) params.set('cursors', JSON.stringify(this._cursors));
    const Impl = name === WEBSOCKET ? WsConnection : name === SSE ? SseConnection : PollConnection;
    this._token = token;
    this._conn = new Impl(this, gen, params);
    this._openTimer = this._after(this.options.openTimeout, () => {
      if (gen !== this._gen || this._welcomed) return;
      this._ended(gen, { code: CLOSE_ABNORMAL, reason: `no welcome within ${this.options.openTimeout} ms` });
    });
  }

  async _currentToken(refresh = false) {
    if (this._token && !refresh) return this._token;
    if (typeof this.options.token !== 'function') {
      if (refresh) throw new ChatError('token_refused', 'the server refused the token and options.token is not a function that could fetch a new one');
      return this.options.token;
    }
    const t = await this.options.token();
    if (typeof t !== 'string' || !t) throw new ChatError('token_unavailable', 'options.token() did not return a token');
    this._token = t;
    return t;
  }

  /** Called by the connections for every server frame. */
  _frame(gen, f) {
    if (gen !== this._gen) return;
    if (!f || typeof f.type !== 'string') return this._emit('raw', f);
    this._lastFrameAt = Date.now();
    switch (f.type) {
      case 'welcome': return this._onWelcome(f);
      case 'message':
        if (!(f.seq > (this._cursors[f.conv] ?? 0))) {
          this.duplicatesDropped++;
          return;
        }
        this._advance(f.conv, f.seq);
        if (this._seenBefore(f)) {
          this.duplicatesDropped++;
          return;
        }
        this._emit('frame', f);
        this._emit('message', f);
        // Listeners ran synchronously above, so the message counts as processed now.
        if (this.options.ack === 'client') this._queueAck(f.conv, f.seq);
        return;
      case 'sent': {
        this._emit('frame', f);
        const item = this._inflight.get(f.ref);
        if (item) {
          this._inflight.delete(f.ref);
          this._finish(item, null, { id: f.id, conv: f.conv, seq: f.seq });
        }
        return;
      }
      case 'error': {
        this._emit('frame', f);
        const item = f.ref != null && this._inflight.get(f.ref);
        if (item) {
          this._inflight.delete(f.ref);
          this._finish(item, new ChatError(f.code, f.message, { ref: f.ref }));
        } else {
          this._emit('error', f);
        }
        return;
      }
      default:
        this._emit('frame', f);
        if (EVENT_FRAMES.has(f.type)) this._emit(f.type, f);
    }
  }

  _onWelcome(f) {
    this._welcomed = true;
    this._clear(this._openTimer);
    this.welcome = f;
    this.uid = f.uid;
    // The node's cursors are where delivery starts (it clamps ours, and starts groups at the
    // join point); from here on they are ours.
    for (const [conv, seq] of Object.entries(f.cursors ?? {})) this._cursors[conv] = seq;
    this._saveCursors();
    this._attempt = 0;
    this._tokenRefusals = 0;
    this._worked.add(this.transport);
    this._misses.set(this.transport, 0);
    this._setState('open', { welcome: f });
    this._emit('frame', f);
    this._emit('welcome', f);
    for (const [conv, seq] of this._reads) this._transmit({ type: 'read', conv, seq });
    this._reads.clear();
    this._flushQueue();
    this._settleWaiters(null, f);
    if (this._conn?.keepAlive) this._conn.keepAlive(f.heartbeat_ms || 25000);
  }

  /** Called by the connections when they end, or by the client on a timeout. */
  _ended(gen, { code, reason = '', noFallback = false }) {
    if (gen !== this._gen) return;
    this._gen++;                     // later callbacks of this connection are stale
    const conn = this._conn, opened = this._welcomed;
    this._conn = null;
    this._welcomed = false;
    this._clear(this._openTimer);
    conn?.close();
    this._failInflight();
    if (this._stopped) return;
    const info = { code, reason };

    if (code === KICKED) {
      this._shutdown(new ChatError('kicked', reason || 'kicked by the app', { closeCode: code }));
      this._setState('closed', info);
      return;
    }
    if (code === TOKEN_INVALID || code === TOKEN_EXPIRED) {
      this._tokenRefusals++;
      this._token = null;
      if (typeof this.options.token !== 'function' || this._tokenRefusals > 3) {
        const err = new ChatError('token_refused', reason || 'the server refused the token', { closeCode: code });
        this._emit('error', { type: 'error', code: 'token_refused', message: err.message });
        this._shutdown(err);
        this._settleWaiters(err);
        this._setState('closed', info);
        return;
      }
      // A fresh token usually fixes it at once; repeated refusals back off.
      return this._retry(this._tokenRefusals === 1 ? 0 : this._delay(), info);
    }
    if (!opened && !noFallback && code === CLOSE_ABNORMAL && this.options.transports.length > 1) {
      // This transport did not get through. Only move on when the node answers plain HTTP
      // (a proxy broke the transport); when it is down, the same transport is retried. A
      // transport that worked before gets a few more tries: the node may just be restarting.
      const gen2 = this._gen, name = this.transport;
      this._setState('reconnecting', info);
      reachable(this.baseUrl).then((up) => {
        if (gen2 !== this._gen || this._stopped) return;
        const misses = up ? (this._misses.get(name) ?? 0) + 1 : 0;
        this._misses.set(name, misses);
        const n = this.options.transports.length;
        if (up && (!this._worked.has(name) || misses >= 3)) {
          this._misses.set(name, 0);
          this._transportIndex = (this._transportIndex + 1) % n;
          // Straight on to the next transport, but back off once every one has failed.
          return this._retry(this._transportIndex === 0 ? this._delay() : 0, info);
        }
        this._retry(this._delay(), info);
      });
      return;
    }
    const delay = code === CLOSE_GOING_AWAY ? Math.random() * 500
      : code === CLOSE_POLICY ? Math.max(this._delay(), 5000)
      : this._delay();
    this._retry(delay, info);
  }

  _retry(delay, info) {
    const gen = this._gen;
    this._setState('reconnecting', { ...info, delay: Math.round(delay) });
    this._retryTimer = this._after(delay, () => {
      if (gen === this._gen && !this._stopped) this._open();
    });
  }

  _reconnectNow() {
    this._clear(this._retryTimer);
    this._gen++;
    this._open();
  }

  /** Jittered exponential backoff: a random delay in [d/2, d], d doubling per failed attempt. */
  _delay() {
    const d = Math.min(this.backoff.max, this.backoff.min * 2 ** this._attempt);
    this._attempt++;
    return d / 2 + Math.random() * d / 2;
  }

  _shutdown(err) {
    this._stopped = true;
    this._gen++;
    this._conn?.close();
    this._conn = null;
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    this._failInflight(err);
    for (const item of this._queue) this._finish(item, err);
    this._queue = [];
    this._acks.clear();
    this._settleWaiters(err);
  }

  _settleWaiters(err, welcome) {
    const ws = this._waiters;
    this._waiters = [];
    for (const w of ws) err ? w.reject(err) : w.resolve(welcome);
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit('state', { state, transport: this.transport, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ----- cursors -----

  /**
   * Whether a message with this id already reached the app in its conversation (remembering
   * it otherwise). After a Redis failover a push the old master had published but not yet
   * passed to a replica is repeated on the new one, under a new number: the id, not the
   * number, tells it is the same message. The latest 256 per conversation cover that window.
   */
  _seenBefore(m) {
    if (typeof m.id !== 'string') return false;
    let recent = this._recentIds.get(m.conv);
    if (!recent) this._recentIds.set(m.conv, (recent = new Set()));
    if (recent.has(m.id)) return true;
    recent.add(m.id);
    if (recent.size > 256) recent.delete(recent.values().next().value);
    return false;
  }

  _advance(conv, seq) {
    if (seq > (this._cursors[conv] ?? 0)) {
      this._cursors[conv] = seq;
      this._saveCursors();
    }
  }

  _storageKey(uid) {
    return this.options.storageKey + ':' + uid;
  }

  _loadStoredCursors(token) {
    const s = this.options.storage;
    const uid = tokenSubject(token);
    if (!s || !uid || this._storedFor === uid) return;
    this._storedFor = uid;
    try {
      const stored = JSON.parse(s.getItem(this._storageKey(uid)) || '{}');
      for (const [conv, seq] of Object.entries(stored)) if (Number.isInteger(seq)) this._advance(conv, seq);
    } catch { /* unreadable storage: start from the node's position */ }
  }

  _saveCursors() {
    const s = this.options.storage;
    if (!s || !this._storedFor || this._saving) return;
    this._saving = true;
    // One write per burst of messages.
    queueMicrotask(() => {
      this._saving = false;
      try { s.setItem(this._storageKey(this._storedFor), JSON.stringify(this._cursors)); } catch { /* full or denied */ }
    });
  }

  // ----- sending -----

  _enqueue(item) {
    if (this.state === 'closed' && this._stopped) {
      return this._finish(item, new ChatError('closed', 'the client is closed; call connect() first'));
    }
    this._queue.push(item);
    if (this.state === 'open') this._flushQueue();
  }

  _flushQueue() {
    while (this._queue.length && this.state === 'open' && this._conn) {
      const item = this._queue.shift();
      const max = this.welcome?.max_frame_bytes;
      const text = JSON.stringify(item.frame);
      if (max && new TextEncoder().encode(text).length > max) {
        this._finish(item, new ChatError('too_large', `the frame is larger than the node's max_frame_bytes (${max})`));
        continue;
      }
      if (this._conn.http) this._post(item);
      else {
        if (item.resolve) this._inflight.set(item.frame.ref, item);
        this._conn.send(text);
      }
    }
  }

  /** Fire-and-forget frames (typing, read, ack) on the current connection. */
  _transmit(frame) {
    if (!this._conn) return;
    if (this._conn.http) this._post({ frame });
    else this._conn.send(JSON.stringify(frame));
  }

  /** POST /send, one request after the other so sends keep their order. */
  _post(item) {
    this._httpChain = this._httpChain.then(() => this._postNow(item, false));
  }

  async _postNow(item, retried) {
    if (item.done) return;
    let res, body;
    try {
      res = await fetch(this.baseUrl + '/send', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + (await this._currentToken()) },
        body: JSON.stringify(item.frame),
      });
      body = res.status === 204 ? null : await res.json().catch(() => null);
    } catch (e) {
      // The request may or may not have reached the node: report it, never send twice.
      return this._finish(item, new ChatError('connection_lost', 'POST /send failed: ' + (e?.message ?? e)));
    }
    if (res.ok) return this._finish(item, null, body && body.type === 'sent' ? { id: body.id, conv: body.conv, seq: body.seq } : undefined);
    const code = body?.code ?? 'http_' + res.status;
    if (res.status === 401 && !retried && typeof this.options.token === 'function') {
      try {
        await this._currentToken(true);
        return this._postNow(item, true);
      } catch { /* fall through: report the refusal */ }
    }
    const err = new ChatError(code, body?.message ?? 'HTTP ' + res.status, { status: res.status, ref: item.frame.ref });
    if (item.resolve) this._finish(item, err);
    else this._emit('error', { type: 'error', code, message: err.message });
  }

  _finish(item, err, value) {
    if (item.done) return;
    item.done = true;
    this._clear(item.timer);
    if (!item.resolve) return;
    err ? item.reject(err) : item.resolve(value);
  }

  _dropItem(item) {
    item.done = true;
    this._queue = this._queue.filter((i) => i !== item);
    if (item.frame.ref != null) this._inflight.delete(item.frame.ref);
  }

  /** Sends written to a connection that died without an answer may or may not have been stored. */
  _failInflight(err) {
    for (const item of this._inflight.values()) {
      this._finish(item, err ?? new ChatError('connection_lost', 'the connection dropped before the node answered; the message may or may not have been sent', { ref: item.frame.ref }));
    }
    this._inflight.clear();
  }

  _queueAck(conv, seq) {
    if (!this._conn || this._conn.acksByCursor) return;
    this._acks.set(conv, seq);
    if (this._ackTimer) return;
    // The node writes acks at most every 250 ms anyway; over HTTP each one is a request.
    this._ackTimer = this._after(this._conn.http ? 1000 : 250, () => {
      this._ackTimer = null;
      this._flushAcks();
    });
  }

  _flushAcks() {
    if (this.state !== 'open' || !this._conn) return this._acks.clear();
    for (const [conv, seq] of this._acks) this._transmit({ type: 'ack', conv, seq });
    this._acks.clear();
  }

  // ----- timers -----

  _after(ms, fn) {
    const t = setTimeout(() => { this._timers.delete(t); fn(); }, ms);
    this._timers.add(t);
    return t;
  }

  _clear(t) {
    if (t == null) return;
    clearTimeout(t);
    this._timers.delete(t);
  }
}

// ----- transports: each reports frames with client._frame(gen, f) and its end with client._ended(gen, {code, reason}) -----

class WsConnection {
  constructor(client, gen, params) {
    if (client.options.ack === 'client') params.set('ack', 'client');
    const url = client.baseUrl.replace(/^http/, 'ws') + '/ws?' + params;
    this.client = client;
    this.gen = gen;
    const ws = this.ws = new WebSocket(url);
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { f = e.data; }  // not JSON: a verbatim app frame
      client._frame(gen, f);
    };
    ws.onclose = (e) => client._ended(gen, { code: e.code || CLOSE_ABNORMAL, reason: e.reason });
    ws.onerror = () => {};           // onclose follows with the code
  }

  send(text) {
    if (this.ws.readyState === 1) this.ws.send(text);
  }

  /** Pings the node; a connection silent for 2.5 heartbeats is dead even if TCP has not noticed. */
  keepAlive(heartbeatMs) {
    const c = this.client;
    let ref = 0;
    const tick = () => {
      if (c._conn !== this) return;
      if (Date.now() - c._lastFrameAt > heartbeatMs * 2.5) {
        return c._ended(this.gen, { code: CLOSE_ABNORMAL, reason: 'no answer from the node' });
      }
      this.send(JSON.stringify({ type: 'ping', ref: ++ref }));
      c._after(heartbeatMs, tick);
    };
    c._after(heartbeatMs, tick);
  }

  close() {
    this.ws.onclose = this.ws.onmessage = null;
    if (this.ws.readyState <= 1) this.ws.close(CLOSE_NORMAL);
  }
}

class SseConnection {
  constructor(client, gen, params) {
    if (client.options.ack === 'client') params.set('ack', 'client');
    this.http = true;
    // We reconnect ourselves with our own cursors (and a fresh token), so EventSource's
    // automatic reconnect is cut off by closing it on every error and on the close event.
    const es = this.es = new EventSource(client.baseUrl + '/sse?' + params);
    es.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { f = e.data; }
      client._frame(gen, f);
    };
    es.addEventListener('close', (e) => {
      let c = {};
      try { c = JSON.parse(e.data); } catch { /* keep defaults */ }
      es.close();
      client._ended(gen, { code: c.code ?? CLOSE_ABNORMAL, reason: c.reason ?? '' });
    });
    es.onerror = () => {
      es.close();
      client._ended(gen, { code: CLOSE_ABNORMAL, reason: 'event stream failed' });
    };
  }

  close() {
    this.es.onmessage = this.es.onerror = null;
    this.es.close();
  }
}

class PollConnection {
  constructor(client, gen, params) {
    this.http = true;
    this.acksByCursor = true;        // every poll's cursors are the acknowledgement
    this.client = client;
    this.gen = gen;
    this.params = params;
    this.params.delete('cursors');
    this.conn = null;
    this.ctrl = null;
    this.closed = false;
    this.loop();
  }

  async loop() {
    const c = this.client, timeout = c.options.pollTimeout;
    while (!this.closed) {
      const q = new URLSearchParams(this.params);
      // Our cursors on every poll: the node resumes after them, so a lost answer is sent again.
      if (Object.keys(c._cursors).length) q.set('cursors', JSON.stringify(c._cursors));
      if (this.conn) q.set('conn', this.conn);
      q.set('timeout', String(timeout));
      q.set('token', c._token ?? q.get('token'));
      this.ctrl = new AbortController();
      const guard = setTimeout(() => this.ctrl.abort(), timeout + 20000);
      let res, body;
      try {
        res = await fetch(c.baseUrl + '/poll?' + q, { cache: 'no-store', signal: this.ctrl.signal });
        body = res.ok ? await res.json() : null;
      } catch (e) {
        if (!this.closed) c._ended(this.gen, { code: CLOSE_ABNORMAL, reason: 'poll failed: ' + (e?.message ?? e) });
        return;
      } finally {
        clearTimeout(guard);
      }
      if (this.closed) return;
      if (!body) return c._ended(this.gen, { code: CLOSE_ABNORMAL, reason: 'poll answered HTTP ' + res.status });
      if (body.conn) this.conn = body.conn;
      for (const f of body.frames ?? []) {
        c._frame(this.gen, f);
        if (this.closed) return;
      }
      if (body.close) return c._ended(this.gen, { code: body.close.code, reason: body.close.reason ?? '' });
    }
  }

  close() {
    this.closed = true;
    this.ctrl?.abort();
  }
}

// ----- helpers -----

/** http(s) base URL of the node from what the app gave: http://h:9501, https://h/chat, or a ws://…/ws URL. */
function httpBase(url) {
  const u = new URL(url, typeof location !== 'undefined' ? location.href : undefined);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  let path = u.pathname.replace(/\/+$/, '');
  if (/\/(ws|sse|poll|chat\.js)$/.test(path)) path = path.replace(/\/[^/]*$/, '');
  return u.origin + path;
}

function targetOf(target) {
  if (target && typeof target.to === 'string') return { to: target.to };
  if (target && typeof target.group === 'string') return { group: target.group };
  throw new TypeError('target must be {to: "<user id>"} or {group: "<group>"}');
}

/** The `sub` claim of a JWT (the user id), read without verifying: only used to key stored cursors. */
function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - part.length % 4) % 4))).sub ?? null;
  } catch {
    return null;
  }
}

/** Does the node answer plain HTTP? (An opaque answer counts: any answer means it is up.) */
async function reachable(base) {
  const ctrl = new AbortController();
  const t = setTimeout(() => ctrl.abort(), 3000);
  try {
    await fetch(base + '/healthz', { mode: 'no-cors', cache: 'no-store', signal: ctrl.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(t);
  }
}
