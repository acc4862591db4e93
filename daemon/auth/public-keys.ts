/**
 * Parsing of the key files that verify RS256 and ES256 client tokens: the PEM bundle
 * named by `jwtPublicKeyFile` and the JSON Web Key Set named by `jwtJwksFile` (whose
 * keys carry a `kid` tokens select them by). Runs once at boot (config loading), so
 * every problem is reported before the daemon listens, naming the block or key that
 * is wrong.
 */
import { createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';

/** Smallest RSA modulus accepted for RS256 (as jose and the JWA guidance require). */
export const MIN_RSA_BITS = 2048;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The JWS algorithm a public key verifies, or undefined for keys we do not support. */
export function jwsAlgorithmOf(key: KeyObject): 'RS256' | 'ES256' | undefined {
  if (key.type !== 'public') return undefined;
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

/**
 * Parses every PEM block of `pem` (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE) into a
 * public KeyObject. Text between blocks is ignored. Fails on the first block that is
 * not an RSA (≥ 2048 bits) or P-256 public key, naming it by its position (1-based).
 */
export function parsePublicKeysPem(pem: string): { ok: true; keys: KeyObject[] } | { ok: false; message: string } {
  const keys: KeyObject[] = [];
  let index = 0;
  for (const match of pem.matchAll(PEM_BLOCK)) {
    index += 1;
    const [block, label] = match as unknown as [string, string];
    const which = `PEM block ${index} (${label})`;
    if (label.includes('PRIVATE KEY')) {
      return { ok: false, message: `${which} is a private key; put only public keys here (e.g. \`openssl pkey -in key.pem -pubout\`)` };
    }
    let key: KeyObject;
    try {
      if (label === 'CERTIFICATE') key = new X509Certificate(block).publicKey;
      else if (label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY') key = createPublicKey({ key: block, format: 'pem' });
      else return { ok: false, message: `${which} is not supported; expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE` };
    } catch (err) {
      return { ok: false, message: `${which} could not be parsed: ${(err as Error).message}` };
    }
    const alg = jwsAlgorithmOf(key);
    if (alg === undefined) {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return {
        ok: false,
        message: `${which} is a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; only RSA (RS256) and EC P-256 (ES256) keys are supported`,
      };
    }
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (alg === 'RS256' && bits !== undefined && bits < MIN_RSA_BITS) {
      return { ok: false, message: `${which} is a ${bits}-bit RSA key; RS256 needs at least ${MIN_RSA_BITS} bits` };
    }
    keys.push(key);
  }
  if (index === 0) return { ok: false, message: 'holds no PEM block (-----BEGIN PUBLIC KEY----- …)' };
  return { ok: true, keys };
}

/** A public key from a JWKS, with the `kid` a token's header may name it by. */
export interface KeyedPublicKey {
  readonly kid?: string;
  readonly key: KeyObject;
}

/** Longest `kid` accepted. */
export const MAX_KID_LENGTH = 256;

/** Checks one JWK of a set; returns the key or the problem (without the key's position, which the caller adds). */
function parseJwk(jwk: Record<string, unknown>): KeyedPublicKey | string {
  const { kty, crv, use, alg, kid, key_ops: keyOps } = jwk;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
    return `has a "kid" that is not a string of 1–${MAX_KID_LENGTH} characters`;
  }
  if (jwk.d !== undefined || jwk.p !== undefined || jwk.k !== undefined) {
    return 'holds private key material ("d"/"p"/"k"); publish only the public members';
  }
  if (kty !== 'RSA' && !(kty === 'EC' && crv === 'P-256')) {
    const what = kty === 'EC' ? `an EC key on ${JSON.stringify(crv)}` : `a key of kty ${JSON.stringify(kty)}`;
    return `is ${what}; only RSA (RS256) and EC P-256 (ES256) keys are supported`;
  }
  const expected = kty === 'RSA' ? 'RS256' : 'ES256';
  if (alg !== undefined && alg !== expected) return `has "alg": ${JSON.stringify(alg)}; a ${kty} key here verifies ${expected} only`;
  if (use !== undefined && use !== 'sig') return `has "use": ${JSON.stringify(use)}; only signature keys ("sig") verify tokens`;
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('verify'))) return 'has "key_ops" without "verify"';
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    return `could not be parsed: ${(err as Error).message}`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (kty === 'RSA' && bits !== undefined && bits < MIN_RSA_BITS) return `is a ${bits}-bit RSA key; RS256 needs at least ${MIN_RSA_BITS} bits`;
  return kid === undefined ? { key } : { kid, key };
}

/**
 * Parses a JSON Web Key Set (RFC 7517 §5: `{"keys": [...]}`) into public keys for
 * RS256 (kty RSA, ≥ 2048 bits) and ES256 (kty EC, crv P-256). Keys marked
 * `"use": "enc"` are encryption keys an identity provider publishes alongside its
 * signing keys: they are skipped, not refused. Any other key that cannot verify
 * tokens, a private key, or a `kid` used twice fails the whole set, naming the key
 * by its index and kid.
 */
export function parseJwks(text: string): { ok: true; keys: KeyedPublicKey[] } | { ok: false; message: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `is not valid JSON: ${(err as Error).message}` };
  }
  const list = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>).keys : undefined;
  if (!Array.isArray(list)) return { ok: false, message: 'is not a JSON Web Key Set: expected {"keys": [ … ]}' };
  const keys: KeyedPublicKey[] = [];
  const kids = new Map<string, number>();
  for (const [i, item] of list.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return { ok: false, message: `keys[${i}] is not a JSON object` };
    const jwk = item as Record<string, unknown>;
    const which = typeof jwk.kid === 'string' ? `keys[${i}] (kid ${JSON.stringify(jwk.kid.slice(0, 64))})` : `keys[${i}]`;
    if (jwk.use === 'enc') continue;
    const parsed = parseJwk(jwk);
    if (typeof parsed === 'string') return { ok: false, message: `${which} ${parsed}` };
    if (parsed.kid !== undefined) {
      const first = kids.get(parsed.kid);
      if (first !== undefined) return { ok: false, message: `${which} repeats the kid of keys[${first}]; kids must be unique` };
      kids.set(parsed.kid, i);
    }
    keys.push(parsed);
  }
  if (keys.length === 0) return { ok: false, message: 'holds no signature key (RSA or EC P-256)' };
  return { ok: true, keys };
}
