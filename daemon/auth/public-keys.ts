/**
 * Parsing of the PEM bundle named by `jwtPublicKeyFile`: the keys that verify RS256
 * and ES256 client tokens. Runs once at boot (config loading), so every problem is
 * reported before the daemon listens, naming the block that is wrong.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';

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
