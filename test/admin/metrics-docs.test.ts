/**
 * The metrics' documentation and dashboard stay true to the code: docs/metrics.md
 * lists every metric the daemon registers (and no other shardcast_ metric), and the
 * Grafana dashboard queries only metrics that exist.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InstanceMetrics } from '../../daemon/admin/metrics.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const registered = new Set((new InstanceMetrics().registry.getMetricsAsArray()).map((m) => m.name).filter((n) => n.startsWith('shardcast_')));

t.test('docs/metrics.md lists exactly the registered shardcast_ metrics', async (t) => {
  const doc = readFileSync(`${root}docs/metrics.md`, 'utf8');
  const listed = new Set([...doc.matchAll(/^\| `(shardcast_[a-z0-9_]+)`/gm)].map((m) => m[1]));
  t.same([...listed].sort(), [...registered].sort());
});

t.test('the Grafana dashboard queries only registered metrics', async (t) => {
  const dashboard = JSON.parse(readFileSync(`${root}deploy/grafana/dashboards/shardcast.json`, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const used = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const m of target.expr.matchAll(/shardcast_[a-z0-9_]+/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
    }
  }
  t.ok(used.size >= 15, `${used.size} metrics used`);
  t.same([...used].filter((n) => !registered.has(n)), [], 'no unknown metric');
});
