<?php
/**
 * WebRTC signalling demo: open ?user=alice and ?user=bob, press "Call" in one tab.
 *
 * Both users are members of the room `call-demo`; the offer, answer and ICE candidates travel as
 * `signal` frames through chat-sidecar (chat.js's signal()), then the tabs talk peer to peer
 * over an RTCDataChannel. A video call works the same way with getUserMedia() tracks added to
 * the connection. ?transport=websocket|sse|poll forces one transport for the signalling.
 */
declare(strict_types=1);

$users = ['alice', 'bob'];
$me = $_GET['user'] ?? null;
if (!in_array($me, $users, true)) {
    header('Location: ?user=alice');
    exit;
}
$peer = $me === 'alice' ? 'bob' : 'alice';
$room = 'call-demo';
chat_join_group($me, $room);                   // the app decides who is in the room
$token = chat_token($me, 3600);
// The sidecar's HTTP address as browsers reach it (it serves chat.js and all transports).
$chatUrl = rtrim(getenv('CHAT_URL') ?: 'http://127.0.0.1:9501', '/');
$transport = in_array($_GET['transport'] ?? null, ['websocket', 'sse', 'poll'], true) ? $_GET['transport'] : null;
$h = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES);
?>
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Call demo — <?= $h($me) ?></title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 640px; margin: 2em auto; color: #222; }
  #status { font-weight: 600; }
  #status.connected { color: #1a7f37; }
  #log { font: 12px ui-monospace, monospace; background: #f6f8fa; border: 1px solid #ddd; border-radius: 6px; padding: 8px; height: 260px; overflow-y: auto; white-space: pre-wrap; }
  button { padding: 8px 16px; margin-right: 8px; }
</style>
</head>
<body>
<h2><?= $h($me) ?> in room <?= $h($room) ?></h2>
<p>Peer: <?= $h($peer) ?> · WebRTC: <span id="status">idle</span></p>
<p><button id="call">Call <?= $h($peer) ?></button><button id="hello" disabled>Say hello peer-to-peer</button></p>
<div id="log"></div>
<script type="module">
import {ChatClient} from <?= json_encode("$chatUrl/chat.js") ?>;

const me = <?= json_encode($me) ?>, peer = <?= json_encode($peer) ?>, room = <?= json_encode($room) ?>;
const transport = <?= json_encode($transport) ?>;
const logEl = document.getElementById('log'), statusEl = document.getElementById('status');
const log = (line) => { logEl.textContent += line + '\n'; logEl.scrollTop = logEl.scrollHeight; };
const chat = window.chat = new ChatClient({
  url: <?= json_encode($chatUrl) ?>,
  device: 'call',
  token: <?= json_encode($token) ?>,
  ...(transport ? {transports: [transport]} : {}),
});
let pc = null, channel = null;

function signal(data) {
  chat.signal(room, peer, data);
  log('→ ' + data.kind + ' via chat-sidecar');
}

function useChannel(ch) {
  channel = ch;
  ch.onopen = () => {
    statusEl.textContent = 'connected peer-to-peer';
    statusEl.className = 'connected';
    document.getElementById('hello').disabled = false;
  };
  ch.onmessage = (e) => log('⇐ peer-to-peer: ' + e.data);
}

function connection() {
  // No STUN/TURN needed on one machine; a real app adds its servers here.
  pc = new RTCPeerConnection({iceServers: []});
  pc.onicecandidate = (e) => e.candidate && signal({kind: 'ice', candidate: e.candidate.toJSON()});
  pc.ondatachannel = (e) => useChannel(e.channel);
  pc.onconnectionstatechange = () => log('connection: ' + pc.connectionState);
  return pc;
}

chat.on('welcome', () => log('signalling channel open (chat-sidecar, ' + chat.transport + ')'));
chat.on('error', (f) => log('error: ' + f.code + ' ' + f.message));
chat.on('signal', async (f) => {
  if (f.group !== room || f.from !== peer) return;
  log('← ' + f.data.kind + ' from ' + f.from);
  if (f.data.kind === 'offer') {
    connection();
    await pc.setRemoteDescription({type: 'offer', sdp: f.data.sdp});
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    signal({kind: 'answer', sdp: answer.sdp});
  } else if (f.data.kind === 'answer') {
    await pc.setRemoteDescription({type: 'answer', sdp: f.data.sdp});
  } else if (f.data.kind === 'ice' && pc) {
    await pc.addIceCandidate(f.data.candidate);
  }
});
chat.connect();

document.getElementById('call').onclick = async () => {
  connection();
  useChannel(pc.createDataChannel('chat'));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  signal({kind: 'offer', sdp: offer.sdp});
  statusEl.textContent = 'calling…';
};
document.getElementById('hello').onclick = () => {
  const text = 'hello from ' + me + ' at ' + new Date().toLocaleTimeString();
  channel.send(text);
  log('⇒ peer-to-peer: ' + text);
};
</script>
</body>
</html>
