/** The shape of one shardcast-admin verb, and argument parsing shared by all verbs. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CliIo } from './cli-io.js';
import { UsageError } from './cli-errors.js';

/** One verb: `shardcast-admin <name> …`. */
export interface Command {
  readonly name: string;
  /** One line for the verb list. */
  readonly summary: string;
  /** Full help text (printed by `help <verb>` and `<verb> --help`). */
  readonly usage: string;
  /** Runs the verb; resolves with the exit code. Throws UsageError / CliError for failures. */
  run(args: string[], io: CliIo): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode (no positionals) with its errors turned into UsageErrors. */
export function parseFlags<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** parseArgs in strict mode with positionals allowed; errors become UsageErrors. */
export function parseFlagsAndArgs<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Returns a required string flag or throws a UsageError naming it. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** Parses a non-negative integer flag. */
export function parseCount(value: string, flag: string, min = 0): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < min) {
    throw new UsageError(`${flag} must be a whole number${min > 0 ? ` ≥ ${min}` : ''}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
