// .ci/summary.mjs turns tap's final summary into the `N passed, N failed` line CI
// reads, and its exit status decides the run when npm test itself exits 0.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../../.ci/summary.mjs', import.meta.url))

function summarize(tapOutput: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [script], { input: tapOutput, encoding: 'utf8', timeout: 10_000 })
  return { stdout: r.stdout, stderr: r.stderr, status: r.status }
}

// Shaped like a real tap 21 run: subtests, YAML diagnostics, then the summary.
const tail = (summary: string) => `TAP version 14
1..2
# Subtest: test/a.test.ts
    ok 1 - works
    1..1
ok 1 - test/a.test.ts # time=11.3ms

# Subtest: test/b.test.ts
    not ok 1 - bad
      ---
      compare: ===
      ...
    1..1
not ok 2 - test/b.test.ts # time=13.6ms

# No coverage generated
${summary}
# time=1314.95ms
`

t.test('fail present', async t => {
  const r = summarize(tail('# { total: 6, pass: 3, fail: 1, todo: 1, skip: 1 }'))
  t.equal(r.stdout, '3 passed, 1 failed, 1 skipped\n')
  t.equal(r.status, 1, 'failures make the run fail')
})

t.test('fail absent means 0 failed', async t => {
  const r = summarize(tail('# { total: 12, pass: 12 }'))
  t.equal(r.stdout, '12 passed, 0 failed\n')
  t.equal(r.status, 0)
})

t.test('skip present is appended, todo is not a failure', async t => {
  const r = summarize(tail('# { total: 4, pass: 2, todo: 1, skip: 1 }'))
  t.equal(r.stdout, '2 passed, 0 failed, 1 skipped\n')
  t.equal(r.status, 0)
})

t.test('no summary (tap crashed or was killed) fails the run', async t => {
  const r = summarize('TAP version 14\n# Subtest: test/a.test.ts\n    ok 1 - works\n')
  t.equal(r.stdout, '', 'no result line is invented')
  t.match(r.stderr, /no tap summary/)
  t.equal(r.status, 2)
})

t.test('empty input fails the run', async t => {
  const r = summarize('')
  t.equal(r.stdout, '')
  t.equal(r.status, 2)
})

t.test('the last summary wins and test output that looks like one is ignored', async t => {
  const r = summarize(
    '    # { total: 1, pass: 1 }\n' + tail('# { total: 3, pass: 1, fail: 2 }'),
  )
  t.equal(r.stdout, '1 passed, 2 failed\n')
  t.equal(r.status, 1)
})

t.test('colour codes around the summary are tolerated', async t => {
  const r = summarize(tail('\x1b[2m# { total: 2, pass: 2 }\x1b[22m'))
  t.equal(r.stdout, '2 passed, 0 failed\n')
  t.equal(r.status, 0)
})
