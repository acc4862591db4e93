/**
 * A scenario runs against one started target and returns one result row. The
 * registry maps the CLI's scenario names to their runs.
 */
import type { BenchOptions, ScenarioName } from '../cli-options.js';
import type { LoadGenerator } from '../load/load-generator.js';
import type { ProgressDisplay } from '../progress-display.js';
import type { RunningTarget } from '../targets/target.js';
import type { BenchResult } from './broadcast-run.js';
import { capacity } from './capacity.js';
import { churn } from './churn.js';
import { fanout } from './fanout.js';
import { jitter } from './jitter.js';
import { sessions } from './sessions.js';

/** One scenario's run against one target. */
export type ScenarioRun = (
  target: RunningTarget,
  generator: LoadGenerator,
  options: BenchOptions,
  progress: ProgressDisplay,
) => Promise<BenchResult>;

/** The run for a scenario name. */
export function scenarioRun(name: ScenarioName): ScenarioRun {
  switch (name) {
    case 'fanout':
      return fanout;
    case 'sessions':
      return sessions;
    case 'capacity':
      return capacity;
    case 'churn':
      return churn;
    case 'jitter':
      return jitter;
    default:
      throw new Error(`bench: unknown scenario ${String(name satisfies never)}`);
  }
}
