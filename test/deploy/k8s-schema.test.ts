// The Kubernetes manifests as the API server would see them: every overlay
// rendered by kustomize (kubectl), parsed, and each object checked
//  - against the Kubernetes OpenAPI schemas, through the `kubernetes-models` dev
//    dependency (and `@kubernetes-models/prometheus-operator` for the
//    ServiceMonitor): it carries them as validators and needs no cluster or network;
//  - always, against the rules the API server enforces that bite in practice
//    (names, label values, port names and numbers, required fields, env entries),
//    and against the references between objects that no schema checks: Service
//    target ports, probe ports, selectors, the ServiceMonitor's Service and port,
//    the HPA's target.
// Without kubectl, the base's own files are checked (overlays need kustomize).
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

type Obj = Record<string, any>;

const k8s = fileURLToPath(new URL('../../k8s/', import.meta.url));
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

function parse(text: string, where: string): Obj[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Obj | null;
    return value === null ? [] : [value];
  });
}

/** Every object of a kustomization, rendered; without kubectl, the base's resource files. */
function objectsOf(dir: string): Obj[] {
  if (kubectl) return parse(execFileSync('kubectl', ['kustomize', join(k8s, dir)], { encoding: 'utf8', timeout: 60_000 }), dir);
  const files = ['deployment.yaml', 'service.yaml', 'service-admin.yaml', 'networkpolicy.yaml', 'pdb.yaml', 'hpa.yaml'];
  return files.flatMap((f) => parse(readFileSync(join(k8s, 'base', f), 'utf8'), f));
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const PORT_NAME = /^(?=.{1,15}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/;
const KNOWN: Record<string, string[]> = {
  v1: ['Namespace', 'Service', 'ConfigMap', 'Secret'],
  'apps/v1': ['Deployment'],
  'policy/v1': ['PodDisruptionBudget'],
  'autoscaling/v2': ['HorizontalPodAutoscaler'],
  'networking.k8s.io/v1': ['NetworkPolicy'],
  'monitoring.coreos.com/v1': ['ServiceMonitor'],
};

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Problems the API server (or a broken reference) would raise for `objects`. */
function problemsOf(objects: Obj[]): string[] {
  const out: string[] = [];
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const services = objects.filter((o) => o.kind === 'Service');
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata?.name}`;
    if (!KNOWN[o.apiVersion]?.includes(o.kind)) out.push(`${id}: unexpected apiVersion/kind ${o.apiVersion} ${o.kind}`);
    const name = o.metadata?.name;
    if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) out.push(`${id}: metadata.name is not a DNS subdomain`);
    if (['Service', 'Namespace'].includes(o.kind) && (name.length > 63 || !DNS_LABEL.test(name))) out.push(`${id}: name must be a DNS label`);
    for (const [k, v] of Object.entries({ ...o.metadata?.labels, ...o.spec?.template?.metadata?.labels })) {
      if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) out.push(`${id}: label ${k}=${String(v)} is not a valid label value (a string of ≤ 63)`);
    }
  }
  for (const d of deployments) {
    const id = `Deployment/${d.metadata.name}`;
    const pod = d.spec?.template;
    if (!matches(d.spec?.selector?.matchLabels, pod?.metadata?.labels)) out.push(`${id}: selector does not match its pod template's labels`);
    const containers: Obj[] = pod?.spec?.containers ?? [];
    if (containers.length === 0) out.push(`${id}: no containers`);
    for (const c of containers) {
      const cid = `${id} container ${c.name}`;
      if (typeof c.name !== 'string' || !DNS_LABEL.test(c.name)) out.push(`${cid}: bad name`);
      if (typeof c.image !== 'string' || c.image === '') out.push(`${cid}: no image`);
      const ports: Obj[] = c.ports ?? [];
      const names = new Set<string>();
      for (const p of ports) {
        if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) out.push(`${cid}: containerPort ${p.containerPort}`);
        if (p.name !== undefined && !PORT_NAME.test(p.name)) out.push(`${cid}: port name ${p.name} (≤ 15 lowercase alphanumerics and '-')`);
        if (names.has(p.name)) out.push(`${cid}: port name ${p.name} twice`);
        names.add(p.name);
      }
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        const port = c[probe]?.httpGet?.port;
        if (c[probe] !== undefined && (typeof port === 'string' ? !names.has(port) : !ports.some((p) => p.containerPort === port))) out.push(`${cid}: ${probe} port ${port} is not a container port`);
      }
      for (const e of c.env ?? []) {
        if (typeof e.name !== 'string' || e.name === '') out.push(`${cid}: env entry without a name`);
        if ((e.value !== undefined) === (e.valueFrom !== undefined)) out.push(`${cid}: env ${e.name} needs exactly one of value and valueFrom`);
        if (e.value !== undefined && typeof e.value !== 'string') out.push(`${cid}: env ${e.name} value must be a string`);
      }
      for (const kind of ['requests', 'limits']) {
        for (const [r, q] of Object.entries(c.resources?.[kind] ?? {})) if (!QUANTITY.test(String(q))) out.push(`${cid}: ${kind}.${r} ${String(q)} is not a quantity`);
      }
    }
    const grace = pod?.spec?.terminationGracePeriodSeconds;
    if (grace !== undefined && !Number.isInteger(grace)) out.push(`${id}: terminationGracePeriodSeconds must be an integer`);
  }
  const podsOf = (selector: Record<string, string> | undefined) => deployments.filter((d) => matches(selector, d.spec.template.metadata.labels));
  const portNamesOf = (ds: Obj[]) => new Set(ds.flatMap((d) => (d.spec.template.spec.containers as Obj[]).flatMap((c) => (c.ports ?? []).map((p: Obj) => p.name))));
  for (const s of services) {
    const id = `Service/${s.metadata.name}`;
    const backends = podsOf(s.spec?.selector);
    if (backends.length === 0) out.push(`${id}: selects no Deployment's pods`);
    for (const p of s.spec?.ports ?? []) {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) out.push(`${id}: port ${p.port}`);
      if (p.name !== undefined && !PORT_NAME.test(p.name)) out.push(`${id}: port name ${p.name}`);
      if (typeof p.targetPort === 'string' && !portNamesOf(backends).has(p.targetPort)) out.push(`${id}: targetPort ${p.targetPort} is no container port of its pods`);
    }
  }
  for (const np of objects.filter((o) => o.kind === 'NetworkPolicy')) {
    const id = `NetworkPolicy/${np.metadata.name}`;
    const pods = podsOf(np.spec?.podSelector?.matchLabels);
    if (pods.length === 0) out.push(`${id}: selects no Deployment's pods`);
    for (const rule of np.spec?.ingress ?? []) {
      for (const p of rule.ports ?? []) if (typeof p.port === 'string' && !portNamesOf(pods).has(p.port)) out.push(`${id}: port ${p.port} is no container port of its pods`);
    }
  }
  for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const id = `ServiceMonitor/${sm.metadata.name}`;
    const selected = services.filter((s) => matches(sm.spec?.selector?.matchLabels, s.metadata.labels));
    if (selected.length !== 1) out.push(`${id}: selects ${selected.length} Services (${selected.map((s) => s.metadata.name).join(', ')}), want exactly one`);
    for (const e of sm.spec?.endpoints ?? []) {
      if (!selected.every((s) => (s.spec.ports as Obj[]).some((p) => p.name === e.port))) out.push(`${id}: endpoint port ${e.port} is not a port of the selected Service`);
    }
  }
  for (const hpa of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const id = `HorizontalPodAutoscaler/${hpa.metadata.name}`;
    const target = hpa.spec?.scaleTargetRef;
    if (!deployments.some((d) => target?.kind === 'Deployment' && d.metadata.name === target.name)) out.push(`${id}: scaleTargetRef ${target?.kind}/${target?.name} is not in the manifests`);
    if (!(hpa.spec.minReplicas >= 1 && hpa.spec.minReplicas <= hpa.spec.maxReplicas)) out.push(`${id}: minReplicas ${hpa.spec.minReplicas} / maxReplicas ${hpa.spec.maxReplicas}`);
  }
  for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
    if (podsOf(pdb.spec?.selector?.matchLabels).length === 0) out.push(`PodDisruptionBudget/${pdb.metadata.name}: selects no Deployment's pods`);
  }
  return out;
}

