/**
 * `shardcast-admin checkconfig`: validates a configuration the way the daemon does
 * at start (daemon/config/load.ts: the JSON file, the environment, key files, the
 * checks between settings) without starting anything, and reports every problem at
 * once, each naming the key and its environment variable.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../daemon/config/load.js';
import { CONFIG_FILE_ENV } from '../../daemon/config/schema.js';
import { CliError, EXIT_FAILURE } from '../cli-errors.js';
import { parseFlags, type Command } from '../command.js';

const usage = `Usage: shardcast-admin checkconfig [--config PATH] [--env-file PATH] [--ignore-env] [--json]

Validates the daemon's configuration exactly as the daemon would at start, without
starting it, and lists every problem at once with the setting's key and variable.

  --config PATH     JSON config file to check (default: the file ${CONFIG_FILE_ENV} names)
  --env-file PATH   NAME=value lines (e.g. from genconfig; # comments) added to the
                    environment, winning over it, as docker --env-file would
  --ignore-env      check without this shell's SHARDCAST_* variables (the file and
                    --env-file only)
  --json            print {"ok","problems","warnings"} on stdout instead of text

SHARDCAST_URL (shardcast-admin's own variable) is not a daemon setting and is left out.
Exit: 0 valid (warnings may be printed); 1 invalid, or a file cannot be read.`;

/** Variables of shardcast-admin itself, not daemon settings. */
const CLI_ONLY_ENV = new Set(['SHARDCAST_URL']);

/** Parses NAME=value lines; blank lines and # comments are skipped; values are literal. */
export function parseEnvFile(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const bad: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m === null) bad.push(`${path}:${i + 1}: expected NAME=value, got ${JSON.stringify(line.slice(0, 60))}`);
    else out[m[1]!] = m[2]!;
  }
  if (bad.length > 0) throw new CliError(`cannot read the env file:\n${bad.map((b) => `  - ${b}`).join('\n')}`);
  return out;
}

/** The checkconfig verb. */
export const checkconfigCommand: Command = {
  name: 'checkconfig',
  summary: 'validate a config file and the environment without starting the daemon',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, {
      config: { type: 'string' },
      'env-file': { type: 'string' },
      'ignore-env': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const env: Record<string, string | undefined> = {};
    if (!flags['ignore-env']) {
      for (const [name, value] of Object.entries(io.env)) if (!CLI_ONLY_ENV.has(name)) env[name] = value;
    } else if (io.env.NODE_ENV !== undefined) {
      // NODE_ENV is not a SHARDCAST_* variable but changes what is allowed.
      env.NODE_ENV = io.env.NODE_ENV;
    }
    const envFile = flags['env-file'];
    if (envFile !== undefined) {
      let text: string;
      try {
        text = readFileSync(envFile, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${envFile}: ${(err as Error).message}`);
      }
      Object.assign(env, parseEnvFile(text, envFile));
    }
    const argv = flags.config !== undefined ? ['--config', flags.config] : [];
    let problems: readonly string[] = [];
    let warnings: readonly string[] = [];
    let summary = '';
    try {
      const loaded = loadConfig(env, argv);
      warnings = loaded.warnings;
      const c = loaded.config;
      const engine = c.redisUrl !== undefined ? `redis${c.redisCluster ? ' cluster' : ''}` : 'standalone (in memory)';
      summary = `configuration OK: engine ${engine}, ${c.shards} shard${c.shards === 1 ? '' : 's'}, ${c.host}:${c.port}${c.devMode ? ', DEV MODE' : ''}${c.amqpUrl !== undefined ? ', RabbitMQ ingress' : ''}${c.databaseUrl !== undefined ? ', Postgres journal' : ''}`;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
      warnings = err.warnings;
    }
    if (flags.json) {
      io.stdout(JSON.stringify({ ok: problems.length === 0, problems, warnings }));
    } else {
      for (const w of warnings) io.stderr(`warning: ${w}`);
      if (problems.length > 0) {
        io.stderr(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):`);
        for (const p of problems) io.stderr(`  - ${p}`);
      } else {
        io.stdout(summary);
      }
    }
    return problems.length > 0 ? EXIT_FAILURE : 0;
  },
};
