/**
 * A WebSocket handshake by hand, for cases the `ws` client refuses to complete: it
 * aborts when the server selects no subprotocol although the client offered some,
 * while browsers go on (and then see the server's close code). This helper sends the
 * upgrade with exactly the headers given and reports the response status, the
 * selected subprotocol and the frames up to the first one (or the close frame).
 */
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

/** What came back from a hand-made upgrade. */
export interface UpgradeOutcome {
  /** HTTP status of the response (101 when upgraded). */
  status: number;
  /** Sec-WebSocket-Protocol of the response, '' when absent. */
  protocol: string;
  /** Opcodes of the data frames received before the close frame. */
  frames: number[];
  /** Close code of the server's close frame, or 0 when the socket ended without one. */
  closeCode: number;
  closeReason: string;
}

/**
 * Upgrades `url` (ws://…) with `headers` added to the handshake; resolves at the first
 * frame the server sends, or with `untilClose` at its close frame.
 */
export function rawUpgrade(url: string, headers: Record<string, string>, opts: { untilClose?: boolean; timeoutMs?: number } = {}): Promise<UpgradeOutcome> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const target = new URL(url.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error('timed out waiting for the close frame'));
    }, timeoutMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      resolve({ status: res.statusCode ?? 0, protocol: '', frames: [], closeCode: 0, closeReason: '' });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('upgrade', (res, socket, head) => {
      const protocol = String(res.headers['sec-websocket-protocol'] ?? '');
      let buf: Buffer = Buffer.from(head);
      const frames: number[] = [];
      const finish = (closeCode: number, closeReason: string) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, protocol, frames, closeCode, closeReason });
      };
      const parse = () => {
        for (;;) {
          const next = readServerFrame(buf);
          if (next === null) return;
          const { opcode, payload } = next;
          buf = next.rest;
          if (opcode === 0x8) {
            finish(payload.length >= 2 ? payload.readUInt16BE(0) : 1005, payload.subarray(2).toString('utf8'));
            return;
          }
          frames.push(opcode);
          if (!opts.untilClose) {
            finish(0, '');
            return;
          }
        }
      };
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        parse();
      });
      socket.on('end', () => finish(0, ''));
      socket.on('error', () => finish(0, ''));
      parse();
    });
    req.end();
  });
}

/** One frame received on a hand-made connection. */
export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

/** A client frame as the wire carries it: masked (RFC 6455 §5.3), binary unless `text`. */
export function maskedFrame(payload: Uint8Array | string, opcode = typeof payload === 'string' ? 0x1 : 0x2): Buffer {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]) : (() => {
    const h = Buffer.alloc(10);
    h[0] = 0x80 | opcode;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(len), 2);
    return h;
  })();
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

/**
 * Sends the upgrade request, then `frames` the moment the 101 response is read, in
 * one write: a client that waits for nothing else (not for `hello`). Collects server
 * frames until `count` arrived, a close frame came, or `timeoutMs` passed.
 */
export async function rawSession(url: string, frames: Uint8Array[], opts: { headers?: Record<string, string>; count: number; timeoutMs?: number }): Promise<RawFrame[]> {
  return (await rawWire(url, Buffer.concat(frames.map((f) => maskedFrame(f))), opts)).frames;
}

/** How a hand-made session ended: the server's frames, and whether the socket closed (else the timeout came first). */
export interface WireOutcome {
  frames: RawFrame[];
  closed: boolean;
}

/**
 * As rawSession, but `wire` goes out exactly as given once the 101 is read: frames
 * framed by hand, so they may break RFC 6455 (RSV bits, reserved opcodes, no mask).
 */
export function rawWire(url: string, wire: Buffer, opts: { headers?: Record<string, string>; count: number; timeoutMs?: number }): Promise<WireOutcome> {
  const target = new URL(url.replace(/^ws/, 'http'));
  const lines = [
    `GET ${target.pathname}${target.search} HTTP/1.1`,
    `Host: ${target.host}`,
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ];
  return new Promise((resolve) => {
    const got: RawFrame[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let upgraded = false;
    const socket = net.connect(Number(target.port), target.hostname, () => {
      socket.write(Buffer.from(lines.join('\r\n')));
    });
    const done = (closed = false) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ frames: got, closed });
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 5000);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        buf = buf.subarray(end + 4);
        // RFC 6455 §4.1: a client sends frames only once it read the handshake response.
        socket.write(wire);
      }
      for (;;) {
        const next = readServerFrame(buf);
        if (next === null) return;
        const frame = { opcode: next.opcode, payload: Buffer.from(next.payload) };
        buf = next.rest;
        got.push(frame);
        if (frame.opcode === 0x8 || got.length >= opts.count) return done(frame.opcode === 0x8);
      }
    });
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
  });
}

/** Splits one unmasked server frame off the front of `buf`, or null until it is complete. */
function readServerFrame(buf: Buffer): { opcode: number; payload: Buffer; rest: Buffer } | null {
  if (buf.length < 2) return null;
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  if (buf.length < at + len) return null;
  return { opcode: buf[0] & 0x0f, payload: buf.subarray(at, at + len), rest: buf.subarray(at + len) };
}
