import t, { type Test } from 'tap';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { MAX_TOKEN_LENGTH, signJwt, verifyJwt, type JwtVerifyResult } from '../../daemon/auth/jwt.js';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const NOW = Date.UTC(2026, 0, 1); // ms, as Date.now()
const nowS = NOW / 1000;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function failure(t: Test, result: JwtVerifyResult, reason: string): void {
  t.equal(result.ok, false, `refused as ${reason}`);
  if (!result.ok) {
    t.equal(result.reason, reason);
    t.ok(result.message.length > 0 && result.message.length <= 100, `short message: ${result.message}`);
  }
}

t.test('HS256: a good token verifies and returns its payload', async (t) => {
  const token = signJwt({ sub: 'u1', exp: nowS + 60, sessions: ['quiz:*'] }, { alg: 'HS256', secret: SECRET });
  const result = verifyJwt(token, { secret: SECRET, publicKeys: [] }, { now: NOW });
  t.same(result, { ok: true, payload: { sub: 'u1', exp: nowS + 60, sessions: ['quiz:*'] } });
  // interoperates with a hand-made HS256 token (as any other library would make it)
  const h = b64({ alg: 'HS256', typ: 'JWT' });
  const p = b64({ sub: 'u2' });
  const sig = createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url');
  t.equal(verifyJwt(`${h}.${p}.${sig}`, { secret: SECRET, publicKeys: [] }).ok, true);
  for (const alg of ['HS384', 'HS512'] as const) {
    t.equal(verifyJwt(signJwt({ sub: 'u' }, { alg, secret: SECRET }), { secret: SECRET, publicKeys: [] }).ok, true, alg);
  }
});

t.test('HS256: bad signatures are refused', async (t) => {
  const token = signJwt({ sub: 'u1' }, { alg: 'HS256', secret: SECRET });
  failure(t, verifyJwt(token, { secret: SECRET + 'x', publicKeys: [] }), 'bad_signature');
  const [h, , s] = token.split('.');
  failure(t, verifyJwt(`${h}.${b64({ sub: 'admin' })}.${s}`, { secret: SECRET, publicKeys: [] }), 'bad_signature');
  failure(t, verifyJwt(`${h}.${b64({ sub: 'u1' })}.${s!.slice(0, 40)}`, { secret: SECRET, publicKeys: [] }), 'bad_signature');
});

t.test('exp and nbf with clock skew', async (t) => {
  const keys = { secret: SECRET, publicKeys: [] };
  const tok = (claims: Record<string, unknown>) => signJwt({ sub: 'u', ...claims }, { alg: 'HS256', secret: SECRET });
  failure(t, verifyJwt(tok({ exp: nowS - 3600 }), keys, { now: NOW }), 'expired');
  failure(t, verifyJwt(tok({ exp: nowS }), keys, { now: NOW, clockSkewS: 0 }), 'expired');
  t.equal(verifyJwt(tok({ exp: nowS - 10 }), keys, { now: NOW, clockSkewS: 30 }).ok, true, 'within skew');
  failure(t, verifyJwt(tok({ exp: nowS - 10 }), keys, { now: NOW, clockSkewS: 0 }), 'expired');
  failure(t, verifyJwt(tok({ nbf: nowS + 3600 }), keys, { now: NOW }), 'not_yet_valid');
  t.equal(verifyJwt(tok({ nbf: nowS + 10 }), keys, { now: NOW }).ok, true, 'nbf within default skew');
  failure(t, verifyJwt(tok({ nbf: nowS + 10 }), keys, { now: NOW, clockSkewS: 0 }), 'not_yet_valid');
  failure(t, verifyJwt(tok({ exp: 'tomorrow' }), keys, { now: NOW }), 'malformed');
  failure(t, verifyJwt(tok({ nbf: null }), keys, { now: NOW }), 'malformed');
});

t.test('alg none and unknown algorithms are refused', async (t) => {
  const keys = { secret: SECRET, publicKeys: [rsa.publicKey] };
  const payload = b64({ sub: 'admin' });
  failure(t, verifyJwt(`${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ alg: 'None' })}.${payload}.`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ alg: 'none' })}.${payload}.${b64('x')}`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ alg: 'PS256' })}.${payload}.${b64('x')}`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ alg: 'ES384' })}.${payload}.${b64('x')}`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ typ: 'JWT' })}.${payload}.${b64('x')}`, keys), 'unsupported_alg');
  failure(t, verifyJwt(`${b64({ alg: 'HS256', crit: ['b64'], b64: false })}.${payload}.${b64('x')}`, keys), 'unsupported_alg');
});

