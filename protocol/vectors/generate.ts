/**
 * Writes client.json, server.json and invalid.json in this folder from the frames below,
 * encoded with protocol/codec.ts. The JSON files are the contract: regenerate them only
 * on purpose (a deliberate encoding change), then review the diff.
 *
 *   npm run build && node dist/protocol/vectors/generate.js
 *
 * Field order in every frame follows protocol/frames.ts (and SPEC.md), because msgpack
 * maps keep the order they were written in and the vectors pin our exact bytes.
 */
import { writeFileSync } from 'node:fs';
import { encode, encodeClientFrame, encodeServerFrame } from '../codec.js';
import { CloseCode, ErrorCode } from '../codes.js';
import { DEFAULT_LIMITS, type ClientFrame, type ServerFrame } from '../frames.js';
import { parseClientFrame } from '../validate.js';
import { toJsonValue, vectorsDir, type FrameVector, type InvalidVector } from './load.js';

const bin = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** Hex of a value as our codec writes it, for splicing into hand-built malformed messages. */
const h = (v: unknown) => hexOf(encode(v));

const client: Array<[string, string, ClientFrame]> = [
  ['join', 'Join without a position: the reply is joined with rec=false and the snapshot.', { t: 'join', id: 1, s: 'quiz:42' }],
  ['join-resume', 'Join resuming after the last event seen (epoch k3x9, seq 17).', { t: 'join', id: 2, s: 'quiz:42', ep: 'k3x9', seq: 17 }],
  ['join-presence', 'Join asking for the presence list in the reply.', { t: 'join', id: 3, s: 'chat:lobby', pres: true }],
  [
    'join-all-fields',
    'Every join field; seq 70000 needs a uint32.',
    { t: 'join', id: 4, s: 'quiz:42', ep: 'k3x9', seq: 70000, pres: false },
  ],
  ['leave', 'Leave a joined session.', { t: 'leave', id: 5, s: 'quiz:42' }],
  [
    'pub',
    'Client publish into a chat session; non-ASCII text is UTF-8 in a msgpack str.',
    { t: 'pub', id: 6, s: 'chat:lobby', type: 'msg', data: { text: 'hi all 👋' } },
  ],
  ['pub-nil-data', 'data is required but may be nil.', { t: 'pub', id: 7, s: 'chat:lobby', type: 'typing', data: null }],
  [
    'cmd',
    'A quiz answer; cid makes retries idempotent.',
    { t: 'cmd', id: 8, s: 'quiz:42', cid: 'a-3-1', type: 'answer', data: { q: 3, choice: 2 } },
  ],
  [
    'cmd-rich-data',
    'data with every allowed kind of value: map, array, negative int, float64, bin, bool, nil.',
    {
      t: 'cmd',
      id: 9,
      s: 'poll:7',
      cid: '0b9f2c4e',
      type: 'vote',
      data: { picks: [1, 3], weights: [0.5, -1.25], delta: -300, sig: bin('deadbeef'), final: true, note: null },
    },
  ],
  ['presence', 'Ask who is in a joined session.', { t: 'presence', id: 10, s: 'chat:lobby' }],
  ['ping', 'Application ping; the smallest client frame.', { t: 'ping', id: 1 }],
  ['ping-max-id', 'The largest request id, 2^32-1.', { t: 'ping', id: 4294967295 }],
];

const TS = 1763830000000;
const question = { q: 4, text: '2 + 2 = ?', choices: ['3', '4', '5'] };
const board = { top: [{ u: 'alice', pts: 30 }, { u: 'bob', pts: 20 }] };

