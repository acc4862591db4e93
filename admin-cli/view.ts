/**
 * What the read-only admin verbs share: `--json` (the API's answer as one line of
 * JSON) or a human rendering, and `--watch` (render again every `--interval`
 * seconds, clearing the terminal, until interrupted).
 */
import type { CliIo } from './cli-io.js';
import { parseCount } from './command.js';

/** The flags every read-only verb takes. */
export const VIEW_FLAGS = {
  json: { type: 'boolean' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
} as const;

/** Help text for VIEW_FLAGS. */
export const VIEW_USAGE = `  --json            print the admin API's answer as JSON (one line) instead of a table
  --watch           refresh every --interval seconds until interrupted (Ctrl-C)
  --interval N      seconds between refreshes with --watch (default 2)`;

/** Fetches and prints once, or repeatedly with --watch; resolves with the exit code. */
export async function view<T>(
  io: CliIo,
  flags: { json?: boolean; watch?: boolean; interval?: string },
  fetchOnce: () => Promise<T>,
  render: (data: T) => string,
): Promise<number> {
  const intervalS = flags.interval === undefined ? 2 : parseCount(flags.interval, '--interval', 1);
  const print = (data: T) => io.stdout(flags.json ? JSON.stringify(data) : render(data));
  if (!flags.watch) {
    print(await fetchOnce());
    return 0;
  }
  while (!io.signal.aborted) {
    let data: T;
    try {
      data = await fetchOnce();
    } catch (err) {
      if (io.signal.aborted) break; // Ctrl-C during a fetch: a normal end of --watch.
      throw err;
    }
    // Clear the screen and home the cursor (humans only; JSON lines just follow each other).
    if (!flags.json) io.stdout(`\u001b[2J\u001b[H${new Date().toISOString()}  (every ${intervalS} s; Ctrl-C to stop)\n`);
    print(data);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, intervalS * 1000);
      function done() {
        clearTimeout(timer);
        io.signal.removeEventListener('abort', done);
        resolve();
      }
      io.signal.addEventListener('abort', done, { once: true });
    });
  }
  return 0;
}
