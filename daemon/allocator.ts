/**
 * glibc malloc settings the daemon is started with (`npm start`, the image, the
 * bench and the tests). They must be in the environment before the process starts:
 * glibc reads them once, so this list is what launchers set, and the daemon only
 * reports at start-up whether they are in effect.
 *
 * Why: each worker thread allocates from malloc arenas of its own (up to 8 per core),
 * and glibc's dynamic mmap threshold moves large buffers (frames of a burst, replays,
 * request bodies) from mmap into those arenas once one was freed. Memory freed inside
 * an arena stays resident. After the abuse run, RSS settled 60 MB above its baseline
 * and stayed there with the V8 heaps back at their start. With two arenas and a fixed
 * 128 KiB mmap threshold (larger blocks are mmapped and unmapped on free) and trim
 * threshold, the same run settled within 20 % of its baseline
 * (docs/threat-model.md §4; fan-out cost in bench/RESULTS.md, "Allocator settings").
 * Other C libraries ignore these variables.
 */

/** The variables and values launchers set; a value already in the environment wins. */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** `env` with the allocator settings added where it has none of its own. */
export function withAllocatorEnv<T extends Record<string, string | undefined>>(env: T): Record<string, string> & T {
  return { ...ALLOCATOR_ENV, ...env };
}

/** The allocator settings, each from `env` where it sets one. */
export function allocatorEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(ALLOCATOR_ENV).map(([name, value]) => [name, env[name] ?? value]));
}

/** The allocator settings missing from this process's environment (none when started as documented). */
export function missingAllocatorSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(ALLOCATOR_ENV).filter((name) => env[name] === undefined);
}
