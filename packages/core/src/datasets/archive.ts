/**
 * Walks the files of a `.zip` (yauzl) or `.tar.gz` (zlib + tar-stream) archive safely: the one place
 * that decides which archives are acceptable, used both to validate an upload and to extract it on a
 * worker. Refused, as a DataError naming the entry: absolute paths and `..`, symlinks, hard links and
 * other special files, duplicate names, encrypted entries, more entries than `maxFiles`, more expanded
 * bytes than `maxExpandedBytes` (checked on the declared sizes before reading, and on the bytes read),
 * and any archive the libraries cannot read to the end (truncated, bad CRC, bad gzip).
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import { DataError } from '../util/errors.ts';

export type ArchiveKind = 'zip' | 'tar.gz';

export interface ArchiveLimits {
  /** Most entries (files and folders) an archive may hold. */
  maxFiles: number;
  /** Most bytes its files may expand to, in all. */
  maxExpandedBytes: number;
}

/** A regular file of an archive: its normalized path (`cat/1.png`) and size once expanded. */
export interface ArchiveFile {
  name: string;
  size: number;
}

export interface ArchiveTotals {
  files: number;
  expandedBytes: number;
}

/** `body` must be read to its end (or destroyed with an error) before the walk goes on. */
export type OnArchiveFile = (file: ArchiveFile, body: Readable) => Promise<void>;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Checks and normalizes an entry's path; throws a DataError naming it. */
export function checkEntryName(raw: string): string {
  const bad = (why: string) => new DataError(`archive entry "${raw}": ${why}`);
  if (raw.includes('\0')) throw bad('the name holds a NUL character');
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[a-zA-Z]:/.test(raw))
    throw bad('an absolute path is not allowed');
  const parts = raw.split(/[\\/]/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad('a path that climbs out with ".." is not allowed');
  return parts.join('/');
}

/** Counts entries and expanded bytes against the limits. */
class Budget {
  entries = 0;
  files = 0;
  bytes = 0;
  private readonly names = new Set<string>();
  private readonly limits: ArchiveLimits;
  constructor(limits: ArchiveLimits) {
    this.limits = limits;
  }

  entry(name: string, size: number, isFile: boolean): void {
    if (++this.entries > this.limits.maxFiles)
      throw new DataError(`the archive has more than ${this.limits.maxFiles} entries (the limit)`);
    if (this.names.has(name)) throw new DataError(`archive entry "${name}" appears twice`);
    this.names.add(name);
    if (!isFile) return;
    this.files++;
    this.bytes += size;
    if (this.bytes > this.limits.maxExpandedBytes)
      throw new DataError(
        `the archive expands to more than ${this.limits.maxExpandedBytes} bytes (the limit; at entry "${name}")`,
      );
  }
}

/** Walks every regular file of an archive file, in archive order. */
export async function walkArchive(
  file: string,
  kind: ArchiveKind,
  limits: ArchiveLimits,
  onFile: OnArchiveFile,
): Promise<ArchiveTotals> {
  const budget = new Budget(limits);
  if (kind === 'zip') await walkZip(file, budget, onFile);
  else await walkTarGz(file, budget, limits, onFile);
  return { files: budget.files, expandedBytes: budget.bytes };
}

/** yauzl's own messages for unsafe names, rewritten to name the entry as ours do. */
function zipError(e: Error): DataError {
  if (e instanceof DataError) return e;
  const m = /^(absolute path|invalid relative path|invalid characters in fileName): (.*)$/s.exec(e.message);
  if (m) return new DataError(`archive entry "${m[2]}": ${m[1]}`);
  return new DataError(`broken zip archive: ${e.message}`);
}

async function walkZip(file: string, budget: Budget, onFile: OnArchiveFile): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    // strictFileNames off: Windows tools' backslashes read as "/"; yauzl still refuses ".." and absolute names.
    zip = await yauzl.openPromise(file, { lazyEntries: true, strictFileNames: false, autoClose: true });
  } catch (e) {
    throw zipError(e as Error);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => reject(zipError(e));
      zip.on('error', fail);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        zipEntry(zip, entry, budget, onFile).then(() => zip.readEntry(), fail);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}

async function zipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, budget: Budget, onFile: OnArchiveFile) {
  const name = checkEntryName(entry.fileName);
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  const isDir = entry.fileName.endsWith('/') || mode === S_IFDIR;
  if (mode === S_IFLNK) throw new DataError(`archive entry "${name}": symbolic links are not allowed`);
  if (mode !== 0 && mode !== S_IFREG && mode !== S_IFDIR)
    throw new DataError(`archive entry "${name}": only files and folders are allowed`);
  budget.entry(name, entry.uncompressedSize, !isDir);
  if (isDir || name === '') return;
  if (entry.isEncrypted())
    throw new DataError(`archive entry "${name}": encrypted entries are not supported`);
  // yauzl checks the bytes read against the declared size (validateEntrySizes) and the CRC.
  const body = await zip.openReadStreamPromise(entry);
  await onFile({ name, size: entry.uncompressedSize }, body);
}

/** Passes bytes through until more than `limit` have gone by. */
function byteLimit(limit: number, what: string): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb(n > limit ? new DataError(`${what} expands to more than ${limit} bytes (the limit)`) : null, chunk);
    },
  });
}

async function walkTarGz(
  file: string,
  budget: Budget,
  limits: ArchiveLimits,
  onFile: OnArchiveFile,
): Promise<void> {
  const extract = tar.extract();
  // The tar stream itself is bounded too: headers and padding add at most ~1.5 KiB per entry.
  const cap = byteLimit(limits.maxExpandedBytes + limits.maxFiles * 1536 + (1 << 20), 'the archive');
  const source = createReadStream(file);
  const gunzip = createGunzip();
  const fail = (e: Error) => extract.destroy(e);
  for (const s of [source, gunzip, cap]) s.on('error', fail);
  source.pipe(gunzip).pipe(cap).pipe(extract);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const name = checkEntryName(h.name);
      if (h.type === 'symlink' || h.type === 'link')
        throw new DataError(
          `archive entry "${name}": ${h.type === 'link' ? 'hard' : 'symbolic'} links are not allowed`,
        );
      const isFile = h.type === 'file' || h.type === 'contiguous-file';
      if (!isFile && h.type !== 'directory')
        throw new DataError(`archive entry "${name}": only files and folders are allowed (found ${h.type})`);
      budget.entry(name, h.size ?? 0, isFile);
      // tar-stream's entries are streamx streams: give onFile a Node one over the same bytes.
      if (isFile && name !== '') await onFile({ name, size: h.size ?? 0 }, Readable.from(entry));
      else entry.resume();
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`broken tar.gz archive: ${(e as Error).message}`);
  } finally {
    source.destroy();
  }
}
