/**
 * The admin API as shardcast-admin's verbs use it (docs/admin.md): the address
 * (SHARDCAST_ADMIN_URL, default http://127.0.0.1:9090), the bearer token
 * (SHARDCAST_ADMIN_TOKEN), and failures turned into CliErrors with their exit
 * codes: unreachable 3, token refused 4, not found 5, anything else 1.
 */
import { CliError, EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, EXIT_UNREACHABLE } from './cli-errors.js';

/** Used when SHARDCAST_ADMIN_URL is not set. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';

const REQUEST_TIMEOUT_MS = 10_000;

/** A client of one instance's admin API. */
export class AdminClient {
  readonly base: string;
  private readonly token: string | undefined;

  constructor(env: Readonly<Record<string, string | undefined>>, private readonly signal: AbortSignal, base?: string) {
    this.base = adminUrl(base ?? env.SHARDCAST_ADMIN_URL);
    const token = env.SHARDCAST_ADMIN_TOKEN?.trim();
    this.token = token === '' ? undefined : token;
  }

  /** A client of another instance's admin API, with the same token. */
  at(base: string): AdminClient {
    return new AdminClient({ SHARDCAST_ADMIN_TOKEN: this.token }, this.signal, base);
  }

  /** GETs a JSON resource. */
  get(path: string, query: Record<string, string | number | undefined> = {}): Promise<unknown> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return this.request('GET', qs === '' ? path : `${path}?${qs}`);
  }

  /** POSTs a JSON body. */
  post(path: string, body: unknown): Promise<unknown> {
    return this.request('POST', path, body);
  }

  /** Opens a streamed GET (the tail); resolves with the response once its head arrived. */
  async stream(path: string): Promise<Response> {
    const response = await this.fetch('GET', path, undefined, this.signal);
    if (!response.ok) await this.fail(response);
    return response;
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.fetch(method, path, body, AbortSignal.any([this.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]));
    if (!response.ok) await this.fail(response);
    const text = await response.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new CliError(`unexpected reply from ${this.base}${path}: ${text.slice(0, 200)}`);
    }
  }

  private async fetch(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(`${this.base}${path}`, { method, headers, signal, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      if (this.signal.aborted) throw new CliError('interrupted');
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new CliError(`cannot reach the admin API at ${this.base}: ${cause} (is the daemon running? set SHARDCAST_ADMIN_URL)`, EXIT_UNREACHABLE);
    }
  }

  private async fail(response: Response): Promise<never> {
    const text = await response.text().catch(() => '');
    let detail = text.slice(0, 300);
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof body.error?.code === 'string' && typeof body.error.message === 'string') detail = `${body.error.code}: ${body.error.message}`;
    } catch {
      // Not JSON: the text itself is the detail.
    }
    if (response.status === 401) {
      const hint = this.token === undefined ? 'SHARDCAST_ADMIN_TOKEN is not set' : 'SHARDCAST_ADMIN_TOKEN is not the token of this daemon';
      throw new CliError(`the admin API refused the token (HTTP 401): ${hint}`, EXIT_UNAUTHORIZED);
    }
    throw new CliError(`HTTP ${response.status}: ${detail}`, response.status === 404 ? EXIT_NOT_FOUND : EXIT_FAILURE);
  }
}

/** The admin API's base URL (no trailing slash), or a CliError naming the variable. */
export function adminUrl(raw: string | undefined): string {
  const text = raw?.trim() || DEFAULT_ADMIN_URL;
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`SHARDCAST_ADMIN_URL is not a URL: ${JSON.stringify(text)} (expected e.g. ${DEFAULT_ADMIN_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`SHARDCAST_ADMIN_URL must start with http:// or https://, got ${JSON.stringify(text)}`);
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}
