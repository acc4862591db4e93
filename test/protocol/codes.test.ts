// Pins both code registries: a number, name or retry rule cannot change without this
// file changing with it, and SPEC.md must list every code with the same name and rule.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { CloseCode, ErrorCode, RETRYABLE_ERRORS, closeIsRetryable, errorIsRetryable } from '../../protocol/codes.js';

const spec = readFileSync(new URL('../../protocol/SPEC.md', import.meta.url), 'utf8');

// name, number, retryable — the whole registry, in order.
const ERRORS: Array<[string, number, boolean]> = [
  ['Internal', 100, true],
  ['BadRequest', 101, false],
  ['UnknownFrame', 102, false],
  ['Forbidden', 103, false],
  ['NotJoined', 104, false],
  ['AlreadyJoined', 105, false],
  ['RateLimited', 106, true],
  ['TooManySessions', 107, false],
  ['PublishNotAllowed', 108, false],
  ['PayloadTooLarge', 109, false],
  ['Unavailable', 110, true],
  ['Timeout', 111, true],
  ['InvalidSession', 112, false],
];

const CLOSES: Array<[string, number, boolean]> = [
  ['Normal', 1000, false],
  ['GoingAway', 1001, true],
  ['InternalError', 4000, true],
  ['SlowConsumer', 4001, true],
  ['RateLimited', 4002, true],
  ['ConnectionLimit', 4003, true],
  ['TokenExpired', 4004, true],
  ['ProtocolError', 4500, false],
  ['AuthFailed', 4501, false],
  ['Forbidden', 4502, false],
  ['MessageTooBig', 4503, false],
  ['UnsupportedVersion', 4504, false],
  ['Kicked', 4505, false],
];

/** The row of a SPEC.md table that starts with `| code |`, split into trimmed cells. */
function specRow(code: number): string[] | undefined {
  const line = spec.split('\n').find((l) => l.startsWith(`| ${code} |`));
  return line?.split('|').slice(1, -1).map((c) => c.trim());
}

t.test('error codes: numbers and names', async (tt) => {
  tt.same(Object.entries(ErrorCode), ERRORS.map(([name, code]) => [name, code]), 'exactly these codes, in this order');
  tt.equal(new Set(Object.values(ErrorCode)).size, ERRORS.length, 'numbers are unique');
  for (const [, code] of ERRORS) tt.ok(code >= 100 && code <= 199, `${code} is in the request-error range`);
});

t.test('error codes: retryability', async (tt) => {
  for (const [name, code, retry] of ERRORS) {
    tt.equal(errorIsRetryable(code), retry, `${name} (${code}) retryable=${retry}`);
    tt.equal(RETRYABLE_ERRORS.has(code), retry);
  }
  tt.same([...RETRYABLE_ERRORS].sort(), ERRORS.filter(([, , r]) => r).map(([, c]) => c).sort(), 'no other retryable codes');
  tt.equal(errorIsRetryable(199), false, 'unknown codes are not retryable');
});

t.test('close codes: numbers and names', async (tt) => {
  tt.same(Object.entries(CloseCode), CLOSES.map(([name, code]) => [name, code]), 'exactly these codes, in this order');
  tt.equal(new Set(Object.values(CloseCode)).size, CLOSES.length, 'numbers are unique');
});

t.test('close codes: retryability follows the ranges', async (tt) => {
  for (const [name, code, retry] of CLOSES) {
    tt.equal(closeIsRetryable(code), retry, `${name} (${code}) reconnect=${retry}`);
    if (code >= 4000 && code <= 4499) tt.ok(retry, `${code} in the retry range`);
    if (code >= 4500 && code <= 4999) tt.notOk(retry, `${code} in the terminal range`);
  }
  // Codes nobody defined yet still follow their range; 1006 is what a dropped connection shows.
  tt.equal(closeIsRetryable(1006), true);
  tt.equal(closeIsRetryable(4499), true);
  tt.equal(closeIsRetryable(4500), false);
  tt.equal(closeIsRetryable(4999), false);
});

t.test('SPEC.md lists every code with the same name and retry rule', async (tt) => {
  for (const [name, code, retry] of [...ERRORS, ...CLOSES]) {
    const row = specRow(code);
    tt.ok(row, `SPEC.md has a table row for ${code}`);
    if (!row) continue;
    tt.equal(row[1], name, `${code} is named ${name} in SPEC.md`);
    tt.equal(row[2], retry ? 'yes' : 'no', `${code} retry column says ${retry ? 'yes' : 'no'}`);
  }
  const rows = spec.split('\n').filter((l) => /^\| (1\d\d|[14]\d\d\d) \| [A-Z]/.test(l));
  tt.equal(rows.length, ERRORS.length + CLOSES.length, 'and no code the registries do not have');
  for (const range of ['1000–1999', '4000–4499', '4500–4999']) tt.ok(spec.includes(range), `SPEC.md explains the range ${range}`);
});
