// End to end: authentication and connection admission of daemons with dev mode off.
// One daemon verifies HS256 tokens (and checks origins, the per-user limit and a 4 s
// clock-skew allowance); a second one only RS256/ES256 tokens from a PEM key file and
// a JWKS file (keys chosen by kid). Every refusal arrives as the documented close
// code after the upgrade.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CloseCode, ErrorCode } from '../../protocol/codes.js';
import { signJwt } from '../../daemon/auth/jwt.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { RawClient, type CloseInfo } from '../support/raw-client.js';
import { rawUpgrade } from '../support/raw-upgrade.js';

const API_KEY = 'auth-test-api-key-0123456789';
const SECRET = 'auth-test-jwt-secret-0123456789abcdef';
const GOOD_ORIGIN = 'https://good.example';
const ISSUER = 'https://issuer.example';
const AUDIENCE = 'shardcast-test';
/** The hs daemon's clock-skew allowance (SHARDCAST_JWT_CLOCK_SKEW_S), short so expiry tests stay quick. */
const SKEW_S = 4;

let hs: DaemonProcess;
let rs: DaemonProcess;
let rsaKey: KeyObject;
let ecKey: KeyObject;
/** Private keys whose public halves are in the rs daemon's JWKS file, under kid 'rsa-2' and 'ec-2'. */
let jwksRsa: KeyObject;
let jwksEc: KeyObject;
const clients: RawClient[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'shardcast-auth-'));

