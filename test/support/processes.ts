/** Processes by pid, from /proc (Linux): whether one still runs, and the children of one. */
import { readFileSync } from 'node:fs';

/** Fields of /proc/<pid>/stat after the command (which is in parentheses): state, ppid, ... */
function stat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Ticks after boot at which the process started: with the pid, it names one process for good. */
export function startTime(pid: number): string | undefined {
  return stat(pid)?.[19];
}

/**
 * Whether the process `pid` that started at `started` (startTime) still runs: a zombie (exited, not
 * yet reaped, which an init that does not reap leaves for good) does not.
 */
export function running(pid: number, started: string | undefined): boolean {
  const s = stat(pid);
  return s !== undefined && s[0] !== 'Z' && s[19] === started;
}

/** The children of process `pid`. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Resolves true once none of `procs` runs, false if some still do after `timeoutMs`. */
export async function allGone(procs: { pid: number; started: string | undefined }[], timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!procs.some((p) => running(p.pid, p.started))) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGKILLs whichever of `procs` still runs (a test's cleanup). */
export function killLeftovers(procs: { pid: number; started: string | undefined }[]): number[] {
  const left = procs.filter((p) => running(p.pid, p.started)).map((p) => p.pid);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  return left;
}

/**
 * Memory of process `pid` from /proc/<pid>/status, in bytes: `rss` its resident set now (VmRSS),
 * `peak` the most it has ever had resident (VmHWM); undefined once it has exited.
 */
export function memoryOf(pid: number): { rss: number; peak: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  const rss = kb('VmRSS');
  const peak = kb('VmHWM');
  return Number.isNaN(rss) || Number.isNaN(peak) ? undefined : { rss, peak };
}
