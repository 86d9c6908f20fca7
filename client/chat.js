// chat.js — the browser client of chat-sidecar (work in progress; see client/README.md).
export class ChatClient {}
