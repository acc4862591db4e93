/**
 * A lock across test processes (tap runs files in parallel) for a shared service
 * some tests stop: every file that uses RabbitMQ holds the `rabbitmq` lock for its
 * whole run, so a file that stops the broker never pulls it from under another. A
 * directory made atomically holds the lock, with the holder's pid inside; a lock
 * whose holder died is taken over. Released when the file's tests end or its
 * process exits.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (up to `timeoutMs`) until this process holds the lock `name`. */
export async function holdServiceLock(name: string, timeoutMs = 15 * 60_000): Promise<void> {
  if (held.has(name)) return;
  const dir = join(tmpdir(), `shardcast-test-lock-${name}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(dir, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`the ${name} test lock is held by pid ${holder} for too long`);
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  held.add(name);
  const release = () => {
    if (!held.delete(name)) return;
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', release);
  t.teardown(release);
}
