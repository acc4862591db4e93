/**
 * `npm run bench -- <scenario> [options]`: starts each target in turn as its own
 * process, runs the scenario against it with the load generator, stops it, and
 * prints a table (or `--json`, one object per target) on stdout. Progress goes to
 * stderr. With `--repeat N` the target list runs N times (round-summary.ts). Exit code 1 when a target failed to run, 2 on a bad command line.
 */
import { parseBenchArgs, USAGE, UsageError } from './cli-options.js';
import { LoadGenerator } from './load/load-generator.js';
import { stderrProgress } from './progress-display.js';
import { renderMarkdown, renderTable } from './results-table.js';
import { roundOrder, summarizeRounds } from './round-summary.js';
import type { BenchResult } from './scenarios/broadcast-run.js';
import { scenarioRun } from './scenarios/scenario.js';
import { startTarget, type TargetName } from './targets/target.js';

async function main(): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const progress = stderrProgress();
  const generator = new LoadGenerator(options.threads);
  const run = scenarioRun(options.scenario);
  const rows: BenchResult[] = [];
  let failures = 0;
  /** Runs one target once; a failure is counted and reported, and the rounds go on. */
  const runOnce = async (name: TargetName, round: number): Promise<void> => {
    const label = options.repeat > 1 ? `${name} (round ${round + 1}/${options.repeat})` : name;
    progress.update(`${options.scenario} ${label}: starting`);
    let target;
    try {
      target = await startTarget(name, { joinLeave: options.joinLeave });
    } catch (err) {
      failures++;
      progress.note(`bench: ${name}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    try {
      const row = await run(target, generator, options, progress);
      if (options.repeat > 1) row.round = round + 1;
      rows.push(row);
      progress.note(
        `${options.scenario} ${label}: delivered ${row.delivered}/${row.expected} lost ${row.lost} dup ${row.duplicated} ` +
          `p99 ${row.p99_ms} ms, ${row.server_cpu_us_per_frame ?? '–'} µs/frame`,
      );
    } catch (err) {
      failures++;
      const tail = target.output().trim().split('\n').slice(-10).join('\n');
      progress.note(`bench: ${name}: ${err instanceof Error ? err.message : String(err)}${tail ? `\n${name} output (last lines):\n${tail}` : ''}`);
    } finally {
      await target.stop();
    }
  };
  try {
    for (let round = 0; round < options.repeat; round++) {
      for (const name of roundOrder(options.targets, round)) await runOnce(name, round);
    }
  } finally {
    await generator.close();
  }
  if (options.repeat > 1) rows.push(...summarizeRounds(rows, options.targets[0]));
  process.stdout.write(
    options.json ? `${JSON.stringify(rows, null, 2)}\n` : options.markdown ? renderMarkdown(rows) : renderTable(rows),
  );
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