t.test('RS256 and ES256 with generated keys', async (t) => {
  const keys = { publicKeys: [rsa.publicKey, otherEc.publicKey, ec.publicKey] };
  const rs = signJwt({ sub: 'r' }, { alg: 'RS256', privateKey: rsa.privateKey });
  const es = signJwt({ sub: 'e' }, { alg: 'ES256', privateKey: ec.privateKey });
  t.same(verifyJwt(rs, keys), { ok: true, payload: { sub: 'r' } });
  t.same(verifyJwt(es, keys), { ok: true, payload: { sub: 'e' } }, 'tries each P-256 key');
  t.equal(es.split('.')[2]!.length, 86, 'ES256 signature is raw r||s (64 bytes)');

  failure(t, verifyJwt(es, { publicKeys: [rsa.publicKey, otherEc.publicKey] }), 'bad_signature');
  failure(t, verifyJwt(rs, { publicKeys: [generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey] }), 'bad_signature');
  failure(t, verifyJwt(es, { publicKeys: [rsa.publicKey] }), 'unsupported_alg');
  failure(t, verifyJwt(rs, { secret: SECRET, publicKeys: [] }), 'unsupported_alg');

  // A DER-encoded ECDSA signature (what naive signers produce) is not a JWS signature.
  const [h, p] = es.split('.');
  const der = sign('sha256', Buffer.from(`${h}.${p}`), ec.privateKey).toString('base64url');
  failure(t, verifyJwt(`${h}.${p}.${der}`, keys), 'bad_signature');

  t.throws(() => signJwt({ sub: 'x' }, { alg: 'ES256', privateKey: rsa.privateKey }), { code: 'JWT_KEY_MISMATCH' });
  t.throws(() => signJwt({ sub: 'x' }, { alg: 'RS256', privateKey: rsa.publicKey }), { code: 'JWT_KEY_MISMATCH' });
});

t.test('algorithm confusion: HS256 signed with the public key is refused when only public keys are configured', async (t) => {
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const forged = signJwt({ sub: 'admin' }, { alg: 'HS256', secret: pem });
  failure(t, verifyJwt(forged, { publicKeys: [rsa.publicKey] }), 'unsupported_alg');
  failure(t, verifyJwt(forged, { secret: undefined, publicKeys: [rsa.publicKey, ec.publicKey] }), 'unsupported_alg');
});

t.test('truncated, garbage and oversized tokens are malformed', async (t) => {
  const keys = { secret: SECRET, publicKeys: [rsa.publicKey] };
  const token = signJwt({ sub: 'u' }, { alg: 'HS256', secret: SECRET });
  const [h, p, s] = token.split('.') as [string, string, string];
  const cases: [string, string][] = [
    ['', 'empty'],
    ['garbage', 'one part'],
    [`${h}.${p}`, 'two parts'],
    [`${h}.${p}.${s}.x`, 'four parts'],
    [`${h}.${p}.`, 'empty signature'],
    [`${h.slice(0, 10)}`, 'truncated header'],
    [`${h}.${p.slice(0, p.length - 3)}.${s}`, 'truncated payload'],
    [`${h}=.${p}.${s}`, 'padding'],
    [`${h}.${p}.${s}=`, 'padded signature'],
    [`${h}.${p}.${s.slice(0, -1)}+`, 'base64 (not url) alphabet'],
    [`${b64('not json')}.${p}.${s}`, 'header not JSON'],
    [`${b64([1, 2])}.${p}.${s}`, 'header an array'],
    [`${h}.${b64('[1]')}.${s}`, 'payload an array'],
    [`${h}.${b64('null')}.${s}`, 'payload null'],
    [`${h} .${p}.${s}`, 'space'],
    [`${h}.${p}.${s}`.padEnd(MAX_TOKEN_LENGTH + 1, 'A'), 'oversized'],
  ];
  for (const [bad, what] of cases) {
    const result = verifyJwt(bad, keys);
    t.equal(result.ok, false, what);
    if (!result.ok) t.equal(result.reason, 'malformed', `${what}: ${result.message}`);
  }
  // Non-canonical base64url: a last character whose unused low bits are set decodes
  // to the same bytes as the canonical one; refuse it so one token has one spelling.
  const sigBytes = Buffer.from(s, 'base64url');
  t.equal(sigBytes.length % 3, 2, 'HS256 signature (32 bytes) leaves 2 unused bits');
  const last = s.at(-1)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
  const nonCanonical = `${h}.${p}.${s.slice(0, -1)}${twin}`;
  t.same(Buffer.from(nonCanonical.split('.')[2]!, 'base64url'), sigBytes, 'decodes to the same bytes');
  const result = verifyJwt(nonCanonical, keys);
  t.equal(result.ok, false);
  if (!result.ok) t.equal(result.reason, 'malformed');
  t.equal(verifyJwt(token, keys).ok, true, 'the canonical token itself verifies');
  t.equal(verifyJwt(undefined as unknown as string, keys).ok, false, 'non-string input');
});

