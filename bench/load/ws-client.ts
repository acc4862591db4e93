/**
 * A minimal WebSocket client over node:net, built to cost the load generator as
 * little as possible per frame: no extensions, no UTF-8 validation, no per-frame
 * allocation when a read holds whole frames, and an all-zero mask key so outgoing
 * payloads need no XOR (a valid RFC 6455 frame; masking protects browsers from
 * cache poisoning, which is moot on loopback). Messages are handed over as Buffer
 * views that are only valid during the callback.
 */
import { connect, type Socket } from 'node:net';

/** Opcode of a complete message handed to `onMessage`. */
export const OPCODE_TEXT = 1;
export const OPCODE_BINARY = 2;
const OPCODE_CONTINUATION = 0;
const OPCODE_CLOSE = 8;
const OPCODE_PING = 9;
const OPCODE_PONG = 10;

/** Where and how to open one connection. */
export interface WsClientOptions {
  host: string;
  port: number;
  /** Request path with query string. */
  path: string;
  /** Source address on loopback (127.0.0.x) to spread connections over port ranges. */
  localAddress?: string;
  /** Offered in Sec-WebSocket-Protocol when set. */
  subprotocol?: string;
}

/** Callbacks of one connection; all are optional except onMessage. */
export interface WsClientHandlers {
  onOpen?(): void;
  /** `payload` is a view valid only during the call. */
  onMessage(opcode: number, payload: Buffer): void;
  /** Called once, whatever ended the connection; `error` when it failed. */
  onClose?(code: number, error?: Error): void;
}

// A fixed key: the server's Sec-WebSocket-Accept is not checked (loopback, our own test).
const HANDSHAKE_KEY = 'c2hhcmRjYXN0LWJlbmNoIQ==';
const HEADER_END = Buffer.from('\r\n\r\n');
const ZERO_MASK = Buffer.alloc(4);
// Every connection of a thread reads into this one buffer (net's `onread`), which
// skips the stream machinery and a Buffer allocation per read; handlers run
// synchronously and copy whatever they keep.
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** One client connection. */
export class WsClient {
  private readonly socket: Socket;
  private readonly handlers: WsClientHandlers;
  private open = false;
  private closed = false;
  private pending: Buffer | null = null;
  private fragments: Buffer[] | null = null;
  private fragmentOpcode = 0;

  constructor(options: WsClientOptions, handlers: WsClientHandlers) {
    this.handlers = handlers;
    this.socket = connect({
      host: options.host,
      port: options.port,
      localAddress: options.localAddress,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array) => {
          this.onData((buffer as Buffer).subarray(0, bytes));
          return true;
        },
      },
    });
    this.socket.on('connect', () => {
      let request =
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n`;
      if (options.subprotocol) request += `Sec-WebSocket-Protocol: ${options.subprotocol}\r\n`;
      this.socket.write(request + '\r\n');
    });
    this.socket.on('error', (err) => this.finish(1006, err));
    this.socket.on('close', () => this.finish(1006));
  }

  /** True between the 101 response and the end of the connection. */
  get isOpen(): boolean {
    return this.open && !this.closed;
  }

  /** Sends one text or binary message. */
  send(data: Buffer | Uint8Array | string, opcode = typeof data === 'string' ? OPCODE_TEXT : OPCODE_BINARY): void {
    if (!this.isOpen) return;
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    this.writeFrame(opcode, payload);
  }

  /** Sends a WebSocket ping (a transport-level heartbeat). */
  ping(): void {
    if (this.isOpen) this.writeFrame(OPCODE_PING, Buffer.alloc(0));
  }

  /** Starts the closing handshake; the socket ends when the server answers or after a grace. */
  close(code = 1000): void {
    if (this.closed) return;
    if (this.open) {
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code);
      this.writeFrame(OPCODE_CLOSE, body);
      this.socket.end();
      // A server that never answers must not keep the run alive.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }

  /** Drops the TCP connection at once, without a closing handshake. */
  destroy(): void {
    this.socket.destroy();
  }

  private writeFrame(opcode: number, payload: Buffer | Uint8Array): void {
    const length = payload.length;
    let header: Buffer;
    if (length < 126) {
      header = Buffer.allocUnsafe(6);
      header[1] = 0x80 | length;
      ZERO_MASK.copy(header, 2);
    } else if (length < 65536) {
      header = Buffer.allocUnsafe(8);
      header[1] = 0x80 | 126;
      header.writeUInt16BE(length, 2);
      ZERO_MASK.copy(header, 4);
    } else {
      header = Buffer.allocUnsafe(14);
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(length), 2);
      ZERO_MASK.copy(header, 10);
    }
    header[0] = 0x80 | opcode;
    this.socket.cork();
    this.socket.write(header);
    if (length > 0) this.socket.write(payload);
    this.socket.uncork();
  }

  private onData(chunk: Buffer): void {
    let buffer = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    if (!this.open) {
      const end = buffer.indexOf(HEADER_END);
      if (end < 0) {
        this.pending = Buffer.from(buffer);
        return;
      }
      const status = buffer.toString('latin1', 0, Math.min(end, 16));
      if (!status.startsWith('HTTP/1.1 101')) {
        const line = buffer.toString('latin1', 0, buffer.indexOf('\r\n'));
        this.finish(1006, new Error(`upgrade refused: ${line}`));
        this.socket.destroy();
        return;
      }
      this.open = true;
      this.handlers.onOpen?.();
      buffer = buffer.subarray(end + 4);
    }
    let offset = 0;
    const total = buffer.length;
    while (total - offset >= 2) {
      const b0 = buffer[offset];
      const b1 = buffer[offset + 1];
      let length = b1 & 0x7f;
      let headerLength = 2;
      if (length === 126) {
        if (total - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        headerLength = 4;
      } else if (length === 127) {
        if (total - offset < 10) break;
        length = Number(buffer.readBigUInt64BE(offset + 2));
        headerLength = 10;
      }
      // Servers never mask; a masked frame is skipped whole rather than misparsed.
      if (b1 & 0x80) headerLength += 4;
      if (total - offset < headerLength + length) break;
      const payload = buffer.subarray(offset + headerLength, offset + headerLength + length);
      offset += headerLength + length;
      this.onFrame(b0 & 0x80, b0 & 0x0f, payload);
      if (this.closed) return;
    }
    if (offset < total) this.pending = Buffer.from(buffer.subarray(offset));
  }

  private onFrame(fin: number, opcode: number, payload: Buffer): void {
    if (opcode === OPCODE_TEXT || opcode === OPCODE_BINARY) {
      if (fin) this.handlers.onMessage(opcode, payload);
      else {
        this.fragmentOpcode = opcode;
        this.fragments = [Buffer.from(payload)];
      }
    } else if (opcode === OPCODE_CONTINUATION) {
      if (this.fragments === null) return;
      this.fragments.push(Buffer.from(payload));
      if (fin) {
        const whole = Buffer.concat(this.fragments);
        this.fragments = null;
        this.handlers.onMessage(this.fragmentOpcode, whole);
      }
    } else if (opcode === OPCODE_PING) {
      this.writeFrame(OPCODE_PONG, Buffer.from(payload));
    } else if (opcode === OPCODE_CLOSE) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (!this.closed) {
        const body = Buffer.alloc(2);
        body.writeUInt16BE(code === 1005 ? 1000 : code);
        this.writeFrame(OPCODE_CLOSE, body);
      }
      this.socket.end();
      this.finish(code);
    }
  }

  private finish(code: number, error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose?.(code, error);
  }
}
