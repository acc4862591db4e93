/**
 * Where an example service finds RabbitMQ, Shardcast's exchanges and Postgres: from
 * the environment, checked at start (a bad value names its variable), with defaults
 * that match a daemon run with `SHARDCAST_AMQP_URL` on this machine.
 */

/** Connection settings of an example service. */
export interface ServiceSettings {
  amqpUrl: string;
  /** Shardcast's events exchange (`SHARDCAST_AMQP_EXCHANGE`). */
  eventsExchange: string;
  /** Shardcast's commands exchange (`SHARDCAST_AMQP_COMMANDS_EXCHANGE`). */
  commandsExchange: string;
  /** The service's own queue on the commands exchange. */
  queue: string;
  databaseUrl: string;
  /** The Postgres schema holding the service's tables (nothing else goes there). */
  schema: string;
}

/** A setting that cannot be used; the message names the variable. */
export class SettingsError extends Error {
  readonly code = 'invalid_setting';
}

const EXCHANGE = /^[A-Za-z0-9_.:-]{1,200}$/;
const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function pick(env: NodeJS.ProcessEnv, key: string, fallback: string, pattern?: RegExp, what?: string): string {
  const value = env[key] ?? fallback;
  if (value === '') throw new SettingsError(`${key} is empty`);
  if (pattern !== undefined && !pattern.test(value)) throw new SettingsError(`${key}="${value}" is not ${what}`);
  return value;
}

/** The settings of service `name` from `env`; throws SettingsError naming a bad variable. */
export function settingsFromEnv(name: string, env: NodeJS.ProcessEnv = process.env): ServiceSettings {
  const amqpUrl = pick(env, 'SHARDCAST_AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672');
  if (!/^amqps?:\/\//.test(amqpUrl)) throw new SettingsError('SHARDCAST_AMQP_URL must start with amqp:// or amqps://');
  const databaseUrl = pick(env, 'EXAMPLE_DATABASE_URL', env.SHARDCAST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new SettingsError('EXAMPLE_DATABASE_URL must start with postgres:// or postgresql://');
  const exchangeRule = 'an exchange name (1-200 of letters, digits, _ . : -)';
  return {
    amqpUrl,
    eventsExchange: pick(env, 'SHARDCAST_AMQP_EXCHANGE', 'shardcast.events', EXCHANGE, exchangeRule),
    commandsExchange: pick(env, 'SHARDCAST_AMQP_COMMANDS_EXCHANGE', 'shardcast.commands', EXCHANGE, exchangeRule),
    queue: pick(env, 'EXAMPLE_QUEUE', `examples.${name}`, EXCHANGE, 'a queue name (1-200 of letters, digits, _ . : -)'),
    databaseUrl,
    schema: pick(env, 'EXAMPLE_SCHEMA', `example_${name}`, SCHEMA, 'a schema name (a letter or _, then letters, digits, _; at most 63)'),
  };
}
