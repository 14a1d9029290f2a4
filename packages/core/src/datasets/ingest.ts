/**
 * An upload, from the request body to a registered dataset version. The bytes stream to a staging key
 * of the artifact store while they are counted, hashed (SHA-256) and validated; nothing holds the whole
 * file. A valid upload is moved to `datasets/sha256/<hash>` (or dropped, when those bytes are there
 * already) and registered; an invalid one leaves nothing in the store.
 *
 * CSV and JSONL are validated as they stream by. Archives are also written to a local temp file, since
 * a zip's index is at its end (yauzl reads it by random access), and walked once the upload is in.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { DatasetRegistry, NewDatasetVersion } from '../registry/dataset-registry.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { datasetBlobKey as blobKey, datasetStagingKey } from '../storage/layout.ts';
import { DataError, TooLargeError } from '../util/errors.ts';
import { walkArchive, type ArchiveKind, type ArchiveLimits } from './archive.ts';
import { ImageFolderCheck } from './image-archive.ts';
import { csvLineValidator, jsonlLineValidator, oneClassWarning } from './validate-lines.ts';
import type { DatasetUpload, UploadFormat } from '@mlq/contract';
import { DEFAULT_IMAGE_MAX_PIXELS } from '@mlq/contract/env';

export interface IngestOptions {
  /** The dataset's name (checked by the caller: letters, digits, `_`, `.`, `-`). */
  name: string;
  format: UploadFormat;
  store: ArtifactStore;
  registry: DatasetRegistry;
  /** Largest upload in bytes; past it the upload fails with TooLargeError. */
  maxBytes: number;
  limits: ArchiveLimits;
  /**
   * Archives: most pixels (width × height, from each image's header) an image may have
   * (IMAGE_MAX_PIXELS); past it the upload fails with a DataError naming the entry. Default
   * DEFAULT_IMAGE_MAX_PIXELS of packages/contract/src/env.ts.
   */
  imageMaxPixels?: number | undefined;
  /** CSV: the column whose values are counted as classes (default: a column named `label`). */
  label?: string | undefined;
  /** Where archives are spooled (default: the OS temp dir). */
  tmpDir?: string | undefined;
}

/** What validation learned, and what a person should know before jobs use it (not kept with the version). */
type Summary = Omit<NewDatasetVersion, 'name' | 'sha256' | 'bytes'> & { warnings: string[] };

interface Validator {
  write(chunk: Buffer): void | Promise<void>;
  finish(): Promise<Summary>;
  /** Removes anything the validator left (temp files); safe to call twice. */
  cleanup(): Promise<void>;
}

function archiveValidator(kind: ArchiveKind, o: IngestOptions): Validator {
  const tmp = path.join(o.tmpDir ?? os.tmpdir(), `mlq-upload-${randomUUID()}.${kind}`);
  const out = createWriteStream(tmp);
  return {
    async write(chunk) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    },
    async finish() {
      await finished(out.end());
      const check = new ImageFolderCheck(o.imageMaxPixels ?? DEFAULT_IMAGE_MAX_PIXELS);
      const totals = await walkArchive(tmp, kind, o.limits, check.onFile);
      const folder = check.finish();
      const warnings = oneClassWarning(folder.classes, 'images');
      return { format: 'image-folder', archive: kind, ...folder, ...totals, warnings };
    },
    async cleanup() {
      out.destroy();
      await rm(tmp, { force: true });
    },
  };
}

function validatorFor(o: IngestOptions): Validator {
  if (o.format === 'zip' || o.format === 'tar.gz') return archiveValidator(o.format, o);
  const lines = o.format === 'csv' ? csvLineValidator(o.label) : jsonlLineValidator();
  return { write: lines.write, finish: async () => lines.finish(), cleanup: async () => undefined };
}

/**
 * Streams `body` into the store as the next version of `o.name`, and returns it with the upload's
 * `warnings`: what may make jobs on it fail although it is valid (a CSV without a label column, JSONL
 * lines without "y", labels or class folders of one class only). Throws DataError (the bytes are not a valid dataset of that format: the message
 * names the line or archive entry) or TooLargeError.
 */
export async function ingestDataset(body: Readable, o: IngestOptions): Promise<DatasetUpload> {
  const staging = datasetStagingKey(randomUUID());
  const validator = validatorFor(o);
  const hash = createHash('sha256');
  let bytes = 0;
  // The first failure of the stream, so that it is what the caller sees, not the store's echo of it.
  let failure: Error | undefined;
  const fail = (e: Error) => (failure ??= e);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > o.maxBytes)
        return cb(
          fail(new TooLargeError(`the upload is larger than ${o.maxBytes} bytes (DATASET_MAX_BYTES)`)),
        );
      hash.update(chunk);
      try {
        const pending = validator.write(chunk);
        if (pending)
          pending.then(
            () => cb(null, chunk),
            (e: Error) => cb(fail(e)),
          );
        else cb(null, chunk);
      } catch (e) {
        cb(fail(e as Error));
      }
    },
  });
  // Every error of `meter` is recorded by `fail`; this listener keeps one that comes before the store
  // starts reading (it may first create folders) from being thrown as unhandled.
  meter.on('error', () => undefined);
  let ended = false;
  body.once('end', () => (ended = true));
  body.once('error', (e) => meter.destroy(fail(e)));
  body.once('close', () => {
    if (!ended) meter.destroy(fail(new DataError('the upload stopped before its end')));
  });
  body.pipe(meter);
  let kept = false;
  try {
    await o.store.putStream(staging, meter).catch((e: Error) => {
      throw failure ?? e;
    });
    if (failure) throw failure;
    const { warnings, ...summary } = await validator.finish();
    const sha256 = hash.digest('hex');
    const version = await o.registry.add({ name: o.name, sha256, bytes, ...summary }, async (exists) => {
      if (exists && (await o.store.exists(blobKey(sha256)))) return;
      await o.store.move(staging, blobKey(sha256));
      kept = true;
    });
    return { ...version, warnings };
  } finally {
    await validator.cleanup();
    if (!kept) await o.store.delete(staging).catch(() => undefined);
  }
}
