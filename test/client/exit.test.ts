import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FakeGateway } from './fake-gateway.js';

const fixture = fileURLToPath(new URL('./fixtures/exit-client.ts', import.meta.url));

/** Runs the fixture under the same TypeScript loader as this test; resolves with its exit code and output. */
function runChild(url: string, scenario: string, limitMs = 45_000): Promise<{ code: number | null; out: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [...process.execArgv, fixture, url, scenario], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out, ms: Date.now() - started });
    });
  });
}

t.test('after close() with a command pending, the process exits on its own', async (t) => {
  const gw = await FakeGateway.start({ ping: 30 });
  t.teardown(() => gw.close());
  gw.handlers.cmd = () => true; // never acked: the command's 60 s timer must be cleared by close()
  gw.handlers.join = (conn, frame) => {
    conn.joined.add(frame.s);
    conn.send({ t: 'joined', id: frame.id, s: frame.s, ep: 'ep1', seq: 0, rec: false });
    setTimeout(() => gw.publish('exit', 'go', 1), 20);
    return true;
  };
  const result = await runChild(gw.url, 'normal');
  t.equal(result.code, 0, `exit code (output: ${result.out})`);
  t.match(result.out, /event 1\n/);
  t.match(result.out, /command rejected/);
  t.match(result.out, /closed\n/);
  t.ok(result.ms < 45_000, `exited in ${result.ms} ms (the child is killed at 45 s, before its 60 s timers could end it; starting it under the TypeScript loader takes seconds on a loaded machine)`);
});

t.test('after close() while a reconnect is scheduled, the process exits on its own', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  void gw.nextConnection(1).then((conn) => setTimeout(() => conn.ws.terminate(), 20));
  const result = await runChild(gw.url, 'reconnecting');
  t.equal(result.code, 0, `exit code (output: ${result.out})`);
  t.match(result.out, /disconnected, reconnect in \d+ ms\nclosed\n/);
  t.equal(gw.connections.length, 1, 'no reconnect happened');
});
