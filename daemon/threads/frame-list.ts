/**
 * A list of encoded frames packed into one SharedArrayBuffer (u32 little-endian
 * length, then the bytes, for each), so a join's replay reaches a shard without
 * being copied: joins sharing one history read (session-streams.ts) share one
 * packed replay, whichever shard they are on, and the shard hands views of it to
 * uWS. Posted as an array of Uint8Arrays it was structured-cloned object by object:
 * a flood of joins replaying 1,000 events each kept the primary busy cloning (and
 * the shards decoding and collecting) most of the time; copied per join, it still
 * spent a third of the primary's time copying and collecting.
 */

/** Packs `frames`, in order, into a new SharedArrayBuffer; never written again. */
export function packFrames(frames: readonly Uint8Array[]): SharedArrayBuffer {
  let size = 0;
  for (const f of frames) size += 4 + f.length;
  const buf = new SharedArrayBuffer(size);
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  let at = 0;
  for (const f of frames) {
    view.setUint32(at, f.length, true);
    bytes.set(f, at + 4);
    at += 4 + f.length;
  }
  return buf;
}

/** The frames of a packed list, oldest first, as views into it (no copy). */
export function unpackFrames(buf: SharedArrayBuffer): Uint8Array[] {
  const view = new DataView(buf);
  const out: Uint8Array[] = [];
  for (let at = 0; at + 4 <= buf.byteLength; ) {
    const n = view.getUint32(at, true);
    out.push(new Uint8Array(buf, at + 4, n));
    at += 4 + n;
  }
  return out;
}
