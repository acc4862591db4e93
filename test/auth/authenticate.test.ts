import t, { type Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { authenticate, truncateUtf8, MAX_CLOSE_REASON_BYTES } from '../../daemon/auth/authenticate.js';
import { signJwt } from '../../daemon/auth/jwt.js';
import { loadConfig } from '../../daemon/config/load.js';
import { CloseCode } from '../../protocol/codes.js';

const SECRET = 'x'.repeat(48);
const API_KEY = 'k'.repeat(32);
const NOW = Date.UTC(2026, 5, 1);
const nowS = NOW / 1000;

const hsConfig = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_JWT_SECRET: SECRET, SHARDCAST_JWT_ISSUER: 'quiz-service', SHARDCAST_JWT_AUDIENCE: 'shardcast' }).config;
const devConfig = loadConfig({ SHARDCAST_DEV_MODE: 'true' }).config;
const hs = (claims: Record<string, unknown>) =>
  signJwt({ sub: 'u1', iss: 'quiz-service', aud: 'shardcast', exp: nowS + 600, ...claims }, { alg: 'HS256', secret: SECRET });

function refused(t: Test, result: ReturnType<typeof authenticate>, closeCode: number, reason: RegExp): void {
  t.equal(result.ok, false);
  if (result.ok) return;
  t.equal(result.closeCode, closeCode);
  t.match(result.reason, reason);
  t.ok(Buffer.byteLength(result.reason) <= MAX_CLOSE_REASON_BYTES, 'fits a close frame');
}

t.test('a good token yields its principal', async (t) => {
  const result = authenticate({ token: hs({ sessions: ['quiz:*'], role: 'host' }) }, { config: hsConfig, now: NOW });
  t.same(result, { ok: true, principal: { user: 'u1', sessions: ['quiz:*'], role: 'host', exp: nowS + 600 } });
});

t.test('failures map to close codes', async (t) => {
  const ctx = { config: hsConfig, now: NOW };
  refused(t, authenticate({ token: hs({ exp: nowS - 600 }) }, ctx), CloseCode.TokenExpired, /expired/);
  refused(t, authenticate({}, ctx), CloseCode.AuthFailed, /missing token/);
  refused(t, authenticate({ token: '' }, ctx), CloseCode.AuthFailed, /missing token/);
  refused(t, authenticate({ token: 'garbage' }, ctx), CloseCode.AuthFailed, /not three base64url parts/);
  refused(t, authenticate({ token: hs({}).slice(0, -2) + 'AA' }, ctx), CloseCode.AuthFailed, /signature/);
  refused(t, authenticate({ token: signJwt({ sub: 'u1' }, { alg: 'HS256', secret: 'y'.repeat(48) }) }, ctx), CloseCode.AuthFailed, /signature does not verify/);
  refused(t, authenticate({ token: hs({ iss: 'evil' }) }, ctx), CloseCode.AuthFailed, /issuer/);
  refused(t, authenticate({ token: hs({ aud: 'other' }) }, ctx), CloseCode.AuthFailed, /audience/);
  refused(t, authenticate({ token: hs({ nbf: nowS + 3600 }) }, ctx), CloseCode.AuthFailed, /not valid yet/);
  refused(t, authenticate({ token: hs({ sub: '' }) }, ctx), CloseCode.AuthFailed, /sub claim/);
  refused(t, authenticate({ token: hs({ sessions: 'quiz:*' }) }, ctx), CloseCode.AuthFailed, /sessions claim/);
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.`;
  refused(t, authenticate({ token: none }, ctx), CloseCode.AuthFailed, /algorithm "none" is not supported/);
  refused(t, authenticate({ devUser: 'alice' }, ctx), CloseCode.AuthFailed, /only in dev mode/);
});

t.test('RS256 / ES256 from jwtPublicKeyFile, HS256 refused then', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string) + (ec.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  const dir = t.testdir({ 'keys.pem': pem });
  const { config } = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_JWT_PUBLIC_KEY_FILE: join(dir, 'keys.pem') });
  const claims = { sub: 'u2', sessions: ['poll:1'] };
  const rs = authenticate({ token: signJwt(claims, { alg: 'RS256', privateKey: rsa.privateKey }) }, { config });
  t.same(rs, { ok: true, principal: { user: 'u2', sessions: ['poll:1'], role: 'participant' } });
  const es = authenticate({ token: signJwt(claims, { alg: 'ES256', privateKey: ec.privateKey }) }, { config });
  t.equal(es.ok, true);
  const confused = signJwt(claims, { alg: 'HS256', secret: pem });
  refused(t, authenticate({ token: confused }, { config }), CloseCode.AuthFailed, /HS256 tokens are not accepted/);
});

t.test('dev mode: dev users accepted, tokens still verified', async (t) => {
  t.same(authenticate({ devUser: 'alice' }, { config: devConfig }), { ok: true, principal: { user: 'alice', sessions: ['*'], role: 'participant' } });
  refused(t, authenticate({ devUser: 'a'.repeat(129) }, { config: devConfig }), CloseCode.AuthFailed, /dev user is longer than 128/);
  refused(t, authenticate({}, { config: devConfig }), CloseCode.AuthFailed, /missing token \(or dev user\)/);
  // a token wins over a dev user; with no keys configured it cannot verify
  refused(t, authenticate({ token: hs({}), devUser: 'alice' }, { config: devConfig }), CloseCode.AuthFailed, /not accepted here/);
});

t.test('truncateUtf8 keeps whole characters', async (t) => {
  t.equal(truncateUtf8('short', 120), 'short');
  t.equal(truncateUtf8('é'.repeat(100), 120), 'é'.repeat(60));
  t.equal(Buffer.byteLength(truncateUtf8('😀'.repeat(40), 121)), 120);
  t.equal(truncateUtf8('ab😀', 5), 'ab');
});
