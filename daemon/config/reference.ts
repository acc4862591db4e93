/**
 * The configuration reference, generated from schema.ts so the docs cannot drift
 * from the code (test/config/reference.test.ts fails when README.md's copy differs).
 *
 *   node dist/daemon/config/reference.js                 prints the markdown
 *   node dist/daemon/config/reference.js --write README.md
 *       replaces the text between the config-reference markers in that file
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { CONFIG_FILE_ENV, SCHEMA, SETTING_KEYS } from './schema.js';

/** Marker opening the generated section in a markdown file. */
export const REFERENCE_START = '<!-- config-reference:start -->';
/** Marker closing the generated section in a markdown file. */
export const REFERENCE_END = '<!-- config-reference:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Renders the configuration reference as markdown (an intro paragraph and one table row per setting). */
export function renderConfigReference(): string {
  const lines = [
    `Settings come from an optional JSON file named by \`${CONFIG_FILE_ENV}\` (keys as below) and from`,
    'environment variables, which win over the file. Everything is validated at start; every problem is',
    'reported at once. In the environment, booleans accept true/false/1/0/yes/no and an empty variable',
    'counts as unset. Generated from `daemon/config/schema.ts`: edit the schema, then run',
    '`node dist/daemon/config/reference.js --write README.md`.',
    '',
    '| Key | Environment variable | Type | Default | Description |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const key of SETTING_KEYS) {
    const s = SCHEMA[key];
    lines.push(`| \`${key}\` | \`${s.env}\` | ${cell(s.type)} | ${cell(s.defaultDoc)} | ${cell(s.doc)} |`);
  }
  return lines.join('\n') + '\n';
}

/** The text currently between the markers of `markdown`, or undefined when the markers are missing or out of order. */
export function extractConfigReference(markdown: string): string | undefined {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < 0 || end < start) return undefined;
  return trimSection(markdown.slice(start + REFERENCE_START.length, end));
}

function trimSection(text: string): string {
  return text.replace(/^\n+/, '').replace(/\n+$/, '') + '\n';
}

/** Returns `markdown` with the text between the markers replaced by `reference`; throws (code CONFIG_REFERENCE_MARKERS) without markers. */
export function replaceConfigReference(markdown: string, reference: string = renderConfigReference()): string {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < 0 || end < start) {
    throw Object.assign(new Error(`no "${REFERENCE_START}" … "${REFERENCE_END}" section found: add both markers, each on its own line, where the reference belongs`), {
      code: 'CONFIG_REFERENCE_MARKERS',
    });
  }
  return markdown.slice(0, start + REFERENCE_START.length) + '\n' + trimSection(reference) + markdown.slice(end);
}

/** Rewrites the reference section of the markdown file at `path` in place. */
export function writeConfigReference(path: string): void {
  const markdown = readFileSync(path, 'utf8');
  writeFileSync(path, replaceConfigReference(markdown));
}

function main(argv: readonly string[]): void {
  const at = argv.indexOf('--write');
  if (at < 0) {
    process.stdout.write(renderConfigReference());
    return;
  }
  const path = argv[at + 1];
  if (path === undefined) {
    process.stderr.write('usage: reference.js [--write <file.md>]\n');
    process.exitCode = 2;
    return;
  }
  try {
    writeConfigReference(path);
    process.stdout.write(`wrote the configuration reference into ${path}\n`);
  } catch (err) {
    process.stderr.write(`${path}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