/** The kubernetes-models validator of an object, when that package is installed. */
async function schemaValidator(): Promise<((o: Obj) => Promise<void>) | undefined> {
  const load = async (spec: string): Promise<Obj | undefined> => {
    try {
      return (await import(spec)) as Obj;
    } catch {
      return undefined;
    }
  };
  if ((await load('kubernetes-models/v1/Service')) === undefined) return undefined;
  return async (o: Obj): Promise<void> => {
    const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
    const spec = group === 'monitoring.coreos.com' ? `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}` : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${o.kind}`;
    const mod = await load(spec);
    if (mod === undefined) throw new Error(`no model for ${o.apiVersion} ${o.kind} (${spec})`);
    const Model = mod[o.kind] as new (data: Obj) => { validate(): void };
    new Model(o).validate();
  };
}

const dirs = kubectl ? ['base', 'overlays/dev', 'overlays/production'] : ['base'];

t.test('every object passes the API server rules and its references resolve', async (t) => {
  if (!kubectl) t.comment('kubectl not installed: checking the base files only');
  for (const dir of dirs) {
    const objects = objectsOf(dir);
    t.ok(objects.length >= 6, `${dir}: ${objects.length} objects`);
    t.same(problemsOf(objects), [], `${dir}: no problems`);
  }
});

t.test('the checks catch what they are for', async (t) => {
  const objects = objectsOf('base');
  const broken = structuredClone(objects);
  const svc = broken.find((o) => o.kind === 'Service' && o.metadata.name === 'shardcast')!;
  svc.spec.ports[0].targetPort = 'htpp';
  const dep = broken.find((o) => o.kind === 'Deployment')!;
  dep.spec.template.spec.containers[0].ports[1].name = 'administration-port';
  dep.spec.template.spec.containers[0].env.push({ name: 'X', value: 1 });
  const found = problemsOf(broken).join('\n');
  t.match(found, /targetPort htpp/);
  t.match(found, /port name administration-port/);
  t.match(found, /env X value must be a string/);
  t.match(found, /NetworkPolicy\/shardcast: port admin is no container port/);
});

const validate = await schemaValidator();

t.test('objects validate against the Kubernetes OpenAPI schemas', async (t) => {
  if (validate === undefined) {
    t.fail('kubernetes-models (a dev dependency: the Kubernetes OpenAPI schemas as validators, offline) is not installed: run npm ci');
    return;
  }
  for (const dir of dirs) {
    for (const o of objectsOf(dir)) {
      try {
        await validate(o);
        t.pass(`${dir}: ${o.kind}/${o.metadata.name}`);
      } catch (err) {
        t.fail(`${dir}: ${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
      }
    }
  }
});

t.test('the schema check catches what the API server would refuse', async (t) => {
  if (validate === undefined) return;
  const objects = objectsOf('base');
  const dep = structuredClone(objects.find((o) => o.kind === 'Deployment')!);
  dep.spec.replicas = 'two';
  await t.rejects(validate(dep), /replicas/, 'a Deployment with replicas "two"');
  const svc = structuredClone(objects.find((o) => o.kind === 'Service')!);
  svc.spec.ports[0].port = 'http';
  await t.rejects(validate(svc), /port/, 'a Service port that is not a number');
  const monitor = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: 'm' },
    spec: { selector: {}, endpoints: [{ port: 'admin', interval: 30 }] },
  };
  await t.rejects(validate(monitor), /interval/, 'a ServiceMonitor interval that is not a duration string');
});
