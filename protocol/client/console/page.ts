/**
 * The session console's page: a small UI on the SDK package for newcomers and for
 * debugging a live session. Connect (dev user or token), join a session with
 * presence, watch events arrive (replayed ones highlighted), send commands or
 * publish where the namespace allows, and see reconnects and resumes as they happen.
 * Query parameters prefill the form (`gateway`, `user`, `token`, `session`);
 * `connect=1` connects and joins at once.
 */
import { ShardcastClient, ShardcastError, type EventFrame, type Subscription, type Value } from '@shardcast/client';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console page: #${id} is missing`);
  return el as T;
};
const input = (id: string): HTMLInputElement => $<HTMLInputElement>(id);
const button = (id: string): HTMLButtonElement => $<HTMLButtonElement>(id);

const MAX_ROWS = 500;
const MAX_LOG = 200;

let client: ShardcastClient | null = null;
let sub: Subscription | null = null;
/** Events up to this seq (of this epoch) are replays of the last resumed join. */
let replayUpTo: { ep: string; seq: number } | null = null;
const present = new Map<string, number>();
const counters = { connects: 0, resumes: 0, snapshots: 0, events: 0 };

function clock(ms: number): string {
  const d = new Date(ms);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function log(text: string, kind: 'ok' | 'warn' | 'bad' | '' = ''): void {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = `${clock(Date.now())}  ${text}`;
  const list = $('log');
  list.prepend(li);
  while (list.childElementCount > MAX_LOG) list.lastElementChild?.remove();
}

function show(value: Value): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v));
}

function renderStatus(): void {
  const state = client?.state ?? 'idle';
  const badge = $('state');
  badge.textContent = state;
  badge.className = state;
  $('conn').textContent = client?.hello ? `conn ${client.hello.conn}` : '—';
  $('user').textContent = client?.hello ? `user ${client.hello.user}` : '';
  const offset = client?.serverTimeOffset() ?? null;
  $('clock').textContent = offset === null ? '' : `server clock ${offset >= 0 ? '+' : ''}${Math.round(offset)} ms`;
  $('counters').textContent = `connects ${counters.connects} · resumes ${counters.resumes} · snapshots ${counters.snapshots} · events ${counters.events}`;
  const open = client !== null && state !== 'closed';
  button('connect').disabled = open;
  button('disconnect').disabled = !open;
  button('join').disabled = !open || sub !== null;
  button('leave').disabled = sub === null;
  button('command').disabled = sub === null;
  button('publish').disabled = sub === null;
  const pos = sub?.position;
  $('position').textContent = sub ? `${sub.session} · ${sub.state}${pos ? ` · epoch ${pos.epoch} seq ${pos.seq}` : ''}` : '';
}

function renderPresence(): void {
  const list = $('presence');
  list.replaceChildren(
    ...[...present.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([user, n]) => {
      const li = document.createElement('li');
      li.textContent = n > 1 ? `${user} (${n} connections)` : user;
      return li;
    }),
  );
  $('presence-count').textContent = present.size > 0 ? `(${present.size})` : '';
}

function addEvent(ev: EventFrame): void {
  counters.events++;
  const row = document.createElement('tr');
  if (replayUpTo && ev.ep === replayUpTo.ep && ev.seq <= replayUpTo.seq) row.className = 'replayed';
  for (const [text, cls] of [[String(ev.seq), ''], [ev.type, ''], [show(ev.data), 'data'], [ev.k ?? '', ''], [clock(ev.ts), '']] as const) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  }
  const body = $('events');
  body.prepend(row);
  while (body.childElementCount > MAX_ROWS) body.lastElementChild?.remove();
}

