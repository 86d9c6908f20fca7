// The peer that chat-bench measures chat-sidecar against: what a PHP shop would otherwise run —
// a small Node.js server on the `ws` package, fed by Redis pub/sub.
//
// Same minimal behaviour as the sidecar, so the two are compared doing the same work:
//   * a client connects to ws://HOST:PORT/?uid=<uid>[&groups=g1,g2] (no token: the peer does
//     not authenticate; the sidecar checks an HS256 token on connect, which only costs at connect);
//   * for every local user the peer SUBSCRIBEs to `<ns>:{u:<uid>}:live`, for every group to
//     `<ns>:{g:<gid>}:live`, and sends {"type":"welcome",...} once Redis confirmed the
//     subscriptions (like the sidecar, so nothing published after the welcome is missed);
//   * a notification `m<seq> <envelope>` is forwarded, envelope bytes as they are, to every
//     local connection of that user or group (the bytes are sliced once, not re-encoded);
//     `k<reason>` closes them with 4004.
// The push API is therefore the one the sidecar has: PHP's chat_push() (the same extension, the
// same Lua script, the same Redis) publishes on the live channel. Only the delivering server
// differs, which is what the benchmark compares.
//
// Settings (environment): PEER_LISTEN (default 127.0.0.1:0), PEER_REDIS_URL
// (default redis://127.0.0.1:6379), PEER_NAMESPACE (default "peer").
// Prints "peer listening on HOST:PORT" on stdout once it accepts connections.
'use strict';

const net = require('net');
const { WebSocketServer } = require('ws');

const NS = process.env.PEER_NAMESPACE || 'peer';
const REDIS = new URL(process.env.PEER_REDIS_URL || 'redis://127.0.0.1:6379');
const [HOST, PORT] = (() => {
  const l = process.env.PEER_LISTEN || '127.0.0.1:0';
  const i = l.lastIndexOf(':');
  return [l.slice(0, i), Number(l.slice(i + 1))];
})();
const ID = /^[A-Za-z0-9_.@+-]{1,128}$/; // the protocol's id charset (protocol/src/ids.rs)
const TEXT = { binary: false };

// --- a minimal RESP2 pub/sub client -------------------------------------------------------

function command(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

// Parses one RESP value at `off`; returns [value, end] or null when `buf` holds only part of it.
function parse(buf, off) {
  if (off >= buf.length) return null;
  const nl = buf.indexOf(10, off);
  if (nl < 0) return null;
  const type = buf[off];
  const line = buf.latin1Slice(off + 1, nl - 1);
  switch (type) {
    case 0x2b: return [line, nl + 1]; // +simple
    case 0x2d: return [new Error(line), nl + 1]; // -error
    case 0x3a: return [Number(line), nl + 1]; // :integer
    case 0x24: { // $bulk
      const n = Number(line);
      if (n < 0) return [null, nl + 1];
      const start = nl + 1;
      if (start + n + 2 > buf.length) return null;
      return [buf.subarray(start, start + n), start + n + 2];
    }
    case 0x2a: { // *array
      const n = Number(line);
      const out = new Array(Math.max(n, 0));
      let p = nl + 1;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (r === null) return null;
        out[i] = r[0];
        p = r[1];
      }
      return [out, p];
    }
    default: throw new Error(`bad RESP type byte ${type} from Redis`);
  }
}

class Subscriber {
  constructor(url, onMessage) {
    this.onMessage = onMessage;
    this.acks = []; // callbacks of SUBSCRIBE commands, in the order Redis confirms them
    this.rest = null;
    this.sock = net.connect(Number(url.port || 6379), url.hostname);
    this.sock.setNoDelay(true);
    if (url.password) this.sock.write(command(['AUTH', decodeURIComponent(url.password)]));
    this.sock.on('data', (chunk) => this.feed(chunk));
    const fatal = (why) => { console.error(`peer: Redis pub/sub connection ${why}`); process.exit(1); };
    this.sock.on('error', (e) => fatal(`failed: ${e.message}`));
    this.sock.on('close', () => fatal('closed'));
  }

