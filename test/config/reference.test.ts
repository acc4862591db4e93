import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  REFERENCE_END,
  REFERENCE_START,
  extractConfigReference,
  renderConfigReference,
  replaceConfigReference,
  writeConfigReference,
} from '../../daemon/config/reference.js';
import { SCHEMA, SETTING_KEYS } from '../../daemon/config/schema.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

t.test('the reference has one row per setting', async (t) => {
  const reference = renderConfigReference();
  const rows = reference.split('\n').filter((line) => line.startsWith('| `'));
  t.equal(rows.length, SETTING_KEYS.length);
  for (const [i, key] of SETTING_KEYS.entries()) {
    const s = SCHEMA[key];
    t.ok(rows[i]!.startsWith(`| \`${key}\` | \`${s.env}\` |`), key);
    t.ok(rows[i]!.includes(s.doc.replace(/\|/g, '\\|')), `${key} doc`);
    t.equal(rows[i]!.split(/(?<!\\)\|/).length, 7, `${key}: five cells (pipes escaped)`);
  }
  t.match(reference, /\| `idleTimeoutS` \| `SHARDCAST_IDLE_TIMEOUT_S` \| integer: 0 \(off\) or 8–960/);
  t.match(reference, /\| `logLevel` .* fatal \\\| error/);
});

t.test('write replaces only the marked section', async (t) => {
  const dir = t.testdir({
    'README.md': `# Title\n\nintro\n\n${REFERENCE_START}\nold stale table\n${REFERENCE_END}\n\n## After\n`,
    'NOMARKERS.md': '# Nothing here\n',
  });
  const path = join(dir, 'README.md');
  writeConfigReference(path);
  const written = readFileSync(path, 'utf8');
  t.ok(written.startsWith('# Title\n\nintro\n\n' + REFERENCE_START + '\n'));
  t.ok(written.endsWith(REFERENCE_END + '\n\n## After\n'));
  t.notMatch(written, /old stale table/);
  t.equal(extractConfigReference(written), renderConfigReference());
  writeConfigReference(path);
  t.equal(readFileSync(path, 'utf8'), written, 'idempotent');

  t.throws(() => writeConfigReference(join(dir, 'NOMARKERS.md')), { code: 'CONFIG_REFERENCE_MARKERS' });
  t.throws(() => replaceConfigReference(`${REFERENCE_END}\n${REFERENCE_START}\n`), { code: 'CONFIG_REFERENCE_MARKERS' }, 'markers out of order');
  t.equal(extractConfigReference('no markers'), undefined);
});

t.test('README.md configuration reference matches the schema', async (t) => {
  const fix = 'run `npm run build && node dist/daemon/config/reference.js --write README.md`';
  if (!existsSync(README)) {
    t.fail(`README.md not found at ${README}; create it with a "${REFERENCE_START}" … "${REFERENCE_END}" section, then ${fix}`);
    return;
  }
  const current = extractConfigReference(readFileSync(README, 'utf8'));
  if (current === undefined) {
    t.fail(`README.md has no "${REFERENCE_START}" … "${REFERENCE_END}" section; add both markers where the configuration reference belongs, then ${fix}`);
    return;
  }
  t.equal(current, renderConfigReference(), `README.md's configuration reference is out of date with daemon/config/schema.ts; ${fix}`);
});
