/**
 * Helpers of the admin tests: the built shardcast-admin (dist/admin-cli/main.js)
 * run as a child process against a daemon's admin listener, and authenticated
 * requests to the admin API.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DaemonProcess } from '../support/daemon-process.js';

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
