// Pins the code registries (error, close and HTTP API codes): a number, name or retry
// rule cannot change without this file changing with it, and SPEC.md must list every
// code with the same name and rule. Also the one close-reason limit.
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  CloseCode,
  ErrorCode,
  HTTP_ERRORS,
  HttpErrorCode,
  MAX_CLOSE_REASON_BYTES,
  RETRYABLE_ERRORS,
  closeIsRetryable,
  closeReason,
  errorIsRetryable,
} from '../../protocol/codes.js';

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

// ------------------------------------------------------------------ close reasons

t.test('closeReason: fits a close frame, cut on a character boundary', async (tt) => {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  tt.equal(MAX_CLOSE_REASON_BYTES, 123, 'a close frame holds 125 bytes, 2 of them the code');
  tt.equal(closeReason('short'), 'short', 'short reasons are untouched');
  const exact = 'x'.repeat(123);
  tt.equal(closeReason(exact), exact, '123 bytes fit as they are');
  const long = closeReason('y'.repeat(500));
  tt.equal(bytes(long), 123, 'long ASCII is cut to exactly 123 bytes');
  tt.ok(long.endsWith('…') && long.startsWith('y'.repeat(120)), 'and marked as cut');
  for (const [name, ch] of [['é (2 bytes)', 'é'], ['€ (3 bytes)', '€'], ['😀 (4 bytes)', '😀'], ['mixed', 'aé€😀']] as const) {
    const text = `unsupported protocol ${ch.repeat(80)}`;
    const cut = closeReason(text);
    tt.ok(bytes(cut) <= MAX_CLOSE_REASON_BYTES, `${name}: ${bytes(cut)} bytes`);
    tt.ok(bytes(cut) > MAX_CLOSE_REASON_BYTES - 8, `${name}: uses the room it has`);
    tt.ok(cut.endsWith('…'), `${name}: marked as cut`);
    tt.ok(text.startsWith(cut.slice(0, -1)), `${name}: a prefix of the reason, whole characters only`);
    tt.equal(Buffer.from(cut, 'utf8').toString('utf8'), cut, `${name}: valid UTF-8`);
    tt.notOk(/[\uD800-\uDBFF]$/.test(cut.slice(0, -1)), `${name}: no half surrogate pair`);
  }
  // A lone surrogate is written as U+FFFD (3 bytes): counted as such.
  const lone = closeReason('\uD800'.repeat(60));
  tt.ok(bytes(lone) <= MAX_CLOSE_REASON_BYTES, `lone surrogates: ${bytes(lone)} bytes`);
});

// ------------------------------------------------------------------ HTTP API errors

// code, status, retryable — the whole HTTP registry, in order.
const HTTP: Array<[string, string, number, boolean]> = [
  ['InvalidBody', 'invalid_body', 400, false],
  ['InvalidRequest', 'invalid_request', 400, false],
  ['Unauthorized', 'unauthorized', 401, false],
  ['NotFound', 'not_found', 404, false],
  ['MethodNotAllowed', 'method_not_allowed', 405, false],
  ['TooLarge', 'too_large', 413, false],
  ['UnsupportedMediaType', 'unsupported_media_type', 415, false],
  ['Unavailable', 'unavailable', 503, true],
  ['Timeout', 'timeout', 504, true],
];

t.test('HTTP error codes: names, statuses and retry rules', async (tt) => {
  tt.same(Object.entries(HttpErrorCode), HTTP.map(([name, code]) => [name, code]), 'exactly these codes, in this order');
  tt.same(Object.keys(HTTP_ERRORS).sort(), HTTP.map(([, code]) => code).sort(), 'every code has a status');
  for (const [name, code, status, retry] of HTTP) {
    tt.same(HTTP_ERRORS[code as HttpErrorCode], { status, retry }, `${name}: ${status}, retry=${retry}`);
  }
});

t.test('SPEC.md lists every HTTP error code with its status and retry rule', async (tt) => {
  const section = spec.slice(spec.indexOf('### HTTP API errors'), spec.indexOf('## 18.'));
  tt.ok(section.length > 0, 'SPEC.md has an HTTP API errors section in §17');
  const rows = section.split('\n').filter((l) => /^\| `[a-z_]+` \|/.test(l));
  tt.equal(rows.length, HTTP.length, 'one row per code, no code the registry lacks');
  for (const [, code, status, retry] of HTTP) {
    const row = rows.find((l) => l.startsWith(`| \`${code}\` |`))?.split('|').slice(1, -1).map((c) => c.trim());
    tt.ok(row, `SPEC.md has a row for ${code}`);
    tt.equal(row?.[1], String(status), `${code} has status ${status}`);
    tt.equal(row?.[2], retry ? 'yes' : 'no', `${code} retry column says ${retry ? 'yes' : 'no'}`);
  }
});

t.test('daemon/shard/http-api.ts answers only with registered codes', async (tt) => {
  const source = readFileSync(new URL('../../daemon/shard/http-api.ts', import.meta.url), 'utf8');
  tt.notMatch(source, /sendError\([^,]+,\s*'/, 'no string literal passed as an error code');
  tt.notMatch(source, /code:\s*'[a-z_]+'/, 'no ad-hoc code in a body');
});
