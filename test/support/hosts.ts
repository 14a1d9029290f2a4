/**
 * Processes that stand for separate machines: each runs a repo entry point (`node <file>`, as the images do)
 * from a working directory of its own, with only the environment it is given on top of PATH and HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './stack.ts';

export interface HostProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `file` (relative to the repo) with this node, or the command line `argv`, and resolves once
 * its output matches `ready`.
 */
export async function startHost(
  file: string | readonly string[],
  opts: { cwd: string; env: Record<string, string>; ready: RegExp; timeoutMs?: number },
): Promise<HostProcess & { ready: RegExpExecArray }> {
  const [cmd, ...args] = typeof file === 'string' ? [process.execPath, path.join(repoRoot, file)] : file;
  const proc = spawn(cmd!, args, {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? opts.cwd, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`${file} did not start in time:\n${out}`)),
      opts.timeoutMs ?? 60_000,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = opts.ready.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    void exited.then((c) => {
      clearTimeout(t);
      reject(new Error(`${file} exited (${c}) before it was ready:\n${out}`));
    });
  });
  return { proc, ready, output: () => out, exited, kill: (s = 'SIGTERM') => void proc.kill(s) };
}
