import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NotFoundError } from '../util/errors.ts';
import { checkKey, type ArtifactStore } from './artifact-store.ts';
import { S3ArtifactStore } from './s3-store.ts';

/** The embedded default store: a directory on a local or shared (NFS) file system. */
export class FileArtifactStore implements ArtifactStore {
  readonly uri: string;
  readonly root: string;

  constructor(uriOrDir: string) {
    this.root = uriOrDir.startsWith('file://') ? fileURLToPath(uriOrDir) : path.resolve(uriOrDir);
    this.uri = pathToFileURL(this.root).href.replace(/\/$/, '');
  }

  pathOf(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  localPath(key: string): string {
    return this.pathOf(key);
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    const dest = this.pathOf(key);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomUUID()}.tmp`;
    await writeFile(tmp, data);
    await rename(tmp, dest);
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const dest = this.pathOf(key);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomUUID()}.tmp`;
    await copyFile(localPath, tmp);
    await rename(tmp, dest);
  }

  async putStream(key: string, body: Readable): Promise<void> {
    const dest = this.pathOf(key);
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomUUID()}.tmp`;
    try {
      await pipeline(body, createWriteStream(tmp));
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async getStream(key: string): Promise<{ body: Readable; bytes: number }> {
    const file = this.pathOf(key);
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile()) throw new NotFoundError(`artifact not found: ${this.uriOf(key)}`);
    return { body: createReadStream(file), bytes: s.size };
  }

  async move(from: string, to: string): Promise<void> {
    const dest = this.pathOf(to);
    await mkdir(path.dirname(dest), { recursive: true });
    try {
      await rename(this.pathOf(from), dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError(`artifact not found: ${this.uriOf(from)}`);
      throw e;
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError(`artifact not found: ${this.uriOf(key)}`);
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = prefix ? this.pathOf(prefix.replace(/\/$/, '')) : this.root;
    let entries: string[];
    try {
      entries = (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((d) => d.isFile() && !d.name.endsWith('.tmp'))
        .map((d) => path.relative(this.root, path.join(d.parentPath, d.name)).split(path.sep).join('/'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return entries.sort();
  }

  async delete(keyOrPrefix: string): Promise<void> {
    await rm(this.pathOf(keyOrPrefix), { recursive: true, force: true });
  }

  uriOf(key: string): string {
    return `${this.uri}/${checkKey(key)}`;
  }

  keyOf(uri: string): string | undefined {
    return uri.startsWith(`${this.uri}/`) ? uri.slice(this.uri.length + 1) : undefined;
  }
}

/** Opens the store named by an `ARTIFACT_STORE` URI. */
export function openArtifactStore(uri: string): ArtifactStore {
  if (uri.startsWith('file://')) return new FileArtifactStore(uri);
  if (uri.startsWith('s3://')) return new S3ArtifactStore(uri);
  throw new Error(`unsupported ARTIFACT_STORE "${uri}": use file:///abs/dir or s3://bucket/prefix`);
}
