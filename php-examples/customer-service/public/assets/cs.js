'use strict';
// Shared by the visitor widget and the agent console: the JSON API, a resuming WebSocket,
// and message rendering. No build step, no libraries.

/** Calls api.php?action=…; resolves with the JSON body, rejects with {code, status, message}. */
async function csApi(action, { method = 'GET', token = null, body = null, query = {} } = {}) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body) headers['Content-Type'] = 'application/json';
  const r = await fetch('api.php?' + new URLSearchParams({ action, ...query }), {
    method, headers, body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json().catch(() => ({ error: { code: 'bad_response', message: 'HTTP ' + r.status } }));
  if (!r.ok) {
    const e = new Error(data.error?.message ?? 'HTTP ' + r.status);
    e.code = data.error?.code; e.status = r.status;
    throw e;
  }
  return data;
}

/**
 * A WebSocket to chat-sidecar that reconnects with backoff and resumes after the last
 * sequence it has per conversation (?cursors=), dropping duplicates by (conv, seq).
 * handlers: message(m) for new messages, frame(f) for every other frame, state(s, closeEvent).
 */
class ChatSocket {
  constructor(url, token, handlers) {
    this.url = url; this.token = token; this.h = handlers;
    this.cursors = {}; this.seen = new Set();
    this.ws = null; this.delay = 500; this.refs = 0;
  }

  /** Records a message (live, or loaded over HTTP); false when it was seen already. */
  accept(m) {
    const key = m.conv + '#' + m.seq;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    this.cursors[m.conv] = Math.max(this.cursors[m.conv] ?? 0, m.seq);
    return true;
  }

  /** Stops resuming a conversation this user no longer belongs to. */
  forget(conv) { delete this.cursors[conv]; }

  connect() {
    const q = '?device=browser&token=' + encodeURIComponent(this.token) +
      '&cursors=' + encodeURIComponent(JSON.stringify(this.cursors));
    const ws = this.ws = new WebSocket(this.url + q);
    ws.onopen = () => { this.delay = 500; };
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { return; }
      if (f.type === 'message') { if (this.accept(f)) this.h.message?.(f); return; }
      if (f.type === 'welcome') this.h.state?.('live');
      this.h.frame?.(f);
    };
    ws.onclose = (e) => {
      this.h.state?.('offline', e);
      if (e.code === 4004 || e.code === 4001 || e.code === 4002) return; // kicked or token refused: reload
      setTimeout(() => this.connect(), this.delay + Math.random() * this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  /** Sends a frame; false while disconnected. */
  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  nextRef() { return ++this.refs; }
}

/** One message as a DOM row; system notices (data.kind === 'system') as a centred line. */
function csMessageRow(m, me, names) {
  const row = document.createElement('div');
  const d = m.data ?? {};
  if (d.kind === 'system') {
    row.className = 'sys';
    row.textContent = d.text;
    return row;
  }
  const mine = m.from === me;
  row.className = 'msg' + (mine ? ' mine' : '');
  const bubble = document.createElement('span');
  bubble.className = 'bubble';
  bubble.textContent = typeof d.text === 'string' ? d.text : JSON.stringify(d);
  const meta = document.createElement('small');
  meta.className = 'meta';
  meta.textContent = (mine ? 'you' : (names[m.from] ?? m.from ?? 'shop')) + ' · ' +
    new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  row.append(bubble, meta);
  return row;
}

/** Inserts a row keeping the log ordered by sequence number, and scrolls to the end. */
function csInsert(log, m, row) {
  row.dataset.seq = m.seq;
  const after = [...log.children].find((el) => Number(el.dataset.seq) > m.seq);
  log.insertBefore(row, after ?? null);
  log.scrollTop = log.scrollHeight;
}

/** Calls fn at most once per `ms` (typing indicators). */
function csThrottle(fn, ms) {
  let last = 0;
  return (...args) => { const now = Date.now(); if (now - last >= ms) { last = now; fn(...args); } };
}
