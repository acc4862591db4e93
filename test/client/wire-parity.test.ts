/**
 * The SDK carries its own copy of the wire definitions (so its package needs nothing
 * from outside its folder). This pins the copy to the daemon's: same codes, same
 * constants, same bytes for every client frame vector, same decoding, and the frame
 * types assignable both ways.
 */
import t from 'tap';
import * as daemonCodec from '../../protocol/codec.js';
import * as daemonCodes from '../../protocol/codes.js';
import * as daemonFrames from '../../protocol/frames.js';
import * as sdkCodec from '../../protocol/client/wire/codec.js';
import * as sdkCodes from '../../protocol/client/wire/codes.js';
import * as sdkFrames from '../../protocol/client/wire/frames.js';
import { fromJsonValue, loadFrameVectors } from '../../protocol/vectors/load.js';

// Compile-time: a frame of either copy is a frame of the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameClient: Same<daemonFrames.ClientFrame, sdkFrames.ClientFrame> = true;
const sameServer: Same<daemonFrames.ServerFrame, sdkFrames.ServerFrame> = true;

t.test('codes and constants are the daemon\'s', async (t) => {
  t.ok(sameClient && sameServer);
  t.same(sdkCodes.ErrorCode, daemonCodes.ErrorCode);
  t.same(sdkCodes.CloseCode, daemonCodes.CloseCode);
  t.same([...sdkCodes.RETRYABLE_ERRORS].sort(), [...daemonCodes.RETRYABLE_ERRORS].sort());
  for (let code = 999; code <= 5000; code++) {
    if (sdkCodes.closeIsRetryable(code) !== daemonCodes.closeIsRetryable(code)) t.fail(`closeIsRetryable(${code}) differs`);
  }
  t.equal(sdkFrames.SUBPROTOCOL, daemonFrames.SUBPROTOCOL);
  t.equal(sdkFrames.PROTOCOL_VERSION, daemonFrames.PROTOCOL_VERSION);
  t.equal(sdkFrames.WS_PATH, daemonFrames.WS_PATH);
  t.equal(sdkFrames.SESSION_ID_PATTERN.source, daemonFrames.SESSION_ID_PATTERN.source);
});

t.test('client frames encode to the daemon codec\'s bytes; server frames decode alike', async (t) => {
  const client = loadFrameVectors('client');
  const server = loadFrameVectors('server');
  t.ok(client.length > 0 && server.length > 0);
  for (const v of client) {
    const frame = fromJsonValue(v.value) as daemonFrames.ClientFrame;
    t.same(Buffer.from(sdkCodec.encodeClientFrame(frame)).toString('hex'), Buffer.from(daemonCodec.encodeClientFrame(frame)).toString('hex'), `client vector ${v.name}`);
  }
  for (const v of server) {
    const bytes = Uint8Array.from(Buffer.from(v.hex, 'hex'));
    t.same(sdkCodec.decode(bytes), daemonCodec.decode(bytes), `server vector ${v.name}`);
  }
  const big: daemonFrames.ClientFrame = { t: 'cmd', id: 1, s: 'a', cid: 'c', type: 'x', data: { n: 2 ** 40, l: [-(2 ** 35), 1.5] } };
  t.same(Buffer.from(sdkCodec.encodeClientFrame(big)), Buffer.from(daemonCodec.encodeClientFrame(big)), 'integers beyond 32 bits are written exactly, as by the daemon');
});
