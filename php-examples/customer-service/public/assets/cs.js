'use strict';
// Shared by the visitor widget and the agent console: the JSON API and message rendering.
// The connection to the sidecar is its own client, chat.js, which both pages import from it.
// No build step, no libraries.

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
