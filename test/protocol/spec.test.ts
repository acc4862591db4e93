// SPEC.md is the contract for other-language clients: it must document every frame type
// and the default limits the code uses.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { DEFAULT_LIMITS, SUBPROTOCOL, WS_PATH } from '../../protocol/frames.js';
import { loadFrameVectors } from '../../protocol/vectors/load.js';

const spec = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');

t.test('every frame type has a section with a field table', async (tt) => {
  for (const direction of ['client', 'server'] as const) {
    const types = new Set(loadFrameVectors(direction).map((v) => (v.value as { t: string }).t));
    for (const type of types) {
      const at = spec.indexOf(`### \`${type}\``, spec.indexOf(direction === 'client' ? '## 6. Client frames' : '## 7. Server frames'));
      tt.ok(at > 0, `${direction} frame ${type} has a section`);
      tt.ok(spec.slice(at, at + 400).includes('| `t` | str | yes |'), `${type} section has a field table`);
    }
  }
});

t.test('the spec states the transport constants and default limits', async (tt) => {
  tt.ok(spec.includes(`\`${SUBPROTOCOL}\``));
  tt.ok(spec.includes(`\`${WS_PATH}\``));
  tt.equal(DEFAULT_LIMITS.maxFrameBytes, 16384);
  tt.ok(spec.includes('16 KiB (16384 bytes)'));
  tt.ok(spec.includes(`1–${DEFAULT_LIMITS.maxSessionLength} characters from \`[A-Za-z0-9_.:@-]\``));
  tt.ok(spec.includes(`1–${DEFAULT_LIMITS.maxTypeLength} bytes of UTF-8 | no | error 101`));
  tt.ok(spec.includes(`| Command id \`cid\` | 1–${DEFAULT_LIMITS.maxCidLength} bytes`));
  tt.ok(spec.includes(`| Depth of \`data\` | ${DEFAULT_LIMITS.maxDepth} levels |`));
  tt.ok(spec.includes(`| Sessions joined per connection | ${DEFAULT_LIMITS.maxSessionsPerConnection} |`));
});

t.test('the worked example quotes the vectors byte for byte', async (tt) => {
  const vectors = [...loadFrameVectors('client'), ...loadFrameVectors('server')];
  for (const name of ['join-resume', 'joined-recovered', 'ev', 'ack-cmd']) {
    const v = vectors.find((x) => x.name === name);
    tt.ok(v && spec.includes(`hex: \`${v.hex}\``), `${name} hex appears in SPEC.md`);
  }
});
