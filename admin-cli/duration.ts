/** Parsing of the CLI's short durations (`30s`, `15m`, `1h`, `7d`). */
import { UsageError } from './cli-errors.js';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** Converts `30s`/`15m`/`1h`/`7d` (a positive integer and one unit) to seconds; throws a UsageError otherwise. */
export function parseDurationSeconds(text: string, flag: string): number {
  const match = /^([1-9][0-9]{0,8})([smhd])$/.exec(text);
  if (!match) throw new UsageError(`${flag} must be a positive whole number followed by s, m, h or d (e.g. 30s, 15m, 1h, 7d), got ${JSON.stringify(text)}`);
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}
