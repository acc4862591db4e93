import t, { type Test } from 'tap';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { authenticate } from '../../daemon/auth/authenticate.js';
import { signJwt } from '../../daemon/auth/jwt.js';
import { loadConfig } from '../../daemon/config/load.js';
import { CloseCode } from '../../protocol/codes.js';

const SECRET = 'x'.repeat(48);
const API_KEY = 'k'.repeat(32);
const NOW = Date.UTC(2026, 5, 1);
const nowS = NOW / 1000;

const hsConfig = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_ADMIN_TOKEN: API_KEY, SHARDCAST_JWT_SECRET: SECRET, SHARDCAST_JWT_ISSUER: 'quiz-service', SHARDCAST_JWT_AUDIENCE: 'shardcast' }).config;
const devConfig = loadConfig({ SHARDCAST_DEV_MODE: 'true' }).config;
const hs = (claims: Record<string, unknown>) =>
  signJwt({ sub: 'u1', iss: 'quiz-service', aud: 'shardcast', exp: nowS + 600, ...claims }, { alg: 'HS256', secret: SECRET });

function refused(t: Test, result: ReturnType<typeof authenticate>, closeCode: number, reason: RegExp): void {
  t.equal(result.ok, false);
  if (result.ok) return;
  t.equal(result.closeCode, closeCode);
  t.match(result.reason, reason);
}

t.test('a good token yields its principal', async (t) => {
  const result = authenticate({ token: hs({ sessions: ['quiz:*'], role: 'host' }) }, { config: hsConfig, now: NOW });
  t.same(result, { ok: true, principal: { user: 'u1', sessions: ['quiz:*'], role: 'host', exp: nowS + 600, validUntilS: nowS + 630 } });
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
  const { config } = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_ADMIN_TOKEN: API_KEY, SHARDCAST_JWT_PUBLIC_KEY_FILE: join(dir, 'keys.pem') });
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

t.test('the clock-skew allowance is configured once and holds at the handshake and after it', async (t) => {
  const inside = hs({ exp: nowS - 10 });
  const accepted = authenticate({ token: inside }, { config: hsConfig, now: NOW });
  t.equal(accepted.ok, true, '10 s past exp is inside the default 30 s allowance');
  t.equal(accepted.ok && accepted.principal.validUntilS, nowS - 10 + 30, 'the connection may stay until exp + allowance, not until exp');
  const strict = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_ADMIN_TOKEN: API_KEY, SHARDCAST_JWT_SECRET: SECRET, SHARDCAST_JWT_CLOCK_SKEW_S: '5' }).config;
  t.equal(strict.jwtClockSkewS, 5);
  refused(t, authenticate({ token: inside }, { config: strict, now: NOW }), CloseCode.TokenExpired, /expired/);
  const near = authenticate({ token: hs({ exp: nowS - 4 }) }, { config: strict, now: NOW });
  t.equal(near.ok && near.principal.validUntilS, nowS + 1, 'with 5 s: valid until exp + 5');
  const early = authenticate({ token: hs({ nbf: nowS + 3 }) }, { config: strict, now: NOW });
  t.equal(early.ok, true, 'nbf within the allowance is accepted');
  refused(t, authenticate({ token: hs({ nbf: nowS + 6 }) }, { config: strict, now: NOW }), CloseCode.AuthFailed, /not valid yet/);
  const dev = authenticate({ devUser: 'alice' }, { config: devConfig });
  t.equal(dev.ok && dev.principal.validUntilS, undefined, 'no exp, no deadline');
});

t.test('RS256 / ES256 from a JWKS file, chosen by kid', async (t) => {
  const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwks = {
    keys: [
      { ...a.publicKey.export({ format: 'jwk' }), kid: 'a', use: 'sig', alg: 'RS256' },
      { ...b.publicKey.export({ format: 'jwk' }), kid: 'b' },
      { ...ec.publicKey.export({ format: 'jwk' }), kid: 'e', alg: 'ES256' },
    ],
  };
  const dir = t.testdir({ 'keys.json': JSON.stringify(jwks) });
  const { config } = loadConfig({ SHARDCAST_API_KEY: API_KEY, SHARDCAST_ADMIN_TOKEN: API_KEY, SHARDCAST_JWT_JWKS_FILE: join(dir, 'keys.json') });
  t.same(config.jwtKeySet.map((k) => k.kid), ['a', 'b', 'e']);
  // signJwt writes no kid: these tokens are signed with the header spelled out.
  const kidToken = (kid: string | undefined, key: KeyObject, alg: 'RS256' | 'ES256') =>
    signWithHeader(Buffer.from(JSON.stringify(kid === undefined ? { alg, typ: 'JWT' } : { alg, typ: 'JWT', kid })).toString('base64url'), { sub: 'u3' }, key, alg);
  t.equal(authenticate({ token: kidToken('a', a.privateKey, 'RS256') }, { config }).ok, true, 'kid a verifies with key a');
  t.equal(authenticate({ token: kidToken('b', b.privateKey, 'RS256') }, { config }).ok, true, 'kid b verifies with key b');
  t.equal(authenticate({ token: kidToken('e', ec.privateKey, 'ES256') }, { config }).ok, true, 'ES256 with kid e');
  t.equal(authenticate({ token: kidToken(undefined, b.privateKey, 'RS256') }, { config }).ok, true, 'no kid: every RSA key is tried');
  refused(t, authenticate({ token: kidToken('a', b.privateKey, 'RS256') }, { config }), CloseCode.AuthFailed, /signature does not verify/);
  refused(t, authenticate({ token: kidToken('zz', a.privateKey, 'RS256') }, { config }), CloseCode.AuthFailed, /no RS256 key with kid "zz"/);
});

/** Signs a token with an explicit (base64url) header, e.g. one naming a kid. */
function signWithHeader(header: string, payload: Record<string, unknown>, key: KeyObject, alg: 'RS256' | 'ES256'): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const input = Buffer.from(`${header}.${body}`, 'ascii');
  const sig = sign('sha256', input, alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${header}.${body}.${sig.toString('base64url')}`;
}