const server: Array<[string, string, ServerFrame]> = [
  ['hello', 'First frame on every connection; ping is the idle timeout in seconds.', { t: 'hello', v: 1, conn: 'c-3f9a1', user: 'alice', ping: 60 }],
  [
    'joined-recovered',
    'Resume succeeded: the missed ev frames 18..20 follow this frame in order.',
    { t: 'joined', id: 2, s: 'quiz:42', ep: 'k3x9', seq: 20, rec: true },
  ],
  [
    'joined-snapshot',
    'No position given (or history lost): the latest value of each snapshot key; live events continue after seq 20.',
    {
      t: 'joined',
      id: 1,
      s: 'quiz:42',
      ep: 'k3x9',
      seq: 20,
      rec: false,
      snap: {
        question: { seq: 19, type: 'question', data: question, ts: TS },
        leaderboard: { seq: 20, type: 'leaderboard', data: board, ts: TS + 1500 },
      },
    },
  ],
  [
    'resync',
    "The session's history was lost mid-stream: a new epoch, the snapshot, live events continue after seq 3.",
    {
      t: 'resync',
      s: 'quiz:42',
      ep: 'm7q2',
      seq: 3,
      snap: { question: { seq: 3, type: 'question', data: question, ts: TS + 9000 } },
    },
  ],
  [
    'joined-presence',
    'Join asked with pres=true in a session without history yet: empty snapshot, presence list.',
    {
      t: 'joined',
      id: 3,
      s: 'chat:lobby',
      ep: 'p0',
      seq: 0,
      rec: false,
      snap: {},
      pres: [{ u: 'alice', n: 1 }, { u: 'bob', n: 2 }],
    },
  ],
  ['left', 'Reply to leave.', { t: 'left', id: 5, s: 'quiz:42' }],
  [
    'ev',
    'An event that sets the snapshot key "question"; ts (ms) is above 2^32 so it is a float64.',
    { t: 'ev', s: 'quiz:42', seq: 21, ep: 'k3x9', type: 'question', data: question, ts: TS + 5123, k: 'question' },
  ],
  [
    'ev-conflatable',
    'A latest-value event: a lagging client may get only the newest frame with k=leaderboard.',
    { t: 'ev', s: 'quiz:42', seq: 22, ep: 'k3x9', type: 'leaderboard', data: board, ts: TS + 6000, k: 'leaderboard', c: true },
  ],
  [
    'ev-chat',
    'A plain event without snapshot key.',
    { t: 'ev', s: 'chat:lobby', seq: 5, ep: 'p0', type: 'msg', data: { from: 'bob', text: 'hi' }, ts: TS + 7000 },
  ],
  [
    'ev-bin',
    'Event data carrying a msgpack bin.',
    { t: 'ev', s: 'chat:lobby', seq: 6, ep: 'p0', type: 'blob', data: bin('00ff10'), ts: TS + 7001 },
  ],
  ['ack-pub', 'pub accepted: the event got seq 6.', { t: 'ack', id: 6, seq: 6 }],
  ['ack-cmd', 'cmd durable in the journal.', { t: 'ack', id: 8, cid: 'a-3-1' }],
  ['ack-cmd-dup', 'A retry of an already durable cmd: acknowledged, never applied twice.', { t: 'ack', id: 11, cid: 'a-3-1', dup: true }],
  ['ack', 'The smallest ack.', { t: 'ack', id: 12 }],
  [
    'error',
    'A request failed; the connection stays open.',
    { t: 'error', id: 7, code: ErrorCode.Forbidden, msg: 'token does not allow session quiz:43' },
  ],
  [
    'error-no-id',
    'An error not tied to a request.',
    { t: 'error', code: ErrorCode.RateLimited, msg: 'more than 50 frames/s; slow down' },
  ],
  ['presence', 'Reply to presence.', { t: 'presence', id: 10, s: 'chat:lobby', users: [{ u: 'alice', n: 1 }, { u: 'bob', n: 2 }] }],
  ['presence-empty', 'Nobody else is there.', { t: 'presence', id: 13, s: 'chat:empty', users: [] }],
  ['pjoin', "A user's first connection joined.", { t: 'pjoin', s: 'chat:lobby', u: 'carol' }],
  ['pleave', "A user's last connection left.", { t: 'pleave', s: 'chat:lobby', u: 'carol' }],
  ['pong', 'Reply to ping, with the server clock.', { t: 'pong', id: 1, now: 1764511200000 }],
  ['pong-no-clock', 'Reply to ping from a server that does not send its clock.', { t: 'pong', id: 2 }],
  [
    'goaway',
    'Draining: reconnect after 2750 ms and rejoin each session from its resume point.',
    {
      t: 'goaway',
      reason: 'shutdown',
      delay: 2750,
      pos: [
        { s: 'quiz:42', ep: 'k3x9', seq: 22 },
        { s: 'chat:lobby', ep: 'p0', seq: 6 },
      ],
    },
  ],
  ['goaway-no-sessions', 'Draining a connection that joined nothing.', { t: 'goaway', reason: 'shutdown', delay: 400, pos: [] }],
];

const PING = h('t') + h('ping') + h('id') + h(1); // the two entries of {t:'ping', id:1}
const close = (code: number) => ({ kind: 'close' as const, code });
const error = (code: number, id?: number) => (id === undefined ? { kind: 'error' as const, code } : { kind: 'error' as const, code, id });
const cmdWithData = (dataHex: string) =>
  '86' + h('t') + h('cmd') + h('id') + h(9) + h('s') + h('q:1') + h('cid') + h('c1') + h('type') + h('x') + h('data') + dataHex;

