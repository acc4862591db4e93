/**
 * One full garbage collection after a large release of buffer memory. A buffer's
 * memory goes back only when V8 collects the object that owns it, and V8 collects
 * when JavaScript allocates: a daemon gone quiet after a burst (the memory journal
 * letting go of 64 MiB of commands upstream took) would keep it until traffic
 * resumes, which may be hours. So once RELEASE_BYTES were let go, a major
 * collection is run a moment later (releases nearby add up), at most once per
 * MIN_INTERVAL_MS: a few milliseconds of the thread (the primary's heap is tens of MB).
 *
 * The collector is V8's `gc`, reached with `--expose-gc` set at run time: a context
 * created after the flag is set sees it (the flag changes nothing else). Where that
 * fails, releases simply wait for V8's own collections.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes let go that make a collection worth its pause. */
const RELEASE_BYTES = 16 * 1024 * 1024;
/** Collections at most this often. */
const MIN_INTERVAL_MS = 10_000;
/** Wait after the release that crossed RELEASE_BYTES, so a run of releases is collected once. */
const SETTLE_MS = 1000;

/** V8's `gc`: with no argument, a full (major) collection. */
type Collect = () => void;

let collect: Collect | null | undefined;
let released = 0;
let lastCollectionAt = -Infinity;
let timer: NodeJS.Timeout | undefined;
let collections = 0;

/** V8's collector, or null where it cannot be had. */
function collector(): Collect | null {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('gc');
      collect = typeof gc === 'function' ? (gc as Collect) : null;
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Notes `bytes` of buffer memory no longer referenced; may schedule one major collection. */
export function releasedBufferMemory(bytes: number): void {
  released += bytes;
  if (released < RELEASE_BYTES || timer !== undefined) return;
  const wait = Math.max(SETTLE_MS, lastCollectionAt + MIN_INTERVAL_MS - performance.now());
  timer = setTimeout(() => {
    timer = undefined;
    released = 0;
    lastCollectionAt = performance.now();
    const gc = collector();
    if (gc === null) return;
    // No options: an options object made in this context is not recognised by the
    // function from the other one, and `gc` then runs only a minor collection.
    gc();
    collections++;
  }, wait);
  // Nothing to wait for at exit: the memory goes with the process.
  timer.unref();
}

/** Collections this module ran so far. */
export function collectionsRun(): number {
  return collections;
}