function connect(): void {
  const url = input('gateway').value.trim();
  const user = input('who').value.trim();
  const token = input('token').value.trim();
  client = new ShardcastClient({ url, ...(token ? { token } : user ? { user } : {}) });
  client.on('state', ({ state, previous }) => {
    if (state === 'connecting' && previous === 'reconnecting') log('reconnecting…', 'warn');
    renderStatus();
  });
  client.on('connected', (hello) => {
    counters.connects++;
    log(`connected as ${hello.user} (conn ${hello.conn}, server idle timeout ${hello.ping} s)`, 'ok');
    renderStatus();
  });
  client.on('disconnected', (d) => {
    present.clear();
    renderPresence();
    log(`disconnected: ${d.code}${d.reason ? ` ${d.reason}` : ''}${d.error ? ` (${d.error})` : ''}; reconnect in ${d.reconnectInMs} ms`, 'warn');
  });
  client.on('goaway', (g) => log(`go-away (${g.reason}): reconnecting in ${g.delay} ms`, 'warn'));
  client.on('error', (err) => log(`error ${err.code}: ${err.message}`, 'bad'));
  client.on('closed', (c) => {
    log(`closed: ${c.code} ${c.reason}`, c.byClient ? '' : 'bad');
    sub = null;
    renderStatus();
  });
  client.connect().catch(() => {}); // failures arrive through 'error' and 'closed'
  renderStatus();
}

function join(): void {
  if (!client) return;
  const session = input('session').value.trim();
  try {
    sub = client.join(session, { presence: true });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err), 'bad');
    return;
  }
  const joinedSub = sub;
  $('events').replaceChildren();
  joinedSub.on('joined', (j) => {
    present.clear();
    for (const p of j.pres ?? []) present.set(p.u, p.n);
    renderPresence();
    if (j.rec) {
      counters.resumes++;
      replayUpTo = { ep: j.ep, seq: j.seq };
      log(`joined ${j.s}: resumed, replaying up to seq ${j.seq}`, 'ok');
    } else {
      log(`joined ${j.s}: epoch ${j.ep} at seq ${j.seq} (not recovered: snapshot)`, 'ok');
    }
    renderStatus();
  });
  joinedSub.on('snapshot', ({ snap }) => {
    counters.snapshots++;
    const keys = Object.keys(snap);
    log(`snapshot: ${keys.length === 0 ? 'empty' : keys.map((k) => `${k}=${show(snap[k].data)}`).join(', ')}`);
  });
  joinedSub.on('event', (ev) => {
    addEvent(ev);
    renderStatus();
  });
  joinedSub.on('presence', ({ kind, user }) => {
    if (kind === 'join') present.set(user, Math.max(1, present.get(user) ?? 0));
    else present.delete(user);
    renderPresence();
    log(`presence: ${user} ${kind === 'join' ? 'joined' : 'left'}`);
  });
  joinedSub.on('end', ({ reason, error }) => {
    log(`subscription ended (${reason})${error ? `: ${error.message}` : ''}`, reason === 'failed' ? 'bad' : '');
    if (sub === joinedSub) sub = null;
    present.clear();
    renderPresence();
    renderStatus();
  });
  renderStatus();
}

async function send(kind: 'command' | 'publish'): Promise<void> {
  if (!sub) return;
  const type = input('type').value.trim();
  let data: Value;
  try {
    data = JSON.parse($<HTMLTextAreaElement>('data').value) as Value;
  } catch (err) {
    log(`data is not JSON: ${err instanceof Error ? err.message : String(err)}`, 'bad');
    return;
  }
  try {
    if (kind === 'command') {
      const ack = await sub.command(type, data);
      log(`command ${type} acknowledged (cid ${ack.cid}${ack.dup ? ', duplicate' : ''})`, 'ok');
    } else {
      const ack = await sub.publish(type, data);
      log(`published ${type} as seq ${ack.seq}`, 'ok');
    }
  } catch (err) {
    log(err instanceof ShardcastError ? `${kind} refused: ${err.message}` : String(err), 'bad');
  }
}

button('connect').onclick = connect;
button('disconnect').onclick = () => void client?.close();
button('join').onclick = join;
button('leave').onclick = () => void sub?.leave();
button('command').onclick = () => void send('command');
button('publish').onclick = () => void send('publish');
// The server clock offset refreshes with each pong.
setInterval(renderStatus, 1000);

const params = new URLSearchParams(location.search);
for (const [param, id] of [['gateway', 'gateway'], ['user', 'who'], ['token', 'token'], ['session', 'session']] as const) {
  const value = params.get(param);
  if (value !== null) input(id).value = value;
}
renderStatus();
if (params.get('connect') === '1') {
  connect();
  join();
}
document.body.dataset.ready = 'true';