const invalid: Array<Omit<InvalidVector, 'hex'> & { hex: string }> = [
  { name: 'empty', comment: 'A binary message with no bytes.', hex: '', expect: close(CloseCode.ProtocolError) },
  { name: 'reserved-byte', comment: '0xc1 is never used in msgpack.', hex: 'c1', expect: close(CloseCode.ProtocolError) },
  { name: 'truncated', comment: 'A ping frame missing its last byte.', hex: '82' + PING.slice(0, -2), expect: close(CloseCode.ProtocolError) },
  { name: 'trailing-bytes', comment: 'A valid ping followed by a nil: two values in one message.', hex: '82' + PING + 'c0', expect: close(CloseCode.ProtocolError) },
  { name: 'not-a-map', comment: 'The top-level value is an array.', hex: '91' + '82' + PING, expect: close(CloseCode.ProtocolError) },
  { name: 'str-top-level', comment: 'The top-level value is a str.', hex: h('ping'), expect: close(CloseCode.ProtocolError) },
  { name: 'no-t', comment: 'A map without t.', hex: '81' + h('id') + h(1), expect: close(CloseCode.ProtocolError) },
  { name: 't-not-str', comment: 't is an int.', hex: '82' + h('t') + h(1) + h('id') + h(1), expect: close(CloseCode.ProtocolError) },
  {
    name: 'timestamp-ext',
    comment: 'A msgpack timestamp (ext -1) in data: extension types are not part of the protocol.',
    hex: cmdWithData('d6ff65a1b2c3'),
    expect: close(CloseCode.ProtocolError),
  },
  { name: 'ext-0', comment: 'ext type 0 (some encoders write undefined so).', hex: cmdWithData('d40000'), expect: close(CloseCode.ProtocolError) },
  {
    name: 'record-ext',
    comment: "msgpackr's record extension (0x72).",
    hex: cmdWithData('d4724091' + h('a') + '01'),
    expect: close(CloseCode.ProtocolError),
  },
  { name: 'uint64-too-big', comment: '2^53+1 does not fit a double exactly.', hex: cmdWithData('cf0020000000000001'), expect: close(CloseCode.ProtocolError) },
  { name: 'int-map-key', comment: 'Map keys must be str.', hex: cmdWithData('810102'), expect: close(CloseCode.ProtocolError) },
  {
    name: 'duplicate-key',
    comment: '{t:"ping", id:1, id:2}: decoders disagree on which value wins.',
    hex: '83' + PING + h('id') + h(2),
    expect: close(CloseCode.ProtocolError),
  },
  { name: 'proto-key', comment: 'A __proto__ key anywhere.', hex: cmdWithData('81' + h('__proto__') + '80'), expect: close(CloseCode.ProtocolError) },
  {
    name: 'huge-array-claim',
    comment: 'An array32 claiming 4294967295 elements in a 40-byte frame: refused before allocating.',
    hex: cmdWithData('ddffffffff'),
    expect: close(CloseCode.ProtocolError),
  },
  { name: 'invalid-utf8', comment: 'A str that is not UTF-8.', hex: cmdWithData('a2c328'), expect: close(CloseCode.ProtocolError) },
  {
    name: 'too-deep',
    comment: 'Nesting beyond 4 × maxDepth (64) levels anywhere in the frame.',
    hex: cmdWithData('91'.repeat(64) + 'c0'),
    expect: close(CloseCode.ProtocolError),
  },
  {
    name: 'too-big',
    comment: 'A 14-byte ping (id as uint16) against maxFrameBytes 12 (the limit is configurable; default 16 KiB).',
    hex: '82' + PING.slice(0, -2) + 'cd0001',
    limits: { maxFrameBytes: 12 },
    expect: close(CloseCode.MessageTooBig),
  },
  { name: 'unknown-type', comment: 'An unknown t with a valid id.', hex: '82' + h('t') + h('subscribe') + h('id') + h(3), expect: error(ErrorCode.UnknownFrame, 3) },
  { name: 'server-type', comment: 'A server frame type sent by a client.', hex: '82' + h('t') + h('hello') + h('id') + h(3), expect: error(ErrorCode.UnknownFrame, 3) },
  { name: 'missing-id', comment: 'ping without id: answered without id.', hex: '81' + h('t') + h('ping'), expect: error(ErrorCode.BadRequest) },
  { name: 'id-too-big', comment: 'id 2^32 is out of range.', hex: '82' + h('t') + h('ping') + h('id') + 'cf0000000100000000', expect: error(ErrorCode.BadRequest) },
  { name: 'negative-id', comment: 'id -1.', hex: '82' + h('t') + h('ping') + h('id') + 'ff', expect: error(ErrorCode.BadRequest) },
  { name: 'unknown-key', comment: 'Client frames are strict: no extra keys.', hex: '83' + PING + h('x') + h(1), expect: error(ErrorCode.BadRequest, 1) },
  {
    name: 'session-chars',
    comment: 'A session id with a space.',
    hex: '83' + h('t') + h('join') + h('id') + h(4) + h('s') + h('quiz 42'),
    expect: error(ErrorCode.InvalidSession, 4),
  },
  {
    name: 'session-too-long',
    comment: 'A session id of 129 characters.',
    hex: '83' + h('t') + h('join') + h('id') + h(4) + h('s') + h('q'.repeat(129)),
    expect: error(ErrorCode.InvalidSession, 4),
  },
  { name: 'session-not-str', comment: 's is an int.', hex: '83' + h('t') + h('leave') + h('id') + h(4) + h('s') + h(42), expect: error(ErrorCode.BadRequest, 4) },
  {
    name: 'ep-without-seq',
    comment: 'ep and seq come together.',
    hex: '84' + h('t') + h('join') + h('id') + h(4) + h('s') + h('quiz:42') + h('ep') + h('k3x9'),
    expect: error(ErrorCode.BadRequest, 4),
  },
  {
    name: 'nil-optional',
    comment: 'Optional fields are omitted, never nil.',
    hex: '84' + h('t') + h('join') + h('id') + h(4) + h('s') + h('quiz:42') + h('pres') + h(null),
    expect: error(ErrorCode.BadRequest, 4),
  },
  {
    name: 'negative-seq',
    comment: 'seq is a uint.',
    hex: '85' + h('t') + h('join') + h('id') + h(4) + h('s') + h('quiz:42') + h('ep') + h('k3x9') + h('seq') + h(-1),
    expect: error(ErrorCode.BadRequest, 4),
  },
  { name: 'cid-too-long', comment: 'cid of 65 bytes.', hex: cmdWithData('c0').replace(h('c1'), h('c'.repeat(65))), expect: error(ErrorCode.BadRequest, 9) },
  { name: 'empty-type', comment: 'type must not be empty.', hex: cmdWithData('c0').replace(h('type') + h('x'), h('type') + h('')), expect: error(ErrorCode.BadRequest, 9) },
  { name: 'nan-data', comment: 'NaN is not a finite number.', hex: cmdWithData('cb7ff8000000000000'), expect: error(ErrorCode.BadRequest, 9) },
  { name: 'data-too-deep', comment: 'data nested 17 levels (maxDepth 16).', hex: cmdWithData('91'.repeat(17) + 'c0'), expect: error(ErrorCode.PayloadTooLarge, 9) },
  { name: 'missing-data', comment: 'cmd without data.', hex: '85' + cmdWithData('').slice(2, -h('data').length), expect: error(ErrorCode.BadRequest, 9) },
];