t.before(async () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  rsaKey = rsa.privateKey;
  ecKey = ec.privateKey;
  const pemFile = join(tmp, 'keys.pem');
  writeFileSync(
    pemFile,
    rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() + ec.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  );
  const rsa2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec2 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  jwksRsa = rsa2.privateKey;
  jwksEc = ec2.privateKey;
  const jwksFile = join(tmp, 'keys.jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({
      keys: [
        { ...rsa2.publicKey.export({ format: 'jwk' }), kid: 'rsa-2', use: 'sig', alg: 'RS256' },
        { ...ec2.publicKey.export({ format: 'jwk' }), kid: 'ec-2', use: 'sig', alg: 'ES256' },
      ],
    }),
  );
  const common = { SHARDCAST_DEV_MODE: 'false', SHARDCAST_API_KEY: API_KEY, SHARDCAST_ADMIN_TOKEN: API_KEY };
  [hs, rs] = await Promise.all([
    startDaemon({
      ...common,
      SHARDCAST_JWT_SECRET: SECRET,
      SHARDCAST_ALLOWED_ORIGINS: GOOD_ORIGIN,
      SHARDCAST_MAX_CONNECTIONS_PER_USER: '2',
      SHARDCAST_NAMESPACES: '[{"prefix":"stage:","clientPublish":["host"]}]',
      SHARDCAST_JWT_CLOCK_SKEW_S: String(SKEW_S),
    }),
    startDaemon({
      ...common,
      SHARDCAST_JWT_PUBLIC_KEY_FILE: pemFile,
      SHARDCAST_JWT_JWKS_FILE: jwksFile,
      SHARDCAST_JWT_ISSUER: ISSUER,
      SHARDCAST_JWT_AUDIENCE: AUDIENCE,
    }),
  ]);
});
t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([hs?.stop(), rs?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

const nowS = () => Math.floor(Date.now() / 1000);

function hsToken(claims: Record<string, unknown>, secret = SECRET): string {
  return signJwt({ exp: nowS() + 600, ...claims }, { alg: 'HS256', secret });
}

async function connect(daemon: DaemonProcess, opts: Parameters<typeof RawClient.connect>[1]): Promise<RawClient> {
  const c = await RawClient.connect(daemon.ws, opts);
  clients.push(c);
  return c;
}

/** Connects and expects the server to close right away; returns the close. */
async function refusal(daemon: DaemonProcess, opts: Parameters<typeof RawClient.connect>[1]): Promise<CloseInfo> {
  const c = await connect(daemon, opts);
  const closed = await c.closed;
  if (c.frames.some((f) => f.t === 'hello')) throw new Error('the server greeted a connection it should have refused');
  return closed;
}

function helloUser(c: RawClient): string | undefined {
  const hello = c.frames[0];
  return hello?.t === 'hello' ? hello.user : undefined;
}

t.test('a good HS256 token connects as its subject', async (t) => {
  const c = await connect(hs, { token: hsToken({ sub: 'alice', sessions: ['*'] }) });
  t.equal(helloUser(c), 'alice');
  const viaHeader = await connect(hs, { headers: { authorization: `Bearer ${hsToken({ sub: 'bob', sessions: ['*'] })}` } });
  t.equal(helloUser(viaHeader), 'bob', 'the token may come in the Authorization header');
});

t.test('bad tokens are refused with 4501, expired ones with 4004', async (t) => {
  const wrongSig = hsToken({ sub: 'alice' }, 'another-secret-another-secret-0123');
  t.equal((await refusal(hs, { token: wrongSig })).code, CloseCode.AuthFailed, 'bad signature → 4501');
  const [h, p, s] = hsToken({ sub: 'alice' }).split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin', exp: nowS() + 600 })).toString('base64url')}.${s}`;
  t.equal((await refusal(hs, { token: tampered })).code, CloseCode.AuthFailed, 'tampered payload → 4501');
  t.ok(p);
  const expired = hsToken({ sub: 'alice', exp: nowS() - 3600 });
  const exp = await refusal(hs, { token: expired });
  t.equal(exp.code, CloseCode.TokenExpired, 'expired → 4004');
  t.match(exp.reason, /expired/);
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'alice', exp: nowS() + 600 })).toString('base64url')}.`;
  t.equal((await refusal(hs, { token: none })).code, CloseCode.AuthFailed, 'alg none → 4501');
  t.equal((await refusal(hs, { token: 'not.a.jwt' })).code, CloseCode.AuthFailed, 'garbage → 4501');
  t.equal((await refusal(hs, { token: hsToken({ sessions: ['*'] }) })).code, CloseCode.AuthFailed, 'no sub → 4501');
  t.equal((await refusal(hs, { token: hsToken({ sub: 'alice', nbf: nowS() + 3600 }) })).code, CloseCode.AuthFailed, 'not yet valid → 4501');
  const missing = await refusal(hs, {});
  t.equal(missing.code, CloseCode.AuthFailed, 'missing token → 4501');
  t.match(missing.reason, /token/);
  t.equal((await refusal(hs, { user: 'mallory' })).code, CloseCode.AuthFailed, '?user= without dev mode → 4501');
});

t.test("sessions outside the token's claim are refused with 103", async (t) => {
  const c = await connect(hs, { token: hsToken({ sub: 'carol', sessions: ['quiz:*', 'poll:exact'] }) });
  t.equal(helloUser(c), 'carol');
  const refused = await c.join('chat:1');
  t.equal(refused.t, 'error');
  t.equal(refused.t === 'error' && refused.code, ErrorCode.Forbidden, 'chat:1 → 103');
  t.equal((await c.join('quiz:7')).t, 'joined', 'quiz:* matches quiz:7');
  t.equal((await c.join('poll:exact')).t, 'joined', 'an exact pattern matches');
  const near = await c.join('poll:exact2');
  t.equal(near.t === 'error' && near.code, ErrorCode.Forbidden, 'an exact pattern does not match a longer id');
  const none = await connect(hs, { token: hsToken({ sub: 'dave' }) });
  const j = await none.join('quiz:7');
  t.equal(j.t === 'error' && j.code, ErrorCode.Forbidden, 'no sessions claim → nothing may be joined');
});

t.test('RS256 and ES256 tokens verify against the key file; HS256 is then refused', async (t) => {
  const claims = { sessions: ['*'], exp: nowS() + 600, iss: ISSUER, aud: AUDIENCE };
  const rsToken = signJwt({ sub: 'erin', ...claims }, { alg: 'RS256', privateKey: rsaKey });
  const c = await connect(rs, { token: rsToken });
  t.equal(helloUser(c), 'erin', 'RS256 accepted');
  t.equal((await c.join('quiz:1')).t, 'joined');
  const esToken = signJwt({ sub: 'frank', ...claims, aud: ['other', AUDIENCE] }, { alg: 'ES256', privateKey: ecKey });
  t.equal(helloUser(await connect(rs, { token: esToken })), 'frank', 'ES256 accepted');
  t.equal((await refusal(rs, { token: hsToken({ sub: 'erin', sessions: ['*'] }) })).code, CloseCode.AuthFailed, 'HS256 → 4501');
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const forged = signJwt({ sub: 'erin', ...claims }, { alg: 'RS256', privateKey: otherRsa });
  t.equal((await refusal(rs, { token: forged })).code, CloseCode.AuthFailed, 'RS256 from another key → 4501');
  t.equal((await refusal(hs, { token: rsToken })).code, CloseCode.AuthFailed, 'the HS256 daemon has no RSA key: 4501');
  const wrongIss = signJwt({ sub: 'erin', ...claims, iss: 'https://elsewhere.example' }, { alg: 'RS256', privateKey: rsaKey });
  t.equal((await refusal(rs, { token: wrongIss })).code, CloseCode.AuthFailed, 'another issuer → 4501');
  const noAud = signJwt({ sub: 'erin', sessions: ['*'], exp: nowS() + 600, iss: ISSUER }, { alg: 'RS256', privateKey: rsaKey });
  t.equal((await refusal(rs, { token: noAud })).code, CloseCode.AuthFailed, 'no audience → 4501');
  const expiredRs = signJwt({ sub: 'erin', ...claims, exp: nowS() - 3600 }, { alg: 'RS256', privateKey: rsaKey });
  t.equal((await refusal(rs, { headers: { authorization: `Bearer ${expiredRs}` } })).code, CloseCode.TokenExpired, 'expired in the header → 4004');
});

t.test("the token's role decides who may publish where the namespace names roles", async (t) => {
  const host = await connect(hs, { token: hsToken({ sub: 'hostess', sessions: ['stage:*'], role: 'host' }) });
  const guest = await connect(hs, { token: hsToken({ sub: 'guest', sessions: ['stage:*'] }) });
  t.equal((await host.join('stage:1')).t, 'joined');
  t.equal((await guest.join('stage:1')).t, 'joined');
  guest.send({ t: 'pub', id: 900, s: 'stage:1', type: 'say', data: 'hi' });
  const refused = await guest.next((f) => f.t === 'error' && f.id === 900, 5000);
  t.equal(refused.t === 'error' && refused.code, ErrorCode.PublishNotAllowed, 'participant → 108');
  host.send({ t: 'pub', id: 901, s: 'stage:1', type: 'say', data: 'welcome' });
  const ack = await host.next((f) => (f.t === 'ack' || f.t === 'error') && f.id === 901, 5000);
  t.equal(ack.t, 'ack', 'host → ack');
  const ev = await guest.next((f) => f.t === 'ev' && f.s === 'stage:1', 5000);
  t.equal(ev.t === 'ev' && ev.data, 'welcome', 'members get the host event');
});

t.test('origin allowlist: other origins are refused with 4502', async (t) => {
  const token = hsToken({ sub: 'gina', sessions: ['*'] });
  const evil = await refusal(hs, { token, headers: { Origin: 'https://evil.example' } });
  t.equal(evil.code, CloseCode.Forbidden, 'evil origin → 4502');
  t.match(evil.reason, /origin/);
  const good = await connect(hs, { token, headers: { Origin: GOOD_ORIGIN } });
  t.equal(helloUser(good), 'gina', 'the allowed origin connects');
  const lookalike = await refusal(hs, { token, headers: { Origin: 'https://good.example.evil.example' } });
  t.equal(lookalike.code, CloseCode.Forbidden, 'a look-alike origin → 4502');
  await good.close();
});

t.test('subprotocols: shardcast.v9 only → 4504, v1 selected when offered', async (t) => {
  const token = hsToken({ sub: 'hank', sessions: ['*'] });
  const v9 = await rawUpgrade(`${hs.ws}?token=${token}`, { 'Sec-WebSocket-Protocol': 'shardcast.v9' }, { untilClose: true });
  t.equal(v9.status, 101);
  t.equal(v9.closeCode, CloseCode.UnsupportedVersion, 'only shardcast.v9 → 4504');
  t.match(v9.closeReason, /shardcast\.v1/);
  t.same(v9.frames, [], 'no hello before the close');
  const both = await rawUpgrade(`${hs.ws}?token=${token}`, { 'Sec-WebSocket-Protocol': 'shardcast.v9, shardcast.v1' });
  t.equal(both.protocol, 'shardcast.v1', 'v1 selected from a list that has it');
  t.same(both.frames, [2], 'and greeted with a binary hello');
  const c = await connect(hs, { token, protocols: ['shardcast.v1'] });
  t.equal(helloUser(c), 'hank');
  t.equal(c.ws.protocol, 'shardcast.v1');
  await c.close();
});

t.test('a token that expires while connected closes the connection with 4004 once exp plus the allowance passed', async (t) => {
  const exp = nowS() + 3;
  const c = await connect(hs, { token: hsToken({ sub: 'ivy', sessions: ['*'], exp }) });
  t.equal(helloUser(c), 'ivy', 'accepted while still valid');
  t.equal((await c.join('quiz:exp')).t, 'joined');
  const closed = await c.closed;
  const closedAt = Date.now();
  t.equal(closed.code, CloseCode.TokenExpired);
  t.match(closed.reason, /expired/);
  const deadline = (exp + SKEW_S) * 1000;
  t.ok(closedAt >= deadline - 100, `not before exp + ${SKEW_S} s (${closedAt - deadline} ms from it)`);
  t.ok(closedAt < deadline + 1500, `soon after it (${closedAt - deadline} ms)`);
});

t.test('a token accepted inside the clock-skew allowance is not closed by the expiry sweep', async (t) => {
  // exp a second in the past: inside the 4 s allowance the handshake applies, so
  // hello comes; the connection must then live until exp + 4 s, not die at once.
  const exp = nowS() - 1;
  const c = await connect(hs, { token: hsToken({ sub: 'jill', sessions: ['*'], exp }) });
  t.equal(helloUser(c), 'jill', 'accepted inside the allowance');
  const early = await Promise.race([c.closed, sleep(1500).then(() => 'open' as const)]);
  t.equal(early, 'open', `still open 1.5 s later (got ${JSON.stringify(early)})`);
  t.equal((await c.join('quiz:skew')).t, 'joined', 'and usable');
  const closed = await c.closed;
  const closedAt = Date.now();
  t.equal(closed.code, CloseCode.TokenExpired, 'closed with 4004 in the end');
  t.ok(closedAt >= (exp + SKEW_S) * 1000 - 100, `at exp + ${SKEW_S} s, not before (${closedAt - (exp + SKEW_S) * 1000} ms from it)`);

  // nbf slightly in the future: accepted, and nothing closes it for that either.
  const notYet = await connect(hs, { token: hsToken({ sub: 'jill', sessions: ['*'], nbf: nowS() + 2 }) });
  t.equal(helloUser(notYet), 'jill', 'nbf inside the allowance is accepted');
  const later = await Promise.race([notYet.closed, sleep(1500).then(() => 'open' as const)]);
  t.equal(later, 'open', 'and stays open');
  t.equal((await refusal(hs, { token: hsToken({ sub: 'jill', exp: nowS() - SKEW_S - 2 }) })).code, CloseCode.TokenExpired, 'beyond the allowance → 4004 at the handshake');
});

t.test('JWKS file: RS256 and ES256 tokens choose their key by kid', async (t) => {
  const claims = { sessions: ['*'], exp: nowS() + 600, iss: ISSUER, aud: AUDIENCE };
  const rsWithKid = (sub: string, key: KeyObject, kid?: string) => signWithHeader({ alg: 'RS256', typ: 'JWT', ...(kid === undefined ? {} : { kid }) }, { sub, ...claims }, key);
  t.equal(helloUser(await connect(rs, { token: rsWithKid('kim', jwksRsa, 'rsa-2') })), 'kim', 'kid rsa-2 → the JWKS RSA key');
  const es = signWithHeader({ alg: 'ES256', typ: 'JWT', kid: 'ec-2' }, { sub: 'kai', ...claims }, jwksEc);
  t.equal(helloUser(await connect(rs, { token: es })), 'kai', 'kid ec-2 → the JWKS EC key');
  t.equal(helloUser(await connect(rs, { token: rsWithKid('kit', jwksRsa) })), 'kit', 'no kid: every RSA key is tried');
  t.equal(helloUser(await connect(rs, { token: rsWithKid('kip', rsaKey, 'some-idp-kid') })), 'kip', 'an unknown kid falls back to the PEM keys (which have none)');
  const wrong = await refusal(rs, { token: rsWithKid('kim', rsaKey, 'rsa-2') });
  t.equal(wrong.code, CloseCode.AuthFailed, 'kid rsa-2 signed by another key → 4501: the kid selects the key');
  t.match(wrong.reason, /signature/);
});

/** Signs a JWT with an explicit header (signJwt writes no kid). */
function signWithHeader(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const sig = sign('sha256', Buffer.from(input), header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${sig.toString('base64url')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

t.test('maxConnectionsPerUser (2) is enforced for the instance, across shards', async (t) => {
  const token = hsToken({ sub: 'jack', sessions: ['*'] });
  const opened: RawClient[] = [];
  for (let i = 0; i < 6; i++) opened.push(await connect(hs, { token }));
  const accepted = opened.filter((c) => c.frames.some((f) => f.t === 'hello'));
  const shards = new Set(opened.map((c) => c.shard()).filter((s) => s >= 0));
  t.equal(accepted.length, 2, `two connections accepted (accepted on shards ${[...shards].join(',')})`);
  const refused = await Promise.all(opened.filter((c) => !accepted.includes(c)).map((c) => c.closed));
  t.ok(refused.every((r) => r.code === CloseCode.ConnectionLimit), 'the rest closed with 4003');
  // Slots free up when connections close.
  await Promise.all(accepted.map((c) => c.close()));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(helloUser(await connect(hs, { token })), 'jack', 'a new connection is accepted once the others closed');
});
