// The README's "outside dev mode" block, pasted into bash as a user would: it must
// start the daemon, wait for it, mint a token, publish, print the event with
// listen, and stop the daemon. Only the port is changed (a free one, not 8080).
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

t.test('the README JWT block works when pasted', async (t) => {
  const m = /<!-- readme-jwt-example:start -->\n```sh\n([\s\S]*?)```\n<!-- readme-jwt-example:end -->/.exec(readme);
  if (m === null) throw new Error('README.md has no readme-jwt-example block');
  const port = await freePort();
  const block = m[1]!.replaceAll(':8080', `:${port}`);
  t.notMatch(block, /8080/, 'only the port was changed');
  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', block], {
    cwd: root,
    detached: true,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SHARDCAST_PORT: String(port),
      SHARDCAST_HOST: '127.0.0.1',
      SHARDCAST_URL: `http://127.0.0.1:${port}`,
      SHARDCAST_SHARDS: '1',
      SHARDCAST_DRAIN_SPREAD_MS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => resolve(-1), 150_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, 'the block ran to its end', { stderr: stderr.slice(-2000) });
  const events = stdout.split('\n').filter((l) => l.startsWith('{"session"')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(events, [{ session: 'quiz:42', seq: 1, type: 'question', data: { q: '2+2?' }, epoch: String, ts: Number }], 'listen printed the published event');
  // `kill %1` drained and stopped the daemon.
  let up = true;
  for (let i = 0; i < 60 && up; i++) {
    up = await listening(port);
    if (up) await new Promise((r) => setTimeout(r, 250));
  }
  t.notOk(up, 'the daemon stopped');
});
