/**
 * Starts the built daemon (dist/daemon/main.js) as a child process for end-to-end
 * tests: port 0 (the daemon picks a free port and logs it), JSON log lines parsed,
 * and a stop() that sends a signal and waits for the exit. Run `npm run build`
 * first (`npm test` does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withAllocatorEnv } from '../../daemon/allocator.js';

const MAIN = fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url));

/** A parsed JSON log line of the daemon. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A running daemon process. */
export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  port = 0;
  /** Port of the admin listener (admin API, /metrics, /readyz). */
  adminPort = 0;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line, raw: true });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of this.waiters.splice(0)) w();
    }));
  }

  /** Base HTTP URL. */
  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Base URL of the admin listener. */
  get admin(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  /** WebSocket endpoint URL. */
  get ws(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  /** Resolves with the first log line matching `pred` (seen already or later). */
  async waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found) return found;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`daemon exited before the expected log line; stderr: ${this.stderr.join('')}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a daemon log line');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  /** Memory of the daemon process (VmRSS) in bytes. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** POSTs JSON to the publish API; returns status and parsed body. */
  async publish(body: unknown, apiKey?: string): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    const res = await fetch(`${this.http}/v1/publish`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  }
}

/** Starts the daemon with `SHARDCAST_*` overrides and waits until it listens (15 s unless `listenTimeoutMs` says otherwise). */
export async function startDaemon(env: Record<string, string> = {}, opts: { listenTimeoutMs?: number } = {}): Promise<DaemonProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  const proc = spawn(process.execPath, [MAIN], {
    // The malloc settings npm start and the image set, so tests run the daemon as deployed.
    env: withAllocatorEnv({
      PATH: process.env.PATH,
      SHARDCAST_PORT: '0',
      SHARDCAST_HOST: '127.0.0.1',
      SHARDCAST_SHARDS: '2',
      SHARDCAST_DEV_MODE: 'true',
      SHARDCAST_LOG_LEVEL: 'info',
      // Go-aways all at once unless a test spreads them: stopping a daemon in
      // teardown should not wait out the production window.
      SHARDCAST_DRAIN_SPREAD_MS: '0',
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const daemon = new DaemonProcess(proc);
  let line: LogLine;
  try {
    line = await daemon.waitForLine((l) => l.msg === 'listening' && typeof l.port === 'number', opts.listenTimeoutMs ?? 30_000);
  } catch (err) {
    // Nobody else holds the process: do not leave it running.
    proc.kill('SIGKILL');
    throw err;
  }
  daemon.port = line.port as number;
  daemon.adminPort = typeof line.adminPort === 'number' ? line.adminPort : 0;
  return daemon;
}
