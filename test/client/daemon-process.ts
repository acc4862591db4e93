/**
 * Runs the built daemon (dist/daemon/main.js) for end-to-end tests: standalone
 * engine, two shards, port 0, on 127.0.0.1; resolves once it logged "listening".
 * Stopped with SIGTERM in the test's teardown (or earlier through `stop`/`signal`).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

/** Path of the built daemon entry. */
export const DAEMON_MAIN = fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url));

/** A running daemon. */
export interface DaemonProcess {
  /** Base HTTP URL, e.g. http://127.0.0.1:PORT. */
  url: string;
  port: number;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal without waiting. */
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
  /** SIGTERM (if still running) and wait for the exit. */
  stop(): Promise<void>;
}

/** Starts the built daemon with extra SHARDCAST_* settings. */
export async function startDaemon(t: Test, env: Record<string, string>): Promise<DaemonProcess> {
  const child = spawn(process.execPath, [DAEMON_MAIN], {
    env: { ...process.env, SHARDCAST_PORT: '0', SHARDCAST_HOST: '127.0.0.1', SHARDCAST_SHARDS: '2', SHARDCAST_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs: Record<string, unknown>[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not log "listening" within 15 s; stderr: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before listening; stderr: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.port === 'number') {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  t.teardown(stop);
  return { url: `http://127.0.0.1:${port}`, port, logs, signal: (sig) => child.kill(sig), exited, stop };
}
