/**
 * `npm run console`: serves the session console (index.html + page.ts bundled with
 * esbuild, on the SDK package's source) over HTTP, for development. The page talks
 * to the gateway directly over WebSocket; this server only hands out the page.
 *
 *   npm run console -- [--port 8081] [--host 127.0.0.1] [--gateway ws://127.0.0.1:8080/v1/ws]
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

/** Folder of index.html and page.ts, from the TypeScript sources or from dist/. */
function sourceDir(): string {
  const beside = fileURLToPath(new URL('.', import.meta.url));
  const source = fileURLToPath(new URL('../../../../protocol/client/console/', import.meta.url));
  return /[\\/]dist[\\/]protocol[\\/]client[\\/]console[\\/]$/.test(beside) && existsSync(source) ? source : beside;
}

/** Options of startConsole. */
export interface ConsoleOptions {
  /** Port to listen on (0: any free port). */
  port: number;
  host: string;
  /** Gateway URL the form starts with. */
  gateway: string;
}

/** A running console server. */
export interface ConsoleServer {
  url: string;
  close(): Promise<void>;
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** Bundles the page and serves it; resolves once listening. */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const dir = sourceDir();
  const bundled = await build({
    entryPoints: [`${dir}page.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    alias: { '@shardcast/client': fileURLToPath(new URL('../index.ts', pathToFileURL(dir))) },
    logLevel: 'warning',
  });
  const script = bundled.outputFiles[0].text;
  const html = readFileSync(`${dir}index.html`, 'utf8').replace('value="ws://127.0.0.1:8080/v1/ws"', `value="${escapeAttribute(options.gateway)}"`);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/console.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      res.end(script);
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the console is at /\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8081' },
      host: { type: 'string', default: '127.0.0.1' },
      gateway: { type: 'string', default: 'ws://127.0.0.1:8080/v1/ws' },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`console: --port must be an integer 0–65535, got ${values.port}\n`);
    process.exitCode = 2;
    return;
  }
  const server = await startConsole({ port, host: values.host, gateway: values.gateway });
  process.stdout.write(`Shardcast session console: ${server.url}  (gateway ${values.gateway}; start the daemon with SHARDCAST_DEV_MODE=true)\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`console: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
