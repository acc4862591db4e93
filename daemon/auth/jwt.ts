/**
 * Compact JWS (JWT) verification and signing on node:crypto. Synchronous on purpose:
 * verification runs inside the uWS upgrade handler, where awaiting costs a copy of
 * every header and an abort handler. Deliberately small: HS256/384/512 with a shared
 * secret, RS256 and ES256 with configured public keys (PEM, or a JWKS whose `kid`
 * a token's header selects); nothing else is accepted.
 *
 * Guards: strict base64url (no padding, no stray characters, canonical trailing
 * bits), a size cap, `alg: none` refused, `crit` refused, and HS* refused when no
 * secret is configured, so a token signed with a public key as HMAC secret
 * (algorithm confusion) can never verify.
 */
import { createHmac, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { jwsAlgorithmOf, type KeyedPublicKey } from './public-keys.js';

/** Longest token accepted, in characters. */
export const MAX_TOKEN_LENGTH = 8 * 1024;
/** Clock skew tolerated on `exp` and `nbf` unless the caller says otherwise, in seconds. */
export const DEFAULT_CLOCK_SKEW_S = 30;

/**
 * Until when (s since the epoch, exclusive) a token with this `exp` is honoured:
 * exp plus the clock-skew allowance. The handshake refuses a token from then on
 * and the shard's sweep closes its connection then, so a token accepted inside the
 * allowance is not cut off the moment it is accepted.
 */
export function validUntilS(exp: number, clockSkewS: number): number {
  return exp + clockSkewS;
}

/** Why a token was refused. */
export type JwtFailure = 'malformed' | 'unsupported_alg' | 'unknown_kid' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'bad_issuer' | 'bad_audience';

/** Outcome of verifyJwt; `message` is short, human and never echoes the token. */
export type JwtVerifyResult = { ok: true; payload: Record<string, unknown> } | { ok: false; reason: JwtFailure; message: string };

/**
 * Keys that may have signed a token: an HMAC secret and/or RSA / P-256 public keys,
 * without a key id (PEM) or from a JWKS with one. A token whose header has a `kid`
 * is verified with the keys carrying that kid; when none does, with the keys that
 * have no kid (so PEM keys keep verifying tokens from issuers that always set one).
 */
export interface JwtKeys {
  readonly secret?: string;
  readonly publicKeys: readonly KeyObject[];
  readonly keySet?: readonly KeyedPublicKey[];
}

/** Claim checks; `now` is milliseconds since the epoch (Date.now()), `clockSkewS` seconds. */
export interface JwtVerifyOptions {
  readonly issuer?: string;
  readonly audience?: string;
  readonly now?: number;
  readonly clockSkewS?: number;
}

/** How signJwt signs: a shared secret for HS*, a private key for RS256 / ES256. */
export type JwtSigningKey =
  | { readonly alg: 'HS256' | 'HS384' | 'HS512'; readonly secret: string }
  | { readonly alg: 'RS256' | 'ES256'; readonly privateKey: KeyObject };

const HMAC_HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as const;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function fail(reason: JwtFailure, message: string): JwtVerifyResult {
  return { ok: false, reason, message };
}

/** Decodes strict, unpadded, canonical base64url; undefined otherwise. */
function decodeBase64Url(part: string): Buffer | undefined {
  if (!BASE64URL.test(part) || part.length % 4 === 1) return undefined;
  const bytes = Buffer.from(part, 'base64url');
  // Non-canonical encodings (stray low bits in the last character) decode to the
  // same bytes as another string; refusing them keeps one token = one spelling.
  if (bytes.toString('base64url') !== part) return undefined;
  return bytes;
}

function decodeJsonObject(part: string): Record<string, unknown> | undefined {
  const bytes = decodeBase64Url(part);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value as Record<string, unknown>;
}

/** Verifies a compact JWS and its time, issuer and audience claims; never throws. */
export function verifyJwt(token: string, keys: JwtKeys, opts: JwtVerifyOptions = {}): JwtVerifyResult {
  if (typeof token !== 'string' || token.length === 0) return fail('malformed', 'token is empty');
  if (token.length > MAX_TOKEN_LENGTH) return fail('malformed', `token is longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) return fail('malformed', 'token is not three base64url parts joined by dots');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJsonObject(headerPart);
  if (header === undefined) return fail('malformed', 'token header is not base64url JSON');
  const alg = header.alg;
  // The algorithm is judged before the rest: an `alg: none` token (empty signature)
  // reports as unsupported, which is what it is.
  if (alg !== 'HS256' && alg !== 'HS384' && alg !== 'HS512' && alg !== 'RS256' && alg !== 'ES256') {
    const shown = typeof alg === 'string' ? JSON.stringify(alg.slice(0, 16)) : 'missing';
    return fail('unsupported_alg', `token algorithm ${shown} is not supported (use HS256, RS256 or ES256)`);
  }
  if (header.crit !== undefined) return fail('unsupported_alg', 'token has critical header extensions');
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== 'string') return fail('malformed', 'token header kid is not a string');
  const payload = decodeJsonObject(payloadPart);
  if (payload === undefined) return fail('malformed', 'token payload is not base64url JSON');
  const signature = decodeBase64Url(signaturePart);
  if (signature === undefined) return fail('malformed', 'token signature is not base64url');

  const signingInput = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  if (alg === 'HS256' || alg === 'HS384' || alg === 'HS512') {
    if (keys.secret === undefined) return fail('unsupported_alg', `${alg} tokens are not accepted here (no shared secret configured)`);
    const expected = createHmac(HMAC_HASH[alg], keys.secret).update(signingInput).digest();
    if (expected.length !== signature.length || !timingSafeEqual(expected, signature)) {
      return fail('bad_signature', 'token signature does not verify');
    }
  } else {
    const ofAlg: KeyedPublicKey[] = [];
    for (const key of keys.publicKeys) if (jwsAlgorithmOf(key) === alg) ofAlg.push({ key });
    for (const keyed of keys.keySet ?? []) if (jwsAlgorithmOf(keyed.key) === alg) ofAlg.push(keyed);
    if (ofAlg.length === 0) return fail('unsupported_alg', `${alg} tokens are not accepted here (no ${alg === 'RS256' ? 'RSA' : 'P-256'} key configured)`);
    let candidates = ofAlg;
    if (kid !== undefined) {
      const named = ofAlg.filter((k) => k.kid === kid);
      candidates = named.length > 0 ? named : ofAlg.filter((k) => k.kid === undefined);
      if (candidates.length === 0) return fail('unknown_kid', `no ${alg} key with kid ${JSON.stringify(kid.slice(0, 40))} is configured`);
    }
    // ES256 signatures are raw r||s, 64 bytes (RFC 7518 §3.4), not DER.
    if (alg === 'ES256' && signature.length !== 64) return fail('bad_signature', 'token signature does not verify');
    const verified = candidates.some(({ key }) => {
      try {
        return cryptoVerify('sha256', signingInput, alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
      } catch {
        return false;
      }
    });
    if (!verified) return fail('bad_signature', 'token signature does not verify');
  }

  return checkClaims(payload, opts);
}

function checkClaims(payload: Record<string, unknown>, opts: JwtVerifyOptions): JwtVerifyResult {
  const nowS = (opts.now ?? Date.now()) / 1000;
  const skew = opts.clockSkewS ?? DEFAULT_CLOCK_SKEW_S;
  const { exp, nbf, iss, aud } = payload;
  if (exp !== undefined) {
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return fail('malformed', 'token exp claim is not a number');
    if (nowS >= validUntilS(exp, skew)) return fail('expired', 'token expired');
  }
  if (nbf !== undefined) {
    if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return fail('malformed', 'token nbf claim is not a number');
    if (nowS + skew < nbf) return fail('not_yet_valid', 'token is not valid yet (nbf in the future)');
  }
  if (opts.issuer !== undefined && iss !== opts.issuer) return fail('bad_issuer', 'token issuer (iss) is not accepted');
  if (opts.audience !== undefined) {
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(opts.audience)) return fail('bad_audience', 'token audience (aud) does not include this gateway');
  }
  return { ok: true, payload };
}

/** Signs `payload` as a compact JWS (header `{alg, typ: 'JWT'}`); throws on a key that does not fit the algorithm. */
export function signJwt(payload: Record<string, unknown>, key: JwtSigningKey): string {
  const header = Buffer.from(JSON.stringify({ alg: key.alg, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const input = Buffer.from(`${header}.${body}`, 'ascii');
  let signature: Buffer;
  if ('secret' in key) {
    signature = createHmac(HMAC_HASH[key.alg], key.secret).update(input).digest();
  } else {
    const type = key.privateKey.asymmetricKeyType;
    const curve = key.privateKey.asymmetricKeyDetails?.namedCurve;
    const fits = key.privateKey.type === 'private' && (key.alg === 'RS256' ? type === 'rsa' : type === 'ec' && curve === 'prime256v1');
    if (!fits) {
      throw Object.assign(new Error(`${key.alg} needs a ${key.alg === 'RS256' ? 'RSA' : 'EC P-256'} private key, got a ${key.privateKey.type} ${type ?? ''} key`), {
        code: 'JWT_KEY_MISMATCH',
      });
    }
    signature = cryptoSign('sha256', input, key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey);
  }
  return `${header}.${body}.${signature.toString('base64url')}`;
}