  subscribe(channel, ack) {
    this.acks.push(ack);
    this.sock.write(command(['SUBSCRIBE', channel]));
  }

  unsubscribe(channel) {
    this.sock.write(command(['UNSUBSCRIBE', channel]));
  }

  feed(chunk) {
    const buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    let off = 0;
    for (;;) {
      const r = parse(buf, off);
      if (r === null) break;
      off = r[1];
      this.value(r[0]);
    }
    this.rest = off < buf.length ? buf.subarray(off) : null;
  }

  value(v) {
    if (v instanceof Error) { console.error(`peer: Redis error: ${v.message}`); process.exit(1); }
    if (!Array.isArray(v)) return; // +OK of AUTH
    const kind = v[0].latin1Slice(0, v[0].length);
    if (kind === 'message') this.onMessage(v[1].latin1Slice(0, v[1].length), v[2]);
    else if (kind === 'subscribe') this.acks.shift()();
  }
}

// --- channels and local connections --------------------------------------------------------

/** channel name -> { conns: Set<WebSocket>, confirmed, waiters } */
const channels = new Map();

function deliver(channel, payload) {
  const ch = channels.get(channel);
  if (ch === undefined) return;
  if (payload[0] === 0x6d) { // m<seq> <envelope>
    const env = payload.subarray(payload.indexOf(0x20) + 1);
    for (const ws of ch.conns) if (ws.readyState === 1) ws.send(env, TEXT);
  } else if (payload[0] === 0x6b) { // k<reason>
    const reason = payload.toString('utf8', 1);
    for (const ws of ch.conns) ws.close(4004, reason || 'closed by the app');
  }
}

const redis = new Subscriber(REDIS, deliver);

function join(name, ws, ready) {
  let ch = channels.get(name);
  if (ch === undefined) {
    ch = { conns: new Set(), confirmed: false, waiters: [] };
    channels.set(name, ch);
    const mine = ch;
    redis.subscribe(name, () => {
      mine.confirmed = true;
      for (const w of mine.waiters) w();
      mine.waiters = null;
    });
  }
  ch.conns.add(ws);
  if (ch.confirmed) ready(); else ch.waiters.push(ready);
}

function leave(name, ws) {
  const ch = channels.get(name);
  if (ch === undefined) return;
  ch.conns.delete(ws);
  if (ch.conns.size === 0) {
    channels.delete(name);
    redis.unsubscribe(name);
  }
}

// --- WebSocket server ----------------------------------------------------------------------

const wss = new WebSocketServer({
  host: HOST,
  port: PORT,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 64 * 1024,
});

wss.on('connection', (ws, req) => {
  const q = new URL(req.url, 'http://peer').searchParams;
  const uid = q.get('uid') || '';
  const groups = (q.get('groups') || '').split(',').filter((g) => g !== '');
  if (!ID.test(uid) || !groups.every((g) => ID.test(g))) {
    ws.close(4001, 'bad uid or group');
    return;
  }
  const names = [`${NS}:{u:${uid}}:live`, ...groups.map((g) => `${NS}:{g:${g}}:live`)];
  let pending = names.length;
  const ready = () => {
    if (--pending === 0 && ws.readyState === 1) ws.send(`{"type":"welcome","uid":"${uid}"}`);
  };
  for (const n of names) join(n, ws, ready);
  ws.on('close', () => { for (const n of names) leave(n, ws); });
  ws.on('error', () => {});
  ws.on('message', (data) => {
    // The only client frame the benchmark sends is a ping.
    if (data.length < 256 && data.includes('"ping"')) ws.send('{"type":"pong"}');
  });
});

wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`peer listening on ${a.address}:${a.port}\n`);
});
wss.on('error', (e) => { console.error(`peer: ${e.message}`); process.exit(1); });

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
