/**
 * A private, throwaway Redis for tests that must stop or restart Redis (reconnects,
 * lost subscriptions, an engine outliving its backend). Such tests must never touch
 * the shared Redis on 6379 (other test files use it at the same time).
 *
 * `startRedisServer()` runs `redis-server` as a child process (not daemonized) on a
 * free loopback port, with nothing kept on disk (`--save "" --appendonly no`, its own
 * temporary `--dir`). Only node built-ins: `redisCommand` is a tiny RESP client for
 * checks (PING, SET, GET...), not a replacement for ioredis.
 *
 * A test that forgets `close()` does not leave the process behind: the child is
 * SIGKILLed when the test process exits, and, where util-linux's `setpriv` is
 * available, the kernel kills it too if the test process dies by a signal (e.g. tap's
 * timeout). The child does not keep the test process's event loop alive.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Kills it (SIGKILL: nothing is saved) and waits for the exit. No-op when stopped. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port, empty (nothing persisted). */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 5000;
const OUTPUT_KEPT = 4000;

/** Children still running, and directories still present, for the exit hook. */
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill() and rmSync() are.
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

let pdeathsig: boolean | undefined;
/** Whether `setpriv --pdeathsig` exists (util-linux ≥ 2.33): the child dies with us even on a signal. */
function canUsePdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 2000 });
    pdeathsig = r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return pdeathsig;
}

/** A port that was free a moment ago (the kernel's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port from listen(0)'));
      });
    });
  });
}

export type RedisReply = string | number | null;

/**
 * Sends one command (as a RESP array) and resolves with its reply: simple strings and
 * bulk strings as strings, integers as numbers, nil as null. An error reply rejects.
 * Array replies are not supported.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 1000, host = HOST): Promise<RedisReply> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = Buffer.alloc(0);
    const done = (err: Error | null, value?: RedisReply) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value ?? null);
    };
    const timer = setTimeout(() => done(new Error(`${host}:${port}: no answer to ${args[0]} in ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err) => done(err));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const eol = data.indexOf('\r\n');
      if (eol < 0) return;
      const head = data.subarray(1, eol).toString('utf8');
      switch (String.fromCharCode(data[0])) {
        case '+': return done(null, head);
        case '-': return done(new Error(`${host}:${port}: ${args[0]}: ${head}`));
        case ':': return done(null, Number(head));
        case '$': {
          const length = Number(head);
          if (length < 0) return done(null, null);
          if (data.length < eol + 2 + length + 2) return; // wait for the rest
          return done(null, data.subarray(eol + 2, eol + 2 + length).toString('utf8'));
        }
        default: return done(new Error(`${host}:${port}: unsupported reply to ${args[0]}: ${head.slice(0, 80)}`));
      }
    });
    socket.connect(port, host, () => {
      const parts = args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join('')}`);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class ChildRedis implements RedisServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private closed = false;

  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  /** Spawns redis-server on this.port and waits until it answers PING. */
  async start(): Promise<void> {
    const redisArgs = [
      '--port', String(this.port), '--bind', HOST,
      '--save', '', '--appendonly', 'no', '--dir', this.dir,
      '--daemonize', 'no', '--logfile', '',
    ];
    const [command, args] = canUsePdeathsig()
      ? ['setpriv', ['--pdeathsig', 'KILL', 'redis-server', ...redisArgs]]
      : ['redis-server', redisArgs];
    this.output = '';
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    let spawnError: Error | null = null;
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        liveChildren.delete(child);
        resolve();
      });
      // 'close', not 'exit': by then its output has been read to the end.
      child.once('close', () => {
        liveChildren.delete(child);
        resolve();
      });
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_KEPT);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    // A running Redis must not keep the test process alive: the exit hook kills it.
    child.unref();
    (child.stdout as unknown as Socket).unref();
    (child.stderr as unknown as Socket).unref();

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (spawnError || child.exitCode !== null || child.signalCode !== null) {
        await this.exited;
        const hint = ' (is redis-server installed? deploy/services.sh installs it)';
        const why = spawnError
          ? `could not run ${command}: ${(spawnError as Error).message}${hint}`
          : `exited with ${child.exitCode ?? child.signalCode}${child.exitCode === 127 ? hint : ''}`;
        throw new RedisStartError(this.port, `redis-server on port ${this.port} ${why}${this.describeOutput()}`, this.output);
      }
      try {
        if ((await redisCommand(this.port, ['PING'], 200)) === 'PONG') return;
      } catch {
        // not listening yet
      }
      if (Date.now() >= deadline) {
        await this.stop();
        throw new RedisStartError(this.port, `redis-server on port ${this.port} did not answer PING within ${START_TIMEOUT_MS} ms${this.describeOutput()}`, this.output);
      }
      await sleep(20);
    }
  }

  private describeOutput(): string {
    return this.output ? `; its output:\n${this.output}` : ' (no output)';
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    // Unreferenced, the child and its pipes would not keep the loop alive while we
    // wait for 'close' (which also waits for the pipes to end): a test process whose
    // only pending work is this wait would exit in the middle of its teardown.
    child.ref();
    (child.stdout as unknown as Socket | null)?.ref();
    (child.stderr as unknown as Socket | null)?.ref();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exited;
  }

  async restart(): Promise<void> {
    if (this.closed) throw new Error(`redis-server on port ${this.port} is closed`);
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

class RedisStartError extends Error {
  constructor(
    readonly port: number,
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/** Starts a private redis-server on a free port; call close() when done (t.teardown). */
export async function startRedisServer(): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'shardcast-redis-'));
  liveDirs.add(dir);
  // The port is free when picked but may be taken before Redis binds it: try another.
  for (let attempt = 1; ; attempt++) {
    const server = new ChildRedis(await freePort(), dir);
    try {
      await server.start();
      return server;
    } catch (err) {
      const clash = err instanceof RedisStartError && /address already in use/i.test(err.output);
      if (!clash || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
        throw err;
      }
    }
  }
}
