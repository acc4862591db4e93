// SPEC.md is the contract for other-language clients: it must document every frame type
// and the default limits the code uses.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { DEFAULT_LIMITS, SUBPROTOCOL, WS_PATH } from '../../protocol/frames.js';
import { MAX_CLOSE_REASON_BYTES } from '../../protocol/codes.js';
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
  tt.ok(spec.includes(`included; §16) | ${DEFAULT_LIMITS.maxFrameValues.toLocaleString('en-US')} | yes`), 'values per client frame');
  tt.ok(spec.includes(`more than **${DEFAULT_LIMITS.maxFrameValues.toLocaleString('en-US')} msgpack values**`), 'values per client frame, §16');
  tt.ok(spec.includes(`counted the same way) | ${DEFAULT_LIMITS.maxPublishValues.toLocaleString('en-US')} | yes`), 'values per published data');
});

t.test('the worked example quotes the vectors byte for byte', async (tt) => {
  const vectors = [...loadFrameVectors('client'), ...loadFrameVectors('server')];
  for (const name of ['join-resume', 'joined-recovered', 'ev', 'ack-cmd']) {
    const v = vectors.find((x) => x.name === name);
    tt.ok(v && spec.includes(`hex: \`${v.hex}\``), `${name} hex appears in SPEC.md`);
  }
});

/** The text of the section whose heading starts with `heading`, up to the next heading of the same level or higher. */
function section(heading: string): string {
  const at = spec.indexOf(heading);
  if (at < 0) throw new Error(`SPEC.md has no heading ${heading}`);
  const level = /^#+/.exec(heading)![0].length;
  const rest = spec.slice(at + heading.length);
  const next = rest.search(new RegExp(`\\n#{1,${level}} `));
  return next < 0 ? rest : rest.slice(0, next);
}

t.test('a role that may not publish gets 108 everywhere the spec says so (as the daemon answers)', async (tt) => {
  const pub = section('### `pub`');
  const errors = /Errors: ([^]*?)\.\n/.exec(pub)?.[1] ?? '';
  tt.match(errors, /108 PublishNotAllowed/, '§6 pub lists 108');
  tt.notMatch(errors, /103/, '§6 pub does not list 103');
  const publish = section('## 12. Client publish');
  tt.notMatch(publish, /role not allowed answers \*\*103/, '§12 does not send roles to 103');
  tt.match(publish, /role the\s+namespace does not let publish/, '§12 names the role case under 108');
  const row108 = spec.split('\n').find((l) => l.startsWith('| 108 |')) ?? '';
  const row103 = spec.split('\n').find((l) => l.startsWith('| 103 |')) ?? '';
  tt.match(row108, /role/, '§17: 108 covers the role');
  tt.notMatch(row103, /role/, '§17: 103 does not');
});

t.test('close reasons have one limit, in bytes', async (tt) => {
  const limits = [...spec.matchAll(/(\d+) bytes of UTF-8/g)].filter((m) => /reason/.test(spec.slice(Math.max(0, m.index! - 120), m.index! + 40)));
  tt.ok(limits.length >= 2, `the limit is stated where reasons are described (${limits.length} places)`);
  for (const m of limits) tt.equal(Number(m[1]), MAX_CLOSE_REASON_BYTES, `"${m[0]}" is the registry's limit`);
});

t.test('idle connections: the spec states the close code the daemon sends', async (tt) => {
  const keepAlive = section('## 13. Keep-alive');
  tt.match(keepAlive, /closes it with \*\*1000 Normal\*\*/);
  tt.match(keepAlive, /`hello\.ping \/ 2`[^]*WebSocket\s+ping/, 'and that the server pings halfway');
});

t.test('goaway pos.seq is described as what the server sends: the head routed to the instance', async (tt) => {
  const row = spec.split('\n').find((l) => l.startsWith('| `seq` | uint | yes |') && /goaway/.test(l)) ?? '';
  tt.notMatch(row, /Last seq delivered/, 'not "last delivered"');
  tt.match(row, /highest seq the server had routed/);
  tt.match(section('## 14. Go-away'), /queued behind every frame routed so far/, '§14 says why resuming from it is safe');
});

t.test('integers in application data: the spec states how they are written', async (tt) => {
  const encoding = section('## 4. Frame encoding');
  tt.match(encoding, /\*\*int 64\*\* \(`0xd3`\)/);
  tt.match(encoding, /`ts`\) as float64/, 'protocol fields such as ts stay float64 (as the vectors pin)');
});

t.test('JWKS and the clock-skew allowance are described as implemented', async (tt) => {
  const auth = section('## 3. Authentication');
  tt.match(auth, /JSON Web Key Set file/);
  tt.match(auth, /fetches nothing over the network/);
  tt.match(auth, /`kid`/);
  tt.match(auth, /not\s+closed as expired before `exp` \+ allowance/);
});
