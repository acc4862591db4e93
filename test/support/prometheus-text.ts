/**
 * A strict reader of the Prometheus text exposition format (0.0.4) for the admin
 * tests: every line must be a HELP, a TYPE or a sample; samples are returned with
 * their labels so a test can sum them.
 */

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
const META = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Parses the text; throws naming the first line that is not valid exposition format. */
export function parsePrometheusText(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '') return;
    const meta = META.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        if (!TYPES.has(meta[3])) throw new Error(`line ${i + 1}: unknown type ${meta[3]}`);
        if (types.has(meta[2])) throw new Error(`line ${i + 1}: second TYPE for ${meta[2]}`);
        types.set(meta[2], meta[3]);
      }
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`line ${i + 1} is not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== '') {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[3].length) {
        const l = LABEL.exec(m[3]);
        if (l === null) throw new Error(`line ${i + 1}: bad labels ${m[3]}`);
        labels[l[1]] = l[2];
      }
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  });
  return { samples, types };
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