function frameVector(name: string, comment: string, bytes: Uint8Array, value: unknown): FrameVector {
  return { name, comment, hex: hexOf(bytes), value: toJsonValue(value) };
}

function main(): void {
  const dir = vectorsDir();
  const clientVectors = client.map(([name, comment, f]) => frameVector(name, comment, encodeClientFrame(f), f));
  const serverVectors = server.map(([name, comment, f]) => frameVector(name, comment, encodeServerFrame(f), f));
  for (const v of clientVectors) {
    const r = parseClientFrame(bin(v.hex), DEFAULT_LIMITS);
    if (r.kind !== 'frame') throw new Error(`client vector ${v.name} does not validate: ${JSON.stringify(r)}`);
  }
  for (const v of invalid) {
    const r = parseClientFrame(bin(v.hex), { ...DEFAULT_LIMITS, ...v.limits });
    const got = r.kind === 'frame' ? { kind: 'frame' } : r.kind === 'close' ? close(r.code) : error(r.code, r.id);
    if (JSON.stringify(got) !== JSON.stringify(v.expect)) {
      throw new Error(`invalid vector ${v.name}: expected ${JSON.stringify(v.expect)}, got ${JSON.stringify(r)}`);
    }
  }
  const write = (file: string, data: unknown) => writeFileSync(`${dir}${file}`, `${JSON.stringify(data, null, 2)}\n`);
  write('client.json', clientVectors);
  write('server.json', serverVectors);
  write('invalid.json', invalid);
  process.stdout.write(`wrote ${clientVectors.length} client, ${serverVectors.length} server, ${invalid.length} invalid vectors to ${dir}\n`);
}

main();
