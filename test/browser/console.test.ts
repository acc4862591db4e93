/**
 * The session console (`npm run console`) in headless Chromium against the real
 * daemon: it connects and joins from its query parameters, shows live events and
 * presence, sends a command, and shows a reconnect and resume after the link is cut
 * (a TCP relay, link-cutter.ts). The screenshot is kept as a test artifact
 * (.tap/artifacts/console.png; docs/console.png is a copy). Needs `npm run build`.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { WebSocket } from 'ws';
import { startConsole } from '../../protocol/client/console/server.js';
import { ShardcastClient } from '../../protocol/client/index.js';
import { startDaemon } from '../support/daemon-process.js';
import { browserSkipReason, launchChromium } from './chromium.js';
import { LinkCutter } from './link-cutter.js';

const ARTIFACTS = fileURLToPath(new URL('../../.tap/artifacts/', import.meta.url));
const skip = browserSkipReason();

if (skip !== null) {
  t.plan(0, skip);
} else {
  t.test('the console shows live events, presence, commands, a reconnect and its resume', async (t) => {
    const daemon = await startDaemon();
    t.teardown(() => daemon.stop());
    const cutter = await new LinkCutter(daemon.port).start();
    t.teardown(() => cutter.close());
    const server = await startConsole({ port: 0, host: '127.0.0.1', gateway: `ws://127.0.0.1:${cutter.port}/v1/ws` });
    t.teardown(() => server.close());
    const browser = await launchChromium();
    t.teardown(() => browser.close());

    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 820 });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}?user=alice&session=quiz:42&connect=1`);
    await page.waitForSelector('#state.open');
    await page.waitForFunction(() => document.getElementById('position')?.textContent?.includes('joined'));

    const bob = new ShardcastClient({ url: daemon.ws, user: 'bob', WebSocket });
    t.teardown(() => bob.close());
    await bob.join('quiz:42', { presence: true }).ready;

    const publish = (type: string, data: unknown, snapshot?: string) =>
      daemon.publish({ session: 'quiz:42', type, data, ...(snapshot ? { snapshot } : {}) });
    await publish('question', { n: 1, q: 'Capital of France?', options: ['Berlin', 'Paris', 'Rome'] }, 'question');
    await publish('tally', { answered: 2, of: 2 });
    await publish('reveal', { n: 1, correct: 'Paris' });
    await page.waitForFunction(() => document.querySelectorAll('#events tr').length >= 3);

    await page.click('#command');
    await page.waitForFunction(() => /command answer acknowledged/.test(document.getElementById('log')?.textContent ?? ''));

    // Cut the link without a close frame; events published meanwhile come back as a replay.
    cutter.down();
    await page.waitForSelector('#state.reconnecting');
    await publish('question', { n: 2, q: '7 × 6?', options: [42, 36, 48] }, 'question');
    await publish('leaderboard', [{ u: 'bob', pts: 10 }, { u: 'alice', pts: 10 }], 'leaderboard');
    cutter.up();
    await page.waitForFunction(() => /resumed, replaying up to seq 5/.test(document.getElementById('log')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('#events tr').length >= 5);
    await page.waitForFunction(() => (document.getElementById('presence')?.textContent ?? '').includes('bob'));

    const text = (selector: string) => page.evaluate((s) => document.querySelector(s)?.textContent ?? '', selector);
    t.equal(await text('#state'), 'open');
    t.same(
      await page.evaluate(() => Array.from(document.querySelectorAll('#events tr td:first-child')).map((td) => Number(td.textContent))),
      [5, 4, 3, 2, 1],
      'every event once, newest first',
    );
    t.equal(await page.evaluate(() => document.querySelectorAll('#events tr.replayed').length), 2, 'the two missed events are marked as replayed');
    t.match(await text('#presence'), /alice/);
    t.match(await text('#presence'), /bob/);
    t.match(await text('#log'), /disconnected: 1006/);
    t.match(await text('#counters'), /connects 2 · resumes 1/);
    t.same(pageErrors, [], 'no errors in the page');

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = `${ARTIFACTS}console.png`;
    await page.screenshot({ path: shot, fullPage: true });
    t.comment(`screenshot: ${shot}`);
  });
}
