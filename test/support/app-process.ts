/**
 * Test harness: the API or a worker as its own OS process (`node <entry>`, as the images run them), with its
 * output captured, for tests of what a person at the terminal sees: log lines, signals, exit codes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './stack.ts';

export interface AppProcess {
  proc: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves with the first match of `re` in the output; rejects after `timeoutMs` or on exit. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends `signal` and resolves with how long the process took to exit, in ms. */
  stop(signal?: NodeJS.Signals): Promise<{ ms: number; code: number | string }>;
}

export const API_ENTRY = 'apps/api/src/main.ts';
export const WORKER_ENTRY = 'apps/worker/src/main.ts';

export function spawnApp(entry: string, env: Record<string, string>): AppProcess {
  return spawnCommand([process.execPath, path.join(repoRoot, entry)], env);
}

/**
 * Runs the command line `argv` from the repo root (an image's WORKDIR), with `env` over this
 * process's environment, and with this process's node first on PATH (so `node` means this one).
 */
export function spawnCommand(argv: readonly string[], env: Record<string, string>): AppProcess {
  const [cmd, ...args] = argv as [string, ...string[]];
  const entry = argv.join(' ');
  const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`;
  const proc = spawn(cmd, args, {
    cwd: repoRoot,
    env: { ...process.env, PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    proc,
    output: () => out,
    exited,
    async waitFor(re, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (done) throw new Error(`${entry} exited before printing ${re}:\n${out}`);
        if (Date.now() > until) throw new Error(`${entry} did not print ${re} in ${timeoutMs} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (done) return { ms: 0, code: await exited };
      const t0 = performance.now();
      proc.kill(signal);
      const code = await exited;
      return { ms: performance.now() - t0, code };
    },
  };
}
