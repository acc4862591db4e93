/**
 * Redis Cluster's key → hash slot mapping (CRC16/XMODEM of the hash tag, mod 16384),
 * as the cluster specification defines it. The broker needs it to place one
 * heartbeat channel on every master, so a deaf sharded subscription on any node is
 * noticed (redis-broker.ts); tests use it to spread sessions over the masters.
 */

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[i] = crc;
}

/** The part of a key Redis Cluster hashes: the first non-empty `{…}`, or the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** Hash slot (0..16383) of a key or channel name. */
export function slotOf(key: string): number {
  const bytes = Buffer.from(hashTag(key), 'utf8');
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % 16384;
}
