#!/usr/bin/env node
/** Entry of the `shardcast-admin` binary (dist/admin-cli/main.js). */
import { runCli } from './cli.js';

// A reader that stops early (`shardcast-admin genconfig | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const interrupt = new AbortController();
const onSignal = (): void => interrupt.abort();
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const code = await runCli(process.argv.slice(2), {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  signal: interrupt.signal,
});
process.off('SIGINT', onSignal);
process.off('SIGTERM', onSignal);
// exitCode rather than exit(): let stdout drain when piped.
process.exitCode = code;
