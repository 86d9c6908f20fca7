// Type declarations of chat.js (work in progress).
export declare class ChatClient {}
