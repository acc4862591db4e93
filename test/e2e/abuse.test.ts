// A short abuse run in every `npm test` (the long one is bench/abuse/run.ts, see
// docs/threat-model.md): hostile frames and requests of every shape the hardening
// issue lists, against a live daemon, while a canary receives a steady stream.
// What users rely on is asserted; how fast is measured by the long run, not here.
import t from 'tap';
import { runAbuse } from '../../bench/abuse/abuse.js';
import { startDaemon } from '../support/daemon-process.js';

t.test('under abuse the daemon stays up and the canary gets every seq, in order, once', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '2' });
  t.teardown(() => daemon.stop());
  const report = await runAbuse({ ws: daemon.ws, http: daemon.http, pid: daemon.proc.pid, durationMs: 8000, attackers: 4, seed: 7 });
  t.comment(JSON.stringify({ frames: report.hostileFrames, requests: report.hostileRequests, shapes: report.shapes, canary: report.canary, health: report.health, rss: report.rss }));
  // Volume floors, not targets: they prove the attack ran; a loaded machine (CI runs two
  // files at once) sends about half of an idle one's ~1,500 frames and 160 canary events.
  t.ok(report.hostileFrames + report.hostileRequests > 300, `${report.hostileFrames} hostile frames and ${report.hostileRequests} requests were sent`);
  t.equal(Object.keys(report.shapes).length, 12, 'every attack shape ran');
  t.equal(daemon.proc.exitCode, null, 'the daemon is still running');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
  t.ok(report.canary.published > 20, `the canary stream ran (${report.canary.published} events)`);
  t.equal(report.canary.missing, 0, 'the canary missed no event');
  t.equal(report.canary.duplicates, 0, 'and got none twice');
  t.ok(report.canary.inOrder, 'in order');
  t.equal(report.health.failures, 0, '/healthz answered every probe');
  const { code } = await daemon.stop();
  t.equal(code, 0, 'and it still drains cleanly');
});
