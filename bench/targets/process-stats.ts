/**
 * Readings of a target process from /proc (Linux): CPU time of all its threads
 * (utime + stime, in clock ticks of 10 ms, including threads that already ended),
 * resident memory, thread count and open descriptors.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ: 100 on every Linux architecture Node supports. */
const TICKS_PER_SECOND = 100;

/** One reading of a process. */
export interface ProcessSample {
  /** User + system CPU time, µs (10 ms resolution). */
  cpuUs: number;
  /** Resident set size, KiB. */
  rssKb: number;
  threads: number;
  /** Open file descriptors (sockets included). */
  fds: number;
}

/** Reads a process's CPU, memory, threads and descriptors. Throws if it is gone. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
  const threads = /^Threads:\s+(\d+)/m.exec(status);
  let fds = 0;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    fds = -1;
  }
  return {
    cpuUs: ((utime + stime) * 1e6) / TICKS_PER_SECOND,
    rssKb: rss ? Number(rss[1]) : 0,
    threads: threads ? Number(threads[1]) : 0,
    fds,
  };
}

/**
 * Sums the readings of several processes (a target made of many instances): CPU,
 * memory, threads and descriptors add up. Throws if one of them is gone.
 */
export function sampleProcesses(pids: readonly number[]): ProcessSample {
  const sum: ProcessSample = { cpuUs: 0, rssKb: 0, threads: 0, fds: 0 };
  for (const pid of pids) {
    const s = sampleProcess(pid);
    sum.cpuUs += s.cpuUs;
    sum.rssKb += s.rssKb;
    sum.threads += s.threads;
    sum.fds = sum.fds < 0 || s.fds < 0 ? -1 : sum.fds + s.fds;
  }
  return sum;
}

/**
 * CPU time the whole machine spent busy (user, nice, system, irq, softirq; all CPUs
 * together, steal left out) since boot, µs, from the first line of /proc/stat.
 */
export function hostBusyUs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const [, user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).map(Number);
  return ((user + nice + system + irq + softirq) * 1e6) / TICKS_PER_SECOND;
}
