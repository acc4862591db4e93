/**
 * Renders result rows as an aligned text table: the common columns, then whatever
 * scenario extras the rows carry.
 */
import type { BenchResult } from './scenarios/broadcast-run.js';

const COMMON: [string, string][] = [
  ['target', 'target'],
  ['clients', 'clients'],
  ['sessions', 'sessions'],
  ['events', 'events'],
  ['delivered', 'delivered'],
  ['expected', 'expected'],
  ['lost', 'lost'],
  ['duplicated', 'dup'],
  ['p50_ms', 'p50 ms'],
  ['p90_ms', 'p90 ms'],
  ['p99_ms', 'p99 ms'],
  ['max_ms', 'max ms'],
  ['frames_per_s', 'frames/s'],
  ['server_cpu_us_per_frame', 'srv µs/frame'],
  ['client_cpu_us_per_frame', 'cli µs/frame'],
  ['server_rss_mb', 'srv RSS MB'],
];

const SKIP = new Set<string>(['scenario', 'rate', 'failed_connections', 'closed_early', 'unexpected', 'first_error']);

function columnsOf(rows: BenchResult[]): [string, string][] {
  const columns: [string, string][] = [...COMMON];
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!SKIP.has(key) && !columns.some(([k]) => k === key)) columns.push([key, key]);
    }
  }
  columns.push(['rate', 'ticks/s'], ['failed_connections', 'failed'], ['closed_early', 'closed']);
  return columns;
}

const cell = (value: unknown): string => (value === undefined || value === null ? '–' : String(value));

/** The rows as a Markdown table (for RESULTS.md). */
export function renderMarkdown(rows: BenchResult[]): string {
  if (rows.length === 0) return '(no results)\n';
  const columns = columnsOf(rows);
  const out = [
    `| ${columns.map(([, title]) => title).join(' | ')} |`,
    `|${columns.map((_, c) => (c === 0 ? ':--' : '--:')).join('|')}|`,
    ...rows.map((row) => `| ${columns.map(([key]) => cell(row[key])).join(' | ')} |`),
  ];
  return out.join('\n') + '\n';
}

/** The table for rows of one scenario. */
export function renderTable(rows: BenchResult[]): string {
  if (rows.length === 0) return '(no results)\n';
  const columns = columnsOf(rows);
  const cells = rows.map((row) => columns.map(([key]) => cell(row[key])));
  const widths = columns.map(([, title], c) => Math.max(title.length, ...cells.map((r) => r[c].length)));
  const line = (values: string[]): string => values.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  const out = [`scenario: ${rows[0].scenario}`, line(columns.map(([, title]) => title)), ...cells.map(line)];
  for (const row of rows) if (row.first_error) out.push(`${row.target}: first connection error: ${row.first_error}`);
  return out.join('\n') + '\n';
}
