// The Kubernetes manifests promise lossless rollouts; these checks keep the
// numbers behind that promise honest. The YAML is read as text (no YAML parser
// among the dependencies) with patterns that match how the files are written.
// With kubectl installed, every overlay is also rendered by kustomize and the
// rendered output is checked, so a patch that breaks a promise fails too.
import t, { type Test as TapTest } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { SCHEMA, settingByEnv } from '../../daemon/config/schema.js';

type Obj = Record<string, any>;

/**
 * Several replicas need the shared engine: SHARDCAST_REPLICAS covers the HPA's
 * maximum (so the daemon refuses to run them standalone), and SHARDCAST_REDIS_URL
 * comes from the Secret, required (a missing key stops the pod, not the engine).
 */
function engineChecks(t: TapTest, name: string, objects: Obj[]): void {
  const config = objects.find((o) => o.kind === 'ConfigMap' && String(o.metadata.name).startsWith('shardcast-config'))!;
  const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
  const replicas = Number(config.data.SHARDCAST_REPLICAS);
  t.ok(replicas >= hpa.spec.maxReplicas, `${name}: SHARDCAST_REPLICAS ${replicas} ≥ the HPA's maxReplicas ${hpa.spec.maxReplicas}`);
  const gateway = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shardcast')!;
  const env: Obj[] = gateway.spec.template.spec.containers[0].env;
  const redis = env.find((e) => e.name === 'SHARDCAST_REDIS_URL');
  t.match(redis?.valueFrom?.secretKeyRef, { name: /^shardcast-secrets/, key: 'SHARDCAST_REDIS_URL' }, `${name}: SHARDCAST_REDIS_URL from the Secret`);
  t.notOk(redis?.valueFrom?.secretKeyRef?.optional, `${name}: and required`);
  t.notOk('SHARDCAST_REDIS_URL' in config.data, `${name}: not in the ConfigMap (it may carry a password)`);
  const secret = objects.find((o) => o.kind === 'Secret');
  if (secret !== undefined) t.ok('SHARDCAST_REDIS_URL' in (secret.data ?? secret.stringData ?? {}), `${name}: the generated Secret has SHARDCAST_REDIS_URL`);
}

const k8s = fileURLToPath(new URL('../../k8s/', import.meta.url));
const kustomizations = ['base', 'overlays/dev', 'overlays/production'].map((d) => join(k8s, d));

/** Margin left after preStop, go-away spread and drain, for the final closes and exit. */
const MIN_MARGIN_S = 5;