t.test('issuer and audience', async (t) => {
  const keys = { secret: SECRET, publicKeys: [] };
  const tok = (claims: Record<string, unknown>) => signJwt({ sub: 'u', ...claims }, { alg: 'HS256', secret: SECRET });
  t.equal(verifyJwt(tok({ iss: 'quiz-service', aud: 'shardcast' }), keys, { issuer: 'quiz-service', audience: 'shardcast' }).ok, true);
  t.equal(verifyJwt(tok({ aud: ['other', 'shardcast'] }), keys, { audience: 'shardcast' }).ok, true, 'aud array');
  failure(t, verifyJwt(tok({ iss: 'evil' }), keys, { issuer: 'quiz-service' }), 'bad_issuer');
  failure(t, verifyJwt(tok({}), keys, { issuer: 'quiz-service' }), 'bad_issuer');
  failure(t, verifyJwt(tok({ aud: 'other' }), keys, { audience: 'shardcast' }), 'bad_audience');
  failure(t, verifyJwt(tok({ aud: ['other'] }), keys, { audience: 'shardcast' }), 'bad_audience');
  failure(t, verifyJwt(tok({}), keys, { audience: 'shardcast' }), 'bad_audience');
  t.equal(verifyJwt(tok({ iss: 'any', aud: 'any' }), keys, {}).ok, true, 'unchecked when not configured');
});

t.test('kid: selects keys of a key set; falls back to keys without a kid; unknown otherwise', async (t) => {
  const signed = (header: Record<string, unknown>, key: typeof rsa.privateKey) => {
    const input = `${b64(header)}.${b64({ sub: 'u' })}`;
    const sig = sign('sha256', Buffer.from(input), header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
    return `${input}.${sig.toString('base64url')}`;
  };
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keySet = [{ kid: 'a', key: rsa.publicKey }, { kid: 'b', key: other.publicKey }];
  t.equal(verifyJwt(signed({ alg: 'RS256', kid: 'a' }, rsa.privateKey), { publicKeys: [], keySet }).ok, true, 'kid a → key a');
  failure(t, verifyJwt(signed({ alg: 'RS256', kid: 'b' }, rsa.privateKey), { publicKeys: [], keySet }), 'bad_signature');
  t.equal(verifyJwt(signed({ alg: 'RS256' }, other.privateKey), { publicKeys: [], keySet }).ok, true, 'no kid → every key of the algorithm');
  failure(t, verifyJwt(signed({ alg: 'RS256', kid: 'zz' }, rsa.privateKey), { publicKeys: [], keySet }), 'unknown_kid');
  t.equal(verifyJwt(signed({ alg: 'RS256', kid: 'zz' }, rsa.privateKey), { publicKeys: [rsa.publicKey], keySet }).ok, true, 'unknown kid → the keys without one');
  failure(t, verifyJwt(signed({ alg: 'RS256', kid: 7 }, rsa.privateKey), { publicKeys: [rsa.publicKey] }), 'malformed');
  t.equal(verifyJwt(signed({ alg: 'ES256', kid: 'e' }, ec.privateKey), { publicKeys: [], keySet: [{ kid: 'e', key: ec.publicKey }] }).ok, true, 'ES256 by kid');
});
