#!/usr/bin/env node
// Reads tap's output on stdin and prints its result as the plain line CI
// recognises: `N passed, N failed` (plus `, N skipped` when tap skipped any).
// tap 21 ends its output with `# { total: 6, pass: 3, fail: 1, todo: 1, skip: 1 }`,
// where a key is absent when its count is 0.
//
// Exit status: 0 all passed, 1 some failed, 2 no summary found (tap crashed or
// was killed before the end), so CI never reads a missing summary as success.
// Plain JavaScript on purpose: it must run before anything is built.

/** Counts from tap's final summary line, or null when there is none. */
function parseTapSummary(text) {
  // Strip colour codes in case tap ran with FORCE_COLOR.
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '')
  const lines = plain.split(/\r?\n/)
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^# \{ ?(.*?) ?\}\s*$/.exec(lines[i])
    if (m === null) continue
    const counts = {}
    for (const part of m[1].split(',')) {
      const kv = /^\s*(\w+): (\d+)\s*$/.exec(part)
      if (kv === null) return null
      counts[kv[1]] = Number(kv[2])
    }
    if (counts.total === undefined) return null
    return counts
  }
  return null
}

/** The line CI looks for, e.g. `12 passed, 1 failed, 2 skipped`. */
function formatSummary(counts) {
  const passed = counts.pass ?? 0
  const failed = counts.fail ?? 0
  let line = `${passed} passed, ${failed} failed`
  if (counts.skip !== undefined) line += `, ${counts.skip} skipped`
  return line
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const counts = parseTapSummary(Buffer.concat(chunks).toString('utf8'))
if (counts === null) {
  process.stderr.write('ci: no tap summary line (# { total: N, pass: N, ... }) in the test output: tap did not finish\n')
  process.exitCode = 2
} else {
  process.stdout.write(formatSummary(counts) + '\n')
  process.exitCode = (counts.fail ?? 0) > 0 ? 1 : 0
}
