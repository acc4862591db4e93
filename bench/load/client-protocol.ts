/**
 * The three client dialects the targets speak: Shardcast's msgpack protocol (also
 * spoken by the bench's uws-raw and ws-hub servers), Socket.IO (Engine.IO v4 over a
 * raw WebSocket) and Pusher (soketi). Each only does what joining and staying
 * connected need; event frames never reach these handlers (the worker recognises
 * them by their payload first).
 */
import { encodeClientFrame, decode } from '../../protocol/codec.js';
import { SUBPROTOCOL, WS_PATH } from '../../protocol/frames.js';
import { OPCODE_TEXT } from './ws-client.js';

/** Names of the client dialects. */
export type ProtocolName = 'shardcast' | 'socketio' | 'pusher';

/** The Pusher application key the soketi target is started with. */
export const PUSHER_APP_KEY = 'app-key';

/** What a dialect needs from one connection. */
export interface ProtocolLink {
  readonly session: string;
  readonly user: string;
  send(data: Uint8Array | string): void;
  /** The server confirmed the join / subscription. */
  joined(): void;
  /** The server confirmed the leave (dialects without a reply call it at once). */
  left(): void;
  /** The server refused something: the connection counts as failed. */
  failed(reason: string): void;
}

/** One client dialect. */
export interface ClientProtocol {
  readonly name: ProtocolName;
  path(user: string): string;
  readonly subprotocol?: string;
  /** The WebSocket is open. */
  onOpen(link: ProtocolLink): void;
  /** A message that carries no benchmark payload. */
  onControl(link: ProtocolLink, opcode: number, payload: Buffer): void;
  leave(link: ProtocolLink): void;
  /** Application-level heartbeat, or null when the server drives heartbeats. */
  heartbeat(link: ProtocolLink): void;
}

let requestId = 0;

const shardcast: ClientProtocol = {
  name: 'shardcast',
  subprotocol: SUBPROTOCOL,
  path: (user) => `${WS_PATH}?user=${encodeURIComponent(user)}`,
  onOpen(link) {
    link.send(encodeClientFrame({ t: 'join', id: ++requestId, s: link.session }));
  },
  onControl(link, _opcode, payload) {
    const result = decode(payload);
    if (!result.ok || typeof result.value !== 'object' || result.value === null) return;
    const frame = result.value as { t?: unknown; s?: unknown; msg?: unknown; code?: unknown };
    if (frame.t === 'joined' && frame.s === link.session) link.joined();
    else if (frame.t === 'left' && frame.s === link.session) link.left();
    else if (frame.t === 'error') link.failed(`error ${String(frame.code)}: ${String(frame.msg)}`);
  },
  leave(link) {
    link.send(encodeClientFrame({ t: 'leave', id: ++requestId, s: link.session }));
  },
  heartbeat(link) {
    link.send(encodeClientFrame({ t: 'ping', id: ++requestId }));
  },
};

const socketio: ClientProtocol = {
  name: 'socketio',
  path: () => '/socket.io/?EIO=4&transport=websocket',
  onOpen() {
    // Engine.IO speaks first with its open packet.
  },
  onControl(link, opcode, payload) {
    if (opcode !== OPCODE_TEXT) return;
    const text = payload.toString('latin1');
    if (text === '2') link.send('3');
    else if (text.startsWith('0{')) link.send('40');
    else if (text.startsWith('40')) link.send(`42${JSON.stringify(['join', link.session])}`);
    else if (text.startsWith('42["joined"')) link.joined();
    else if (text.startsWith('42["left"')) link.left();
    else if (text.startsWith('44')) link.failed(`socket.io connect error: ${text}`);
  },
  leave(link) {
    link.send(`42${JSON.stringify(['leave', link.session])}`);
  },
  heartbeat() {
    // The Socket.IO server pings; the client answers in onControl.
  },
};

const pusher: ClientProtocol = {
  name: 'pusher',
  path: () => `/app/${PUSHER_APP_KEY}?protocol=7&client=js&version=8.4.0&flash=false`,
  onOpen() {
    // The server speaks first with pusher:connection_established.
  },
  onControl(link, opcode, payload) {
    if (opcode !== OPCODE_TEXT) return;
    const text = payload.toString('utf8');
    if (text.includes('"pusher:connection_established"')) {
      link.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: link.session } }));
    } else if (text.includes('"pusher_internal:subscription_succeeded"')) link.joined();
    else if (text.includes('"pusher:ping"')) link.send('{"event":"pusher:pong","data":{}}');
    else if (text.includes('"pusher:error"')) link.failed(`pusher error: ${text}`);
  },
  leave(link) {
    link.send(JSON.stringify({ event: 'pusher:unsubscribe', data: { channel: link.session } }));
    // Pusher does not confirm unsubscribing.
    link.left();
  },
  heartbeat(link) {
    link.send('{"event":"pusher:ping","data":{}}');
  },
};

/** The dialect with this name. */
export function clientProtocol(name: ProtocolName): ClientProtocol {
  switch (name) {
    case 'shardcast':
      return shardcast;
    case 'socketio':
      return socketio;
    case 'pusher':
      return pusher;
    default:
      throw new Error(`unknown client protocol ${String(name satisfies never)}`);
  }
}
