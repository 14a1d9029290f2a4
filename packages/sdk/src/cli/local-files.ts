/**
 * Files on the caller's machine: every problem with one (missing, a directory, unreadable, an output
 * directory that does not exist, a full disk) is a `LocalFileError`, which main.ts prints as one line
 * with exit code 2.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

/** A file of the caller's that cannot be read or written: exit code 2, one line. */
export class LocalFileError extends Error {
  override name = 'LocalFileError';
}

/** Words for the errno codes a file operation gives. */
const reasons: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/** The errno code of a Node system error (`ENOENT`...), if `e` is one. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Why a file operation failed, in words: `no such file or directory`, `permission denied`... */
export function fileProblem(e: unknown): string {
  const code = errnoCode(e);
  if (code && reasons[code]) return reasons[code];
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0] ?? message;
}

/**
 * Checks that `file` (relative to `cwd`) is a regular file this process can read and returns its
 * absolute path. Throws `LocalFileError` (`cannot read <file>: <why>`) otherwise.
 */
export async function readableFile(cwd: string, file: string): Promise<string> {
  const p = path.resolve(cwd, file);
  const fail = (why: string) => new LocalFileError(`cannot read ${file}: ${why}`);
  const st = await stat(p).catch((e: unknown) => {
    throw fail(fileProblem(e));
  });
  if (st.isDirectory()) throw fail('it is a directory');
  if (!st.isFile()) throw fail('not a regular file');
  // Opening it is the only sure test of permission (ACLs, root, read-only mounts).
  const h = await open(p, 'r').catch((e: unknown) => {
    throw fail(fileProblem(e));
  });
  await h.close();
  return p;
}

/**
 * Checks that `file` (relative to `cwd`) can be created or overwritten: its directory exists and is
 * writable, and it is not itself a directory. Returns its absolute path; throws `LocalFileError`
 * (`cannot write <file>: <why>`) otherwise. Nothing is created.
 */
export async function writableFile(cwd: string, file: string): Promise<string> {
  const p = path.resolve(cwd, file);
  const fail = (why: string) => new LocalFileError(`cannot write ${file}: ${why}`);
  const dir = path.dirname(p);
  const d = await stat(dir).catch((e: unknown) => {
    throw fail(
      errnoCode(e) === 'ENOENT' ? `the directory ${dir} does not exist` : `${dir}: ${fileProblem(e)}`,
    );
  });
  if (!d.isDirectory()) throw fail(`${dir} is not a directory`);
  const st = await stat(p).catch(() => undefined);
  if (st?.isDirectory()) throw fail('it is a directory');
  return p;
}
