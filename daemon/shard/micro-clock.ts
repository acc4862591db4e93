/**
 * The shard's microsecond wall clock, for fair-timing stamps (SPEC.md §11).
 *
 * `Date.now()` has millisecond steps; two answers a few hundred µs apart would tie.
 * `performance.timeOrigin + performance.now()` is the wall clock when this thread
 * started plus a monotonic, sub-µs counter since: differences between two stamps
 * of one shard are exact, and the absolute value drifts from the wall clock only
 * by how much the system clock was slewed since the thread started.
 */
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

/** Now, in whole microseconds since the Unix epoch. */
export function nowUs(): number {
  return Math.floor((origin + performance.now()) * 1000);
}
