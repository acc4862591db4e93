/**
 * A WebSocket handshake by hand, for cases the `ws` client refuses to complete: it
 * aborts when the server selects no subprotocol although the client offered some,
 * while browsers go on (and then see the server's close code). This helper sends the
 * upgrade with exactly the headers given and reports the response status, the
 * selected subprotocol and the frames up to the first one (or the close frame).
 */
import http from 'node:http';
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
      let buf = Buffer.from(head);
      const frames: number[] = [];
      const finish = (closeCode: number, closeReason: string) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, protocol, frames, closeCode, closeReason });
      };
      const parse = () => {
        for (;;) {
          if (buf.length < 2) return;
          const opcode = buf[0] & 0x0f;
          let len = buf[1] & 0x7f;
          let at = 2;
          if (len === 126) {
            if (buf.length < 4) return;
            len = buf.readUInt16BE(2);
            at = 4;
          } else if (len === 127) {
            if (buf.length < 10) return;
            len = Number(buf.readBigUInt64BE(2));
            at = 10;
          }
          if (buf.length < at + len) return;
          const payload = buf.subarray(at, at + len);
          buf = buf.subarray(at + len);
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
