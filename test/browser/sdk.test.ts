/**
 * The SDK package in headless Chromium against the real daemon: 200 events exactly
 * once in order; the network taken away for 10 s while events flow (DevTools offline
 * emulation plus a cut TCP relay, see link-cutter.ts) and back: every seq once and a
 * rejoin within 1 s; a throwing listener reported on the console; a forbidden join
 * rejected with its code (token sent as the bearer subprotocol); go-away then a
 * restart on a new epoch: not recovered, and the snapshot. Needs `npm run build`.
 */
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import type { Page } from 'playwright-core';
import { signJwt } from '../../daemon/auth/jwt.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { browserSkipReason, launchChromium } from './chromium.js';
import { LinkCutter } from './link-cutter.js';
import { bundlePage, servePage, type PageServer } from './page-server.js';
import type { Recording } from './sdk-page.js';

const SECRET = 'browser-test-secret-0123456789abcdef';
const skip = browserSkipReason();
if (skip !== null) {
  t.plan(0, skip);
} else {
  const run = promisify(execFile);
  let server: PageServer;
  let browser: Awaited<ReturnType<typeof launchChromium>>;

  t.before(async () => {
    await run(process.execPath, [fileURLToPath(new URL('../../protocol/client/build.mjs', import.meta.url))]);
    const script = await bundlePage(fileURLToPath(new URL('./sdk-page.ts', import.meta.url)));
    server = await servePage('<!doctype html><html><body><script type="module" src="/page.js"></script></body></html>', script);
    browser = await launchChromium();
  });
  t.teardown(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A fresh page with the harness loaded; console messages collected. */
  async function openPage(): Promise<{ page: Page; console: { type: string; text: string }[] }> {
    const page = await browser.context.newPage();
    const messages: { type: string; text: string }[] = [];
    page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
    return { page, console: messages };
  }

  const recording = (page: Page): Promise<Recording> => page.evaluate(() => window.harness.recording());

  async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function publish(daemon: DaemonProcess, session: string, n: number, extra: Record<string, unknown> = {}): Promise<{ seq: number; epoch: string }> {
    const res = await daemon.publish({ session, type: 'e', data: { n }, ...extra });
    if (res.status !== 200) throw new Error(`publish: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { seq: number; epoch: string };
  }

  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  t.test('with one daemon', async (t) => {
    const daemon = await startDaemon({ SHARDCAST_JWT_SECRET: SECRET });
    t.teardown(() => daemon.stop());

    t.test('200 events exactly once, in order; a throwing listener is reported on the console and delivery goes on', async (t) => {
      const { page, console } = await openPage();
      t.teardown(() => page.close());
      await page.evaluate((url) => window.harness.connect({ url, user: 'amy' }), daemon.ws);
      t.same(await page.evaluate(() => window.harness.join('br:200', { throwOnSeq: 50 })), { ok: true, rec: false });
      const events = range(1, 200).map((n) => ({ session: 'br:200', type: 'e', data: { n } }));
      for (let i = 0; i < 200; i += 50) {
        const res = await daemon.publish({ events: events.slice(i, i + 50) });
        t.equal(res.status, 200);
      }
      const seqs = await waitFor('200 events', async () => {
        const got = (await recording(page)).events['br:200'].map((e) => e.seq);
        return got.length >= 200 ? got : undefined;
      });
      t.same(seqs, range(1, 200), 'every seq once, in order');
      const reported = await waitFor('the console error', async () => console.find((m) => m.type === 'error' && /shardcast: a listener threw/.test(m.text)));
      t.match(reported.text, /application bug at seq 50/, 'the exception itself is on the console');
    });

    t.test('a forbidden join rejects with 103; the token went as the bearer subprotocol', async (t) => {
      const { page } = await openPage();
      t.teardown(() => page.close());
      const token = signJwt({ sub: 'tess', sessions: ['br:*'], exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: SECRET });
      const hello = await page.evaluate(([url, token]) => window.harness.connect({ url, token }), [daemon.ws, token] as const);
      t.equal(hello.user, 'tess', 'Chromium sent the token as a subprotocol and the server accepted it');
      t.same(await page.evaluate(() => window.harness.join('br:allowed')), { ok: true, rec: false });
      t.match(await page.evaluate(() => window.harness.join('other:1')), { ok: false, code: 103, message: /Forbidden/ });
    });

    t.test('network offline for 10 s while events flow: every seq once, rejoined within 1 s of its return', async (t) => {
      const cutter = await new LinkCutter(daemon.port).start();
      t.teardown(() => cutter.close());
      const { page } = await openPage();
      t.teardown(() => page.close());
      await page.evaluate((url) => window.harness.connect({ url, user: 'olga' }), `ws://127.0.0.1:${cutter.port}/v1/ws`);
      t.same(await page.evaluate(() => window.harness.join('br:offline')), { ok: true, rec: false });

      let published = 0;
      let publishing = true;
      const publisher = (async () => {
        while (publishing) {
          published = (await publish(daemon, 'br:offline', published + 1)).seq;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await waitFor('live events', async () => (await recording(page)).events['br:offline'].length >= 10);

      const cdp = await browser.context.newCDPSession(page);
      const conditions = { latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
      await cdp.send('Network.emulateNetworkConditions', { offline: true, ...conditions });
      cutter.down();
      const offlineAt = Date.now();
      const seqAtOffline = published;
      await new Promise((r) => setTimeout(r, 10_000));
      cutter.up();
      const onlineAt = Date.now();
      const whileOffline = published - seqAtOffline;
      await cdp.send('Network.emulateNetworkConditions', { offline: false, ...conditions });

      const rejoin = await waitFor('the rejoin', async () => (await recording(page)).joins.find((j) => j.session === 'br:offline' && j.at >= onlineAt), 15_000);
      t.equal(rejoin.rec, true, 'resumed from its position');
      t.ok(rejoin.at - onlineAt <= 1000, `rejoined ${rejoin.at - onlineAt} ms after the network returned`);
      await new Promise((r) => setTimeout(r, 1000));
      publishing = false;
      await publisher;
      const seqs = await waitFor(`all ${published} events`, async () => {
        const got = (await recording(page)).events['br:offline'].map((e) => e.seq);
        return got.length >= published ? got : undefined;
      });
      t.same(seqs, range(1, published), `every seq once, in order (${published} events, ${whileOffline} of them published while offline)`);
      const attempts = (await recording(page)).states.filter((s) => s.state === 'connecting' && s.at > offlineAt && s.at < onlineAt).length;
      t.ok(attempts <= 2, `${attempts} connection attempt(s) while the browser was offline (it waits for 'online')`);
    });
  });

  t.test('go-away, then a restart on a new epoch: not recovered, and the snapshot', async (t) => {
    const first = await startDaemon();
    t.teardown(() => first.stop());
    const port = first.port;
    const { page } = await openPage();
    t.teardown(() => page.close());
    await page.evaluate((url) => window.harness.connect({ url, user: 'gwen' }), first.ws);
    t.same(await page.evaluate(() => window.harness.join('br:epoch')), { ok: true, rec: false });
    const before = await publish(first, 'br:epoch', 1, { snapshot: 'question' });
    await waitFor('the first event', async () => (await recording(page)).events['br:epoch'].length === 1);

    t.equal((await first.stop('SIGTERM')).code, 0, 'the daemon drained and exited');
    t.equal((await recording(page)).goaways, 1, 'the page got the go-away');
    const second = await startDaemon({ SHARDCAST_PORT: String(port) });
    t.teardown(() => second.stop());
    const after = await publish(second, 'br:epoch', 2, { snapshot: 'question' });
    t.not(after.epoch, before.epoch, 'the restarted daemon has a new epoch');

    const rejoin = await waitFor('the rejoin on the new daemon', async () => (await recording(page)).joins.find((j) => j.ep === after.epoch), 30_000);
    t.equal(rejoin.rec, false, 'not recovered: the old epoch is gone');
    const rec = await recording(page);
    const snapshot = rec.snapshots.find((s) => s.ep === after.epoch);
    t.ok(snapshot, 'a snapshot event for the new epoch');
    // The event published on the new daemon arrives in the snapshot, or live when the page rejoined before it.
    const sawQuestion = snapshot?.keys.includes('question') === true || rec.events['br:epoch'].some((e) => e.ep === after.epoch);
    t.ok(sawQuestion, 'the new epoch\'s state reached the page');
  });
}
