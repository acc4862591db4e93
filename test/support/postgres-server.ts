/**
 * A private, throwaway Postgres for tests that must stop or restart Postgres (an
 * outage under the journal, a restart in the middle of a run). Such tests must never
 * touch the shared Postgres on 5432 (other test files use it at the same time).
 *
 * `startPostgresServer()` runs `initdb` once per server into a temporary directory,
 * then `postgres` itself as a child process (not `pg_ctl`: the child is ours to
 * kill) on a free loopback port, trust auth, its unix socket in that directory, and
 * no fsync for speed (`fsync=off`, `full_page_writes=off`: only an OS crash would
 * lose data; `synchronous_commit` stays on so a stop() keeps every acked commit).
 * Data lives until close(): stop() and start() keep it.
 *
 * Postgres refuses to run as root: when the test runs as root, initdb and postgres
 * run as the `postgres` user (`setpriv --reuid`, which execs, so the child is
 * postgres itself), in a directory chowned to it.
 *
 * A test that forgets `close()` does not leave the server behind: the child is
 * SIGKILLed when the test process exits and, through `setpriv --pdeathsig KILL`
 * (applied after the user switch), by the kernel if the test process dies by a
 * signal; Postgres's own children exit when their postmaster dies. The child does
 * not keep the test process's event loop alive.
 *
 * Binaries: `SHARDCAST_TEST_PG_BIN`, else the newest /usr/lib/postgresql/<n>/bin,
 * else `pg_config --bindir`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PostgresServer {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** Whether the server is running. */
  readonly running: boolean;
  /**
   * Stops it like a crash, keeping its data: SIGQUIT (immediate shutdown: no
   * checkpoint, clients cut off, recovery at the next start), SIGKILL if it has not
   * exited within 5 s. No-op when stopped.
   */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data (resolves when it accepts connections). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5000;
const OUTPUT_KEPT = 8000;
const READY = /database system is ready to accept connections/;

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

let pdeathsig: boolean | undefined;
function canUsePdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 2000 });
    pdeathsig = r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return pdeathsig;
}

/** Where initdb and postgres are. */
export function postgresBinDir(): string {
  const fromEnv = process.env.SHARDCAST_TEST_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length > 0) return join(root, versions[0], 'bin');
  }
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8', timeout: 2000 });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  throw new Error('no Postgres binaries found: set SHARDCAST_TEST_PG_BIN to the directory of initdb and postgres');
}

/** uid and gid of the `postgres` user when we run as root (Postgres refuses root), else undefined. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root, and there is no `postgres` user to run Postgres as');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Command and arguments running `bin` as the right user, dying with us when possible. */
function command(bin: string, args: string[], user: { uid: number; gid: number } | undefined, dieWithParent: boolean): [string, string[]] {
  const priv: string[] = [];
  if (user) priv.push(`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups');
  if (dieWithParent && canUsePdeathsig()) priv.push('--pdeathsig', 'KILL');
  if (priv.length === 0) return [bin, args];
  return ['setpriv', [...priv, '--', bin, ...args]];
}

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

class PostgresStartError extends Error {
  constructor(message: string, readonly output: string) {
    super(message);
  }
}

class ChildPostgres implements PostgresServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private closed = false;

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly bin: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  get url(): string {
    return `postgres://postgres@${HOST}:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error(`postgres on port ${this.port} is closed`);
    if (this.child) return;
    const args = [
      '-D', join(this.dir, 'data'), '-p', String(this.port), '-k', this.dir,
      '-c', `listen_addresses=${HOST}`,
      // No fsync (a stopped server keeps its data: the WAL is in the OS cache), but
      // synchronous_commit stays on: with it off, a commit is acked before its WAL is
      // written, and stop() (an immediate shutdown) would lose acked commits.
      '-c', 'fsync=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off',
    ];
    const [cmd, cmdArgs] = command(join(this.bin, 'postgres'), args, this.user, true);
    this.output = '';
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    liveChildren.add(child);
    let spawnError: Error | null = null;
    let ready = false;
    let onReady: () => void = () => {};
    const readyOrExit = new Promise<void>((resolve) => {
      onReady = resolve;
    });
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        liveChildren.delete(child);
        resolve();
        onReady();
      });
      child.once('close', () => {
        liveChildren.delete(child);
        resolve();
        onReady();
      });
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_KEPT);
      if (!ready && READY.test(this.output)) {
        ready = true;
        onReady();
      }
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.unref();
    (child.stdout as unknown as Socket).unref();
    (child.stderr as unknown as Socket).unref();

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS);
    });
    const outcome = await Promise.race([readyOrExit.then(() => 'settled' as const), timedOut]);
    clearTimeout(timer);
    if (ready) return;
    if (outcome === 'timeout') {
      await this.stop();
      throw new PostgresStartError(`postgres on port ${this.port} was not ready within ${START_TIMEOUT_MS} ms${this.describeOutput()}`, this.output);
    }
    await this.exited;
    this.child = null;
    const why = spawnError ? `could not run ${cmd}: ${(spawnError as Error).message}` : `exited with ${child.exitCode ?? child.signalCode}`;
    throw new PostgresStartError(`postgres on port ${this.port} ${why}${this.describeOutput()}`, this.output);
  }

  private describeOutput(): string {
    return this.output ? `; its output:\n${this.output}` : ' (no output)';
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    // Keep the loop alive while we wait for the exit (see redis-server.ts).
    child.ref();
    (child.stdout as unknown as Socket | null)?.ref();
    (child.stderr as unknown as Socket | null)?.ref();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(killer);
    }
    await this.exited;
  }

  async restart(): Promise<void> {
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

/** Runs initdb into `dir/data` (trust auth, superuser `postgres`). */
function initdb(bin: string, dir: string, user: { uid: number; gid: number } | undefined): void {
  const [cmd, args] = command(join(bin, 'initdb'), [
    '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
  ], user, false);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    throw new Error(`initdb failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}): ${(r.stderr || r.stdout || '').slice(-2000)}`);
  }
}

/** Starts a private Postgres on a free port; call close() when done (t.teardown). */
export async function startPostgresServer(): Promise<PostgresServer> {
  installExitHook();
  const bin = postgresBinDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'shardcast-pg-'));
  liveDirs.add(dir);
  try {
    if (user) chownSync(dir, user.uid, user.gid);
    initdb(bin, dir, user);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
  // The port is free when picked but may be taken before Postgres binds it: try another.
  for (let attempt = 1; ; attempt++) {
    const server = new ChildPostgres(await freePort(), dir, bin, user);
    try {
      await server.start();
      return server;
    } catch (err) {
      const clash = err instanceof PostgresStartError && /could not bind|address already in use/i.test(err.output);
      if (!clash || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
        throw err;
      }
    }
  }
}
