// End to end: WebSocket framing violations (RFC 6455 §5) against one daemon. The
// transport (uWS) judges these before any frame reaches Shardcast's code, and drops
// the TCP connection without a close frame (clients see 1006), as protocol/SPEC.md §2
// says; a well-framed text message or oversized message gets its own close code
// (4500, 4503). An unmasked frame is the exception: uWS takes its first four payload
// bytes for the mask and waits for the rest, so it is closed by the idle timeout
// (1000). What users rely on: every such connection ends, none is left hanging, and
// the daemon and its other clients carry on.
import t from 'tap';
import { encode } from '../../protocol/codec.js';
import { CloseCode } from '../../protocol/codes.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { RawClient } from '../support/raw-client.js';
import { maskedFrame, rawWire } from '../support/raw-upgrade.js';

const MAX_FRAME_BYTES = 1024;
/** The shortest idle timeout allowed: how long an unmasked frame's connection can hang. */
const IDLE_TIMEOUT_S = 8;
let daemon: DaemonProcess;

t.before(async () => {
  daemon = await startDaemon({ SHARDCAST_SHARDS: '2', SHARDCAST_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES), SHARDCAST_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S) });
});
t.teardown(() => daemon?.stop());

/** A masked frame with its first byte changed by `edit` (FIN, RSV bits, opcode). */
function edited(payload: Uint8Array, opcode: number, edit: (b0: number) => number): Buffer {
  const f = maskedFrame(payload, opcode);
  f[0] = edit(f[0]);
  return f;
}

/** A binary frame without the mask a client must set (RFC 6455 §5.3). */
function unmasked(payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x82, payload.length]), payload]);
}

const ping = encode({ t: 'ping', id: 1 });

const violations: Array<[string, Buffer]> = [
  ['RSV1 set without an extension', edited(ping, 0x2, (b) => b | 0x40)],
  ['RSV2 and RSV3 set', edited(ping, 0x2, (b) => b | 0x30)],
  ['a reserved data opcode (0x3)', maskedFrame(ping, 0x3)],
  ['a reserved control opcode (0xB)', maskedFrame(Buffer.alloc(0), 0xb)],
  ['a control frame over 125 bytes', maskedFrame(Buffer.alloc(126), 0x9)],
  ['a fragmented control frame', edited(Buffer.alloc(4), 0x9, (b) => b & 0x7f)],
  ['a continuation frame with nothing to continue', maskedFrame(ping, 0x0)],
  ['invalid UTF-8 in a text message', maskedFrame(Buffer.from([0x80, 0xff, 0xfe]), 0x1)],
];

t.test('every framing violation ends the connection promptly; the daemon and its clients carry on', async (t) => {
  const healthy = await RawClient.connect(daemon.ws, { user: 'healthy' });
  t.teardown(() => healthy.close());
  t.equal((await healthy.join('quiz:framing')).t, 'joined');
  for (const [name, wire] of violations) {
    const r = await rawWire(`${daemon.ws}?user=framing`, wire, { headers: { 'Sec-WebSocket-Protocol': 'shardcast.v1' }, count: 50, timeoutMs: 5000 });
    t.ok(r.closed, `${name}: the connection ended within 5 s`);
    const close = r.frames.find((f) => f.opcode === 0x8);
    t.equal(close, undefined, `${name}: dropped without a close frame (1006)`);
    // The frame was never handled: at most hello came (it may be sent after the drop was decided).
    t.ok(r.frames.filter((f) => f.opcode !== 0x8).length <= 1, `${name}: nothing but hello before the end`);
  }
  const res = await daemon.publish({ session: 'quiz:framing', type: 'after', data: 1 });
  t.equal(res.status, 200);
  await healthy.until((fs) => fs.some((f) => f.t === 'ev' && f.s === 'quiz:framing' && f.type === 'after'));
  t.pass('a client joined before still gets events');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
});

t.test('a message over the transport limit ends the connection; one just over maxFrameBytes gets 4503', async (t) => {
  const over = await rawWire(`${daemon.ws}?user=big`, maskedFrame(Buffer.alloc(MAX_FRAME_BYTES + 1)), { headers: { 'Sec-WebSocket-Protocol': 'shardcast.v1' }, count: 50 });
  const overClose = over.frames.find((f) => f.opcode === 0x8);
  t.equal(overClose?.payload.readUInt16BE(0), CloseCode.MessageTooBig, 'one byte over maxFrameBytes: 4503');
  const far = await rawWire(`${daemon.ws}?user=huge`, maskedFrame(Buffer.alloc(4 * MAX_FRAME_BYTES + 4096)), { headers: { 'Sec-WebSocket-Protocol': 'shardcast.v1' }, count: 50 });
  t.ok(far.closed, 'far beyond it (past the transport limit): the connection ended');
  const farClose = far.frames.find((f) => f.opcode === 0x8);
  const code = farClose === undefined ? 1006 : farClose.payload.readUInt16BE(0);
  t.ok(code === 1006 || code === CloseCode.MessageTooBig, `closed with ${code}`);
});

t.test('an unmasked frame is never handled; the idle timeout closes its connection with 1000', async (t) => {
  const started = Date.now();
  const r = await rawWire(`${daemon.ws}?user=unmasked`, unmasked(ping), { headers: { 'Sec-WebSocket-Protocol': 'shardcast.v1' }, count: 50, timeoutMs: (IDLE_TIMEOUT_S + 5) * 1000 });
  t.ok(r.closed, `the connection ended (after ${Date.now() - started} ms)`);
  const close = r.frames.find((f) => f.opcode === 0x8);
  t.equal(close?.payload.readUInt16BE(0), CloseCode.Normal, 'with 1000 from the idle timeout');
  t.notOk(r.frames.some((f) => f.opcode === 0x2 && f.payload.includes(Buffer.from('pong'))), 'the ping inside it was never answered');
});
