/**
 * Progress on stderr while a run goes: one line rewritten in place when stderr is a
 * terminal, otherwise a plain line every few seconds (CI logs, pipes). stdout stays
 * clean for the table or the JSON.
 */

/** Where progress goes. */
export interface ProgressDisplay {
  update(text: string): void;
  clear(): void;
  /** A line that stays (e.g. a finished target). */
  note(text: string): void;
}

/** Progress on process.stderr; `quiet` prints notes only. */
export function stderrProgress(quiet = false, plainEveryMs = 5000): ProgressDisplay {
  const tty = process.stderr.isTTY === true;
  let lastPlain = 0;
  let shown = false;
  return {
    update(text) {
      if (quiet) return;
      if (tty) {
        const width = process.stderr.columns ?? 120;
        process.stderr.write(`\r\x1b[2K${text.slice(0, width - 1)}`);
        shown = true;
      } else if (Date.now() - lastPlain >= plainEveryMs) {
        lastPlain = Date.now();
        process.stderr.write(`${text}\n`);
      }
    },
    clear() {
      if (tty && shown) process.stderr.write('\r\x1b[2K');
      shown = false;
    },
    note(text) {
      this.clear();
      process.stderr.write(`${text}\n`);
    },
  };
}
