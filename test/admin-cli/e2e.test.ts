/**
 * End to end: the built shardcast-admin (dist/admin-cli/main.js) against the built
 * daemon (dist/daemon/main.js), standalone engine, two shards, port 0. Needs
 * `npm run build` first (`npm test` does it).
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDaemon } from '../support/daemon-process.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const daemonMain = `${root}dist/daemon/main.js`;
const cliMain = `${root}dist/admin-cli/main.js`;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; `onStderr` sees stderr as it comes (to know when listen has joined). */
function runCli(args: string[], env: Record<string, string>, onStderr?: (text: string, child: ChildProcess) => void): Promise<CliRun> {
  const child = spawn(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr, child);
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string): unknown[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

if (!existsSync(daemonMain) || !existsSync(cliMain)) {
  t.fail(`built files missing (${daemonMain}, ${cliMain}): run npm run build first`);
} else {
  t.test('dev mode: publish, then listen replays what was missed and follows live events', async (t) => {
    const daemon = await startDaemon();
    t.teardown(() => daemon.stop());
    const env = { SHARDCAST_URL: daemon.http };

    const first = await runCli(['publish', '--session', 'e2e:quiz', '--type', 'question', '--data', '{"n":1}', '--id', 'q1'], env);
    t.equal(first.code, 0, first.stderr);
    const [published] = lines(first.stdout) as { session: string; seq: number; epoch: string; duplicate: boolean }[];
    t.match(published, { session: 'e2e:quiz', seq: 1, epoch: String, duplicate: false });
    const again = await runCli(['publish', '--session', 'e2e:quiz', '--type', 'question', '--data', '{"n":1}', '--id', 'q1'], env);
    t.same(lines(again.stdout), [{ session: 'e2e:quiz', seq: 1, epoch: published.epoch, duplicate: true }], 'same event id: no second event');
    const second = await runCli(['publish', '--session', 'e2e:quiz', '--type', 'question', '--data', '{"n":2}', '--snapshot', 'current'], env);
    t.equal(second.code, 0, second.stderr);

    let publishedLive: Promise<CliRun[]> | undefined;
    const listen = await runCli(
      ['listen', '--session', 'e2e:quiz', '--user', 'watcher', '--since', '1', '--epoch', published.epoch, '--count', '3'],
      env,
      (stderr) => {
        if (publishedLive || !stderr.includes('joined e2e:quiz')) return;
        publishedLive = Promise.all([
          runCli(['publish', '--session', 'e2e:quiz', '--type', 'answer', '--data', '"B"'], env),
          runCli(['publish', '--session', 'e2e:other', '--type', 'noise', '--data', '0'], env),
        ]).then(async (runs) => [...runs, await runCli(['publish', '--session', 'e2e:quiz', '--type', 'answer', '--data', '[1,2]', '--to', 'watcher'], env)]);
      },
    );
    t.ok(publishedLive, 'listen reported its join on stderr');
    for (const run of (await publishedLive) ?? []) t.equal(run.code, 0, run.stderr);
    t.equal(listen.code, 0, listen.stderr);
    const events = lines(listen.stdout);
    t.match(events, [
      { session: 'e2e:quiz', seq: 2, epoch: published.epoch, type: 'question', data: { n: 2 }, ts: Number, key: 'current' },
      { session: 'e2e:quiz', seq: 3, type: 'answer', data: 'B' },
      { session: 'e2e:quiz', seq: 4, type: 'answer', data: [1, 2] },
    ]);
    t.equal(events.length, 3, 'seq 2 replayed, 3 and 4 live; nothing from other sessions');
  });

  t.test('with a JWT secret and an API key: tokens, session patterns and keys are enforced', async (t) => {
    const secret = 'e2e-jwt-secret-e2e-jwt-secret-0123456789';
    const apiKey = 'e2e-api-key-0123456789';
    const daemon = await startDaemon({ SHARDCAST_DEV_MODE: 'false', SHARDCAST_JWT_SECRET: secret, SHARDCAST_API_KEY: apiKey, SHARDCAST_ADMIN_TOKEN: apiKey });
    t.teardown(() => daemon.stop());
    const env = { SHARDCAST_URL: daemon.http, SHARDCAST_JWT_SECRET: secret, SHARDCAST_API_KEY: apiKey };

    const noKey = await runCli(['publish', '--session', 'quiz:7', '--type', 't', '--data', '1'], { SHARDCAST_URL: daemon.http });
    t.equal(noKey.code, 1);
    t.match(noKey.stderr, /HTTP 401/);
    t.equal(noKey.stdout, '');

    const tokenRun = await runCli(['token', '--user', 'alice', '--session', 'quiz:*', '--ttl', '5m'], env);
    t.equal(tokenRun.code, 0, tokenRun.stderr);
    const token = tokenRun.stdout.trim();

    let published: Promise<CliRun> | undefined;
    const listen = await runCli(['listen', '--session', 'quiz:7', '--token', token, '--count', '1'], env, (stderr) => {
      if (!published && stderr.includes('joined quiz:7')) published = runCli(['publish', '--session', 'quiz:7', '--type', 'question', '--data', '"Q?"'], env);
    });
    t.equal(listen.code, 0, listen.stderr);
    t.equal((await published)?.code, 0);
    t.match(lines(listen.stdout), [{ session: 'quiz:7', seq: 1, type: 'question', data: 'Q?' }]);

    const forbidden = await runCli(['listen', '--session', 'chat:1', '--token', token], env);
    t.equal(forbidden.code, 1, 'a session outside the token patterns is refused');
    t.match(forbidden.stderr, /cannot listen to chat:1: Forbidden \(103\)/);

    const forged = await runCli(['token', '--user', 'mallory', '--session', '*'], { ...env, SHARDCAST_JWT_SECRET: 'not-the-daemon-secret-0123456789' });
    const refused = await runCli(['listen', '--session', 'quiz:7', '--token', forged.stdout.trim()], env);
    t.equal(refused.code, 1, 'a token signed with another secret is refused');
    t.match(refused.stderr, /AuthFailed \(4501\)/);
    t.equal(refused.stdout, '');
  });
}
