/**
 * Serves a test page over HTTP on 127.0.0.1 (port 0): one HTML file and one script
 * bundled by esbuild from a TypeScript entry. `@shardcast/client` resolves to the
 * built package (protocol/client/dist, via its package.json), so the page runs what
 * a bundler user gets; run `node protocol/client/build.mjs` first.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const PACKAGE_DIR = fileURLToPath(new URL('../../protocol/client/', import.meta.url));

/** Resolves `@shardcast/client` to the package folder, as if it were installed. */
const sdkPackage: Plugin = {
  name: 'shardcast-client-package',
  setup(b) {
    b.onResolve({ filter: /^@shardcast\/client$/ }, () => ({ path: `${PACKAGE_DIR}dist/index.js` }));
  },
};

/** Bundles `entry` for the browser into one ESM script. */
export async function bundlePage(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    plugins: [sdkPackage],
    logLevel: 'warning',
  });
  return result.outputFiles[0].text;
}

/** A running page server. */
export interface PageServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `html` at / and `script` at /page.js. */
export async function servePage(html: string, script: string): Promise<PageServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(script);
    } else if (req.url === '/' || req.url?.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
