/**
 * `shardcast-admin genconfig`: writes an example configuration with every setting,
 * generated from the daemon's schema (daemon/config/schema.ts) so it cannot drift.
 *
 * JSON has no comments, so the commented form is an environment file: one
 * `SHARDCAST_*=value` line per setting under comment lines giving its doc, type and
 * default. Settings at their default are commented out (`#SHARDCAST_PORT=8080`):
 * uncomment and edit the ones to change. That form is read as it is by
 * `docker run --env-file`, compose `env_file`, systemd `EnvironmentFile=`,
 * Kubernetes `configMapGenerator` `envs` (k8s/base/config.env) and
 * `shardcast-admin checkconfig --env-file`. `--format json` writes the plain JSON
 * file SHARDCAST_CONFIG reads, every key at its default (null = unset).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { SCHEMA, SETTING_KEYS, CONFIG_FILE_ENV } from '../../daemon/config/schema.js';
import { shardcastVersion } from '../../daemon/version.js';
import { CliError, UsageError } from '../cli-errors.js';
import { parseFlags, type Command } from '../command.js';

const usage = `Usage: shardcast-admin genconfig [--format env|json] [--out PATH [--force]]

Writes an example configuration with every setting of this version, at its default.

  --format env    (default) an environment file with comments: per setting its doc,
                  type and default, then #SHARDCAST_NAME=default (commented out:
                  uncomment what you change). Usable as docker/compose env_file,
                  systemd EnvironmentFile, a Kubernetes configMapGenerator envs file.
  --format json   the JSON file ${CONFIG_FILE_ENV} names (no comments: JSON has none;
                  see the README's configuration reference), null = unset
  --out PATH      write to PATH instead of stdout (refuses to replace a file)
  --force         replace PATH if it exists

Check the result with: shardcast-admin checkconfig --env-file PATH (or --config PATH).
Exit: 0 written; 1 the file exists (without --force) or cannot be written.`;

/** A value as environment text: what the daemon's loader parses back to the same value. */
export function envText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) {
    if (value.length === 0) return '';
    return value.every((v) => typeof v === 'string') ? value.join(',') : JSON.stringify(value);
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The commented environment file. */
export function renderEnvConfig(): string {
  const out = [
    `# Shardcast ${shardcastVersion()} configuration, written by shardcast-admin genconfig.`,
    '#',
    '# One SHARDCAST_* variable per setting; the environment wins over a JSON file',
    `# named by ${CONFIG_FILE_ENV}. Settings still commented out (#SHARDCAST_...) keep`,
    '# their default: uncomment the ones you change. Values are taken literally (no',
    '# quotes, no shell expansion); an empty value counts as unset.',
    '#',
    '# Outside devMode the daemon needs SHARDCAST_API_KEY and a client-token key',
    '# (SHARDCAST_JWT_SECRET, _JWT_PUBLIC_KEY_FILE or _JWT_JWKS_FILE): better given from',
    '# a secret store than written in this file.',
    '#',
    '# Check it without starting anything: shardcast-admin checkconfig --env-file FILE',
  ];
  for (const key of SETTING_KEYS) {
    const s = SCHEMA[key];
    out.push('', `# ${key}: ${s.doc.replace(/`/g, '')}`, `# ${s.type}; default ${s.defaultDoc.replace(/`/g, '')}${s.secret ? '; a credential' : ''}`);
    out.push(`#${s.env}=${s.secret ? '' : envText(s.defaultValue())}`);
  }
  return out.join('\n') + '\n';
}

/** The JSON config file: every key at its default, credentials null. */
export function renderJsonConfig(): string {
  const file: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const s = SCHEMA[key];
    const value = s.secret ? undefined : s.defaultValue();
    file[key] = value === undefined ? null : value;
  }
  return JSON.stringify(file, null, 2) + '\n';
}

/** The genconfig verb. */
export const genconfigCommand: Command = {
  name: 'genconfig',
  summary: 'write an example configuration with every setting (commented env file, or JSON)',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, {
      format: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
    });
    const format = flags.format ?? 'env';
    if (format !== 'env' && format !== 'json') throw new UsageError(`--format must be env or json, got ${JSON.stringify(format)}`);
    if (flags.force && flags.out === undefined) throw new UsageError('--force goes with --out');
    const text = format === 'env' ? renderEnvConfig() : renderJsonConfig();
    if (flags.out === undefined) {
      for (const line of text.replace(/\n$/, '').split('\n')) io.stdout(line);
      return 0;
    }
    if (existsSync(flags.out) && !flags.force) throw new CliError(`${flags.out} exists; pass --force to replace it`);
    try {
      writeFileSync(flags.out, text, { mode: 0o600 });
    } catch (err) {
      throw new CliError(`cannot write ${flags.out}: ${(err as Error).message}`);
    }
    io.stderr(`wrote ${flags.out} (${format}, ${SETTING_KEYS.length} settings); check it with: shardcast-admin checkconfig ${format === 'env' ? '--env-file' : '--config'} ${flags.out}`);
    return 0;
  },
};
