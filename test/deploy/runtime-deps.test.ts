// A production install (`npm ci --omit=dev`, the image in deploy/Dockerfile) has
// only `dependencies`: every package the daemon, the admin CLI or the protocol
// code loads at run time must be there, not in devDependencies (shardcast-admin
// listen once crashed in the image because `ws` was a dev dependency, and Node 20
// has no global WebSocket).
import t from 'tap';
import { builtinModules } from 'node:module';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Package names a file loads at run time (type-only imports are erased). */
function runtimeImports(text: string): string[] {
  const names: string[] = [];
  const specifiers = [
    ...[...text.matchAll(/^\s*import\s+(?!type\s)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
    ...[...text.matchAll(/^\s*export\s+(?!type\s)[^'";]*?\s+from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
    ...[...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!),
  ];
  for (const spec of specifiers) {
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
    const parts = spec.split('/');
    names.push(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
  }
  return names;
}

t.test('the import scanner sees static, dynamic and re-exported packages and skips type-only ones', async (t) => {
  t.same(runtimeImports(`import a from 'alpha';\nimport type { B } from 'beta';\nconst { W } = await import('ws');\nexport { x } from '@scope/pkg/sub';\nimport './local.js';\nimport { x } from 'node:fs';`), ['alpha', '@scope/pkg', 'ws']);
});

/** What `files` load that `deps` do not provide, one line each. */
function outside(files: string[], deps: Set<string>, devDeps: Record<string, string> | undefined): string[] {
  const missing: string[] = [];
  for (const file of files) {
    for (const name of runtimeImports(readFileSync(file, 'utf8'))) {
      if (!deps.has(name)) missing.push(`${relative(root, file)} loads ${name}${devDeps?.[name] ? ' (a devDependency: absent from production installs)' : ''}`);
    }
  }
  return missing;
}

// The SDK (protocol/client) is its own package with its own dependencies; its
// session console is a development tool (npm run console), not shipped code.
const sdk = join(root, 'protocol', 'client');
const inSdk = (file: string) => file.startsWith(sdk + '/');

t.test('every package the daemon, shardcast-admin and the protocol code load is a production dependency', async (t) => {
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const files = ['daemon', 'admin-cli', 'protocol'].flatMap((dir) => sources(join(root, dir))).filter((f) => !inSdk(f));
  t.ok(files.length > 50, `${files.length} source files scanned`);
  t.same(outside(files, deps, pkg.devDependencies), [], 'nothing is loaded from outside `dependencies`');
});

t.test('the SDK package loads only its own dependencies', async (t) => {
  const own = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const files = sources(sdk).filter((f) => !f.startsWith(join(sdk, 'console') + '/'));
  t.ok(files.length > 5, `${files.length} SDK files scanned`);
  t.same(outside(files, new Set(Object.keys(own.dependencies ?? {})), own.devDependencies), [], 'a published @shardcast/client installs everything it loads');
});
