/**
 * The SDK against the real daemon (dist/daemon/main.js, dev mode off, HS256): the
 * token travels as the `bearer.<token>` subprotocol and stays out of the URL, the
 * server answers with `shardcast.v1` only, the query parameter still works, and
 * serverTimeOffset() is known right after connecting. Needs `npm run build` first.
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { signJwt } from '../../daemon/auth/jwt.js';
import { CloseCode, ShardcastClient, type WebSocketConstructor } from '../../protocol/client/index.js';
import { startDaemon } from '../support/daemon-process.js';

const SECRET = 'sdk-token-test-secret-0123456789abcdef';

t.test('token as a subprotocol, as a query parameter, and the server clock', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_DEV_MODE: 'false', SHARDCAST_JWT_SECRET: SECRET, SHARDCAST_API_KEY: 'sdk-token-test-api-key-0123', SHARDCAST_ADMIN_TOKEN: 'sdk-token-test-admin-token' });
  t.teardown(() => daemon.stop());
  const token = signJwt({ sub: 'tina', sessions: ['quiz:*'], exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: SECRET });

  // Records what each connection attempt put on the wire.
  const opened: { url: string; protocols: string[]; socket: WebSocket }[] = [];
  const Recording = class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      opened.push({ url, protocols: [protocols ?? []].flat(), socket: this });
    }
  } as unknown as WebSocketConstructor;

  const viaProtocol = new ShardcastClient({ url: daemon.ws, token, WebSocket: Recording });
  t.teardown(() => viaProtocol.close());
  const hello = await viaProtocol.connect();
  t.equal(hello.user, 'tina', 'authenticated by the bearer subprotocol');
  t.notMatch(opened[0].url, /token/, 'the token is not in the URL');
  t.same(opened[0].protocols, ['shardcast.v1', `bearer.${token}`]);
  t.equal(opened[0].socket.protocol, 'shardcast.v1', 'the server selects shardcast.v1, never the bearer entry');
  await t.resolves(viaProtocol.join('quiz:1').ready, 'the token\'s sessions apply');

  const viaQuery = new ShardcastClient({ url: daemon.ws, token, tokenTransport: 'query', WebSocket: Recording });
  t.teardown(() => viaQuery.close());
  t.equal((await viaQuery.connect()).user, 'tina', 'the query parameter still works');
  t.match(opened[1].url, /[?&]token=/);

  const forged = new ShardcastClient({ url: daemon.ws, token: `${token.slice(0, -4)}AAAA`, WebSocket: Recording });
  await t.rejects(forged.connect(), { code: CloseCode.AuthFailed }, 'a bad token in the subprotocol is refused with 4501');

  // Precedence (SPEC §3): the Authorization header, then the subprotocol, then the query parameter.
  const helloUser = (url: string, protocols: string[], headers: Record<string, string> = {}) =>
    new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers });
      ws.binaryType = 'arraybuffer';
      ws.once('message', () => {
        ws.terminate();
        resolve('hello');
      });
      ws.once('close', (code) => resolve(`closed ${code}`));
      ws.once('error', reject);
    });
  t.equal(await helloUser(`${daemon.ws}?token=bad`, ['shardcast.v1', `bearer.${token}`]), 'hello', 'the subprotocol wins over the query parameter');
  t.equal(await helloUser(daemon.ws, ['shardcast.v1', 'bearer.bad'], { authorization: `Bearer ${token}` }), 'hello', 'the header wins over the subprotocol');
  t.equal(await helloUser(`${daemon.ws}?token=${token}`, ['shardcast.v1', 'bearer.bad']), `closed ${CloseCode.AuthFailed}`, 'a bad subprotocol token is not rescued by the query');

  // serverTimeOffset: the first ping goes right after hello; daemon and test share a clock.
  const end = Date.now() + 10_000;
  while (viaProtocol.serverTimeOffset() === null && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  const offset = viaProtocol.serverTimeOffset();
  t.ok(offset !== null && Math.abs(offset) < 1000, `offset to the daemon's clock on the same machine is about 0 (${offset} ms)`);
});
