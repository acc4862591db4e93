/**
 * Helpers of the admin tests: the built shardcast-admin (dist/admin-cli/main.js)
 * run as a child process against a daemon's admin listener, and authenticated
 * requests to the admin API, and daemons whose admin API needs a token.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { startDaemon, type DaemonProcess } from './daemon-process.js';
import { RawClient } from './raw-client.js';

export const CLI_MAIN = fileURLToPath(new URL('../../dist/admin-cli/main.js', import.meta.url));

/** How one CLI run ended. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs shardcast-admin with `args` against `daemon`'s admin API (token `token`, if any). */
export function admin(daemon: DaemonProcess | string, token: string | undefined, args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const url = typeof daemon === 'string' ? daemon : daemon.admin;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', SHARDCAST_ADMIN_URL: url, ...extraEnv };
  if (token !== undefined) env.SHARDCAST_ADMIN_TOKEN = token;
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the CLI with --json and parses its one line of output (failing loudly otherwise). */
export async function adminJson<T>(daemon: DaemonProcess | string, token: string | undefined, args: string[]): Promise<T> {
  const run = await admin(daemon, token, [...args, '--json']);
  if (run.code !== 0) throw new Error(`shardcast-admin ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** An admin API request with the bearer token. */
export async function adminFetch(daemon: DaemonProcess, token: string | undefined, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${daemon.admin}${path}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  return { status: res.status, text: await res.text() };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The admin token the admin tests' daemons require. */
export const TOKEN = 'admin-test-token-0123456789';

/** A daemon (3 shards, dev mode for ?user= clients) whose admin API requires TOKEN; stopped at teardown. */
export async function daemonWithToken(t: Test, env: Record<string, string> = {}): Promise<DaemonProcess> {
  const daemon = await startDaemon({ SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_SHARDS: '3', ...env });
  t.teardown(() => daemon.stop());
  return daemon;
}

/** Connects `n` raw clients as users `${prefix}1..n` joined to `session`. */
export async function members(t: Test, daemon: DaemonProcess, session: string, prefix: string, n: number): Promise<RawClient[]> {
  const clients = await Promise.all(Array.from({ length: n }, (_, i) => RawClient.connect(daemon.ws, { user: `${prefix}${i + 1}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) {
    const joined = await c.join(session);
    if (joined.t !== 'joined') throw new Error(`join refused: ${JSON.stringify(joined)}`);
  }
  return clients;
}