function read(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Entries of a top-level list (`resources:`, `patches:` …) of a kustomization file. */
function listEntries(text: string, key: string): string[] {
  const block = new RegExp(`^${key}:\\n((?:[ \\t]+.*\\n|\\s*#.*\\n|\\s*\\n)*)`, 'm').exec(text);
  if (block === null) return [];
  return [...block[1]!.matchAll(/^\s*-\s*(?:path:\s*)?([^\s#]+)\s*$/gm)].map((m) => m[1]!);
}

function numberAfter(text: string, pattern: RegExp, what: string): number {
  const m = pattern.exec(text);
  if (m === null) throw new Error(`${what} not found`);
  return Number(m[1]);
}

/** The grace-budget inputs of one rendered (or base) set of manifests. */
function graceBudget(text: string) {
  return {
    grace: numberAfter(text, /terminationGracePeriodSeconds:\s*(\d+)/, 'terminationGracePeriodSeconds'),
    preStop: numberAfter(text, /preStop:\s*\n(?:\s*#.*\n)*\s*exec:\s*\n\s*command:\s*\[?\s*-?\s*"?sleep"?,?\s*-?\s*"?(\d+)"?/, 'preStop sleep'),
    drainMs: numberAfter(text, /SHARDCAST_DRAIN_TIMEOUT_MS[=:]\s*"?(\d+)"?/, 'SHARDCAST_DRAIN_TIMEOUT_MS'),
    spreadMs: numberAfter(text, /SHARDCAST_DRAIN_SPREAD_MS[=:]\s*"?(\d+)"?/, 'SHARDCAST_DRAIN_SPREAD_MS'),
  };
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

function render(dir: string): string {
  return execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
}

t.test('every kustomization lists files that exist, and every manifest is listed somewhere', async (t) => {
  const listed = new Set<string>();
  for (const dir of kustomizations) {
    const text = read(join(dir, 'kustomization.yaml'));
    const entries = [...listEntries(text, 'resources'), ...listEntries(text, 'patches'), ...listEntries(text, '\\s+envs')];
    t.ok(entries.length > 0, `${dir} lists something`);
    for (const entry of entries) {
      const path = resolve(dir, entry);
      t.ok(existsSync(path), `${entry} (from ${dir}) exists`);
      listed.add(path);
    }
  }
  for (const dir of kustomizations) {
    for (const file of readdirSync(dir)) {
      if (file === 'kustomization.yaml' || file.endsWith('.example.yaml')) continue;
      t.ok(listed.has(join(dir, file)), `${file} in ${dir} is used by its kustomization`);
    }
  }
});

t.test('base grace period covers preStop + go-away spread + drain + margin', async (t) => {
  const base = read(join(k8s, 'base/deployment.yaml')) + read(join(k8s, 'base/config.env'));
  const b = graceBudget(base);
  t.equal(b.preStop, 10);
  // The daemon exits within drainSpreadMs + drainTimeoutMs of SIGTERM (daemon/primary/primary.ts).
  const needed = b.preStop + b.spreadMs / 1000 + b.drainMs / 1000 + MIN_MARGIN_S;
  t.ok(b.grace >= needed, `terminationGracePeriodSeconds ${b.grace} ≥ ${b.preStop} + ${b.spreadMs / 1000} + ${b.drainMs / 1000} + ${MIN_MARGIN_S}`);
});

t.test('the ConfigMap leaves the drain settings at the daemon defaults, or the grace period is checked against what it sets', async (t) => {
  // A setting missing from config.env falls back to the schema default: the budget
  // must hold for whichever value the pod actually runs with.
  const env = read(join(k8s, 'base/config.env'));
  const d = read(join(k8s, 'base/deployment.yaml'));
  const grace = numberAfter(d, /terminationGracePeriodSeconds:\s*(\d+)/, 'terminationGracePeriodSeconds');
  const valueOf = (key: 'drainSpreadMs' | 'drainTimeoutMs') => {
    const m = new RegExp(`^${SCHEMA[key].env}=(\\d+)$`, 'm').exec(env);
    return m ? Number(m[1]) : (SCHEMA[key].defaultValue() as number);
  };
  const preStop = numberAfter(d, /command:\s*\["sleep",\s*"(\d+)"\]/, 'preStop sleep');
  const needed = preStop + valueOf('drainSpreadMs') / 1000 + valueOf('drainTimeoutMs') / 1000 + MIN_MARGIN_S;
  t.ok(grace >= needed, `grace ${grace} s ≥ ${needed} s`);
  t.equal(SCHEMA.drainSpreadMs.defaultValue(), 5000, 'default spread as documented in k8s/README.md');
  t.equal(SCHEMA.drainTimeoutMs.defaultValue(), 30_000, 'default drain timeout as documented in k8s/README.md');
});

t.test('rollout and probe settings', async (t) => {
  const d = read(join(k8s, 'base/deployment.yaml'));
  t.match(d, /maxSurge:\s*1\b/);
  t.match(d, /maxUnavailable:\s*0\b/);
  t.match(d, /minReadySeconds:\s*[1-9]\d*/);
  t.match(d, /readinessProbe:\s*\n\s*httpGet:\s*\n\s*path:\s*\/readyz/);
  t.match(d, /livenessProbe:\s*\n\s*httpGet:\s*\n\s*path:\s*\/healthz/);
  // The listener closes at SIGTERM, so liveness fails during a drain: it must not
  // be able to restart the pod before the grace period ends.
  const liveness = /livenessProbe:\s*\n((?:\s{12,}.*\n)+)/.exec(d)?.[1] ?? '';
  const period = numberAfter(liveness, /periodSeconds:\s*(\d+)/, 'liveness periodSeconds');
  const failures = numberAfter(liveness, /failureThreshold:\s*(\d+)/, 'liveness failureThreshold');
  const grace = numberAfter(d, /terminationGracePeriodSeconds:\s*(\d+)/, 'terminationGracePeriodSeconds');
  t.ok(period * failures >= grace, `liveness gives up after ${period * failures} s ≥ grace ${grace} s`);
  t.match(d, /runAsNonRoot:\s*true/);
  t.match(d, /readOnlyRootFilesystem:\s*true/);
  t.match(d, /drop:\s*\["ALL"\]/);
  t.notMatch(d, /^\s+replicas:/m, 'the HPA owns the replica count');
  t.match(d, /name: SHARDCAST_SHARDS\s*\n\s*valueFrom:\s*\n\s*resourceFieldRef:\s*\n(?:.*\n)*?\s*resource: limits\.cpu/, 'shards follow the CPU limit');
});

t.test('every SHARDCAST_* variable the manifests set is a setting the daemon knows', async (t) => {
  const files = kustomizations.flatMap((dir) => readdirSync(dir).map((f) => join(dir, f)));
  const names = new Set<string>();
  for (const file of files) for (const m of read(file).matchAll(/\b(SHARDCAST_[A-Z0-9_]+)\b/g)) names.add(m[1]!);
  t.ok(names.size > 5);
  for (const name of names) t.ok(settingByEnv(name), `${name} is in daemon/config/schema.ts`);
});

t.test('the base Secret is an example only: no kustomization ships it', async (t) => {
  const example = read(join(k8s, 'base/secret.example.yaml'));
  t.match(example, /REPLACE_ME/);
  for (const dir of kustomizations) {
    const text = read(join(dir, 'kustomization.yaml'));
    for (const entry of [...listEntries(text, 'resources'), ...listEntries(text, 'patches')]) {
      t.notMatch(entry, /secret\.example/, `${dir} does not list ${entry}`);
    }
  }
});

t.test('rendered overlays keep the promises', { skip: kubectl ? false : 'kubectl not installed' }, async (t) => {
  for (const dir of kustomizations) {
    const out = render(dir);
    const name = dir.slice(k8s.length);
    const b = graceBudget(out);
    const needed = b.preStop + b.spreadMs / 1000 + b.drainMs / 1000 + MIN_MARGIN_S;
    t.ok(b.grace >= needed, `${name}: grace ${b.grace} ≥ ${needed}`);
    const objects = parseAllDocuments(out).map((d) => d.toJS() as Obj);
    const gateway = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shardcast')!;
    const resources = gateway.spec.template.spec.containers[0].resources;
    t.match(String(resources.limits.cpu), /^\d+$/, `${name}: whole-CPU limit`);
    t.equal(String(resources.requests.cpu), String(resources.limits.cpu), `${name}: CPU request = limit (shards are busy threads)`);
    engineChecks(t, name, objects);
    t.match(out, /name: shardcast-secrets/, `${name}: the pods read shardcast-secrets`);
    if (name.includes('production')) {
      t.notMatch(out, /kind: Secret/, `${name}: ships no Secret (created out of band)`);
      t.notMatch(out, /REPLACE_ME|dev-only/, `${name}: no placeholder credentials`);
      t.notMatch(out, /SHARDCAST_DEV_MODE:\s*"true"/, `${name}: devMode off`);
    }
  }
});

const pyyaml = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;

t.test('YAML files parse', { skip: pyyaml ? false : 'python3 with PyYAML not available' }, async (t) => {
  const files = [
    ...kustomizations.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => join(dir, f))),
    join(dirname(k8s.replace(/\/$/, '')), 'deploy/compose.yaml'),
  ];
  const r = spawnSync('python3', ['-c', 'import sys, yaml\nfor f in sys.argv[1:]:\n    list(yaml.safe_load_all(open(f)))', ...files], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('the admin port stays off the client Service; a NetworkPolicy guards it; a ServiceMonitor scrapes /metrics there', async (t) => {
  const parseFile = (f: string) => parseAllDocuments(read(join(k8s, f))).map((d) => d.toJS() as Obj);
  const [deployment] = parseFile('base/deployment.yaml');
  const ports: Obj[] = deployment!.spec.template.spec.containers[0].ports;
  t.match(ports, [{ name: 'http', containerPort: 8080 }, { name: 'admin', containerPort: 9090 }], 'the pod declares both ports');

  const [client] = parseFile('base/service.yaml');
  t.same(client!.spec.ports.map((p: Obj) => p.targetPort), ['http'], 'the client-facing Service exposes the client port only');
  t.notMatch(read(join(k8s, 'base/service.yaml')), /9090|admin/, 'and never mentions the admin port');

  const [admin] = parseFile('base/service-admin.yaml');
  t.equal(admin!.spec.clusterIP, 'None', 'the admin Service is headless');
  t.same(admin!.spec.ports.map((p: Obj) => p.targetPort), ['admin']);

  const [policy] = parseFile('base/networkpolicy.yaml');
  t.same(policy!.spec.policyTypes, ['Ingress']);
  const rules: Obj[] = policy!.spec.ingress;
  const adminRules = rules.filter((r) => (r.ports as Obj[]).some((p) => p.port === 'admin' || p.port === 9090));
  t.equal(adminRules.length, 1, 'one rule admits the admin port');
  t.ok(Array.isArray(adminRules[0]!.from) && adminRules[0]!.from.length > 0, 'and only from named peers');
  t.ok(rules.filter((r) => r.from === undefined).every((r) => (r.ports as Obj[]).every((p) => p.port === 'http')), 'the open rule covers the client port only');

  const [monitor] = parseFile('overlays/production/servicemonitor.yaml');
  t.match(monitor, { apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', spec: { selector: { matchLabels: admin!.metadata.labels }, endpoints: [{ port: 'admin', path: '/metrics' }] } });
  t.ok(listEntries(read(join(k8s, 'overlays/production/kustomization.yaml')), 'resources').includes('servicemonitor.yaml'), 'production ships it');
});

t.test('the pods can start outside dev mode: the Secret holds every credential the daemon requires, and the admin listener is reachable by Prometheus', async (t) => {
  const [secret] = parseAllDocuments(read(join(k8s, 'base/secret.example.yaml'))).map((d) => d.toJS() as { stringData: Record<string, string> });
  for (const key of ['apiKey', 'jwtSecret', 'adminToken', 'redisUrl'] as const) {
    t.ok(Object.hasOwn(secret.stringData, SCHEMA[key].env), `secret.example.yaml has ${SCHEMA[key].env}`);
  }
  const env = read(join(k8s, 'base/config.env'));
  t.match(env, /^SHARDCAST_ADMIN_HOST=0\.0\.0\.0$/m, 'the admin listener binds the pod address (the NetworkPolicy guards it)');
  const dev = read(join(k8s, 'overlays/dev/kustomization.yaml'));
  t.match(dev, /SHARDCAST_ADMIN_TOKEN=/, 'the dev overlay generates an admin token too');
  t.match(read(join(k8s, 'overlays/production/servicemonitor.yaml')), /key: SHARDCAST_ADMIN_TOKEN/, 'the ServiceMonitor scrapes with the admin token');
});
