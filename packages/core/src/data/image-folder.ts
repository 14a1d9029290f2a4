/**
 * The `{"format": "image-folder"}` dataset: one sub-folder per class (the sorted folder names are the
 * class names), PNG and JPEG images in each, at any depth (as torchvision's ImageFolder and Keras'
 * `image_dataset_from_directory` take them), decoded, turned upright and resized by image-decode.ts.
 * Hidden and system entries (dot files, `__MACOSX`, `Thumbs.db`, `desktop.ini`...) are not data.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { seededPermutation, type imageFolderDatasetSchema } from '@mlq/contract';
import { DEFAULT_IMAGE_MAX_PIXELS } from '@mlq/contract/env';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError } from '../util/errors.ts';
import type { Chunk, DatasetInfo, DatasetSource, OpenDatasetOptions } from './dataset.ts';
import { checkImagePixels, imageToFeatures } from './image-decode.ts';

export type ImageFolderSpec = z.infer<typeof imageFolderDatasetSchema>;

/** The files read as images; others are counted by extension and named when a class has no images. */
const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** What macOS, Windows and NAS boxes leave beside photos (compared lower-case). */
const SYSTEM_ENTRIES = new Set([
  '__macosx',
  'thumbs.db',
  'ehthumbs.db',
  'desktop.ini',
  '$recycle.bin',
  'system volume information',
  '@eadir',
]);

/** True for a hidden or system entry: a dot file or folder (`.DS_Store`, `._cat.png`) or one of SYSTEM_ENTRIES. */
export function isHiddenEntry(name: string): boolean {
  return name.startsWith('.') || SYSTEM_ENTRIES.has(name.toLowerCase());
}

/** How messages name a local path under the dataset's root (see `namer`). */
type Shown = (p: string) => string;

/**
 * Names paths under `root` for messages: the path itself for a user's own folder; for a located
 * upload or fetched archive (`opts.shownAs`) its URI, and for a file in it the entry's path inside the
 * archive: `cat/1.png in dataset://pets@1`.
 */
function namer(root: string, opts: OpenDatasetOptions): Shown {
  const s = opts.shownAs;
  // A user's own folder (file://) is shown as its paths.
  if (!s || (s.name === root && s.inside === undefined)) return (p) => p;
  return (p) => {
    const rel = path.relative(root, p).split(path.sep).join('/');
    const entry = path.posix.join(s.inside ?? '', rel);
    return entry === '.' || entry === '' ? s.name : `${entry} in ${s.name}`;
  };
}

/** Reads one image file; a failure is a DataError naming it. */
async function readImage(file: string, shown: Shown): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new DataError(`unreadable image ${shown(file)}: ${(e as Error).message}`);
  }
}

/** The visible entries of a folder, sorted by name; a DataError naming it if it cannot be read. */
async function entriesOf(dir: string, shown: Shown): Promise<Dirent[]> {
  try {
    const all = await readdir(dir, { withFileTypes: true });
    return all.filter((d) => !isHiddenEntry(d.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (e) {
    throw new DataError(`cannot read the folder ${shown(dir)}: ${(e as Error).message}`);
  }
}

/** Files under `dir` at any depth (sorted, depth-first), hidden and system entries left out. */
async function filesUnder(dir: string, shown: Shown): Promise<string[]> {
  const out: string[] = [];
  for (const d of await entriesOf(dir, shown)) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) out.push(...(await filesUnder(p, shown)));
    else if (d.isFile()) out.push(p);
  }
  return out;
}

/** "6 .webp, 1 .txt": the other files of a class, most common extension first. */
function describeOthers(files: string[]): string {
  const byExt = new Map<string, number>();
  for (const f of files) {
    const ext = path.extname(f).toLowerCase() || '(no extension)';
    byExt.set(ext, (byExt.get(ext) ?? 0) + 1);
  }
  return [...byExt]
    .sort((a, b) => b[1] - a[1])
    .map(([ext, n]) => `${n} ${ext}`)
    .join(', ');
}

interface Item {
  file: string;
  label: number;
}

interface Listing {
  items: Item[];
  names: string[];
  /** Files that are not PNG or JPEG, per class folder, for the job log. */
  notes: string[];
}

/** The images of every class folder (at any depth), class-major in sorted order, and the class names. */
async function listImages(
  root: string,
  classNames: readonly string[] | undefined,
  shown: Shown,
): Promise<Listing> {
  const isDir = await stat(root).then(
    (s) => s.isDirectory(),
    (e: Error) => {
      throw new DataError(`cannot read the folder ${shown(root)}: ${e.message}`);
    },
  );
  if (!isDir)
    throw new DataError(
      `${shown(root)} is not a folder (an image-folder dataset is a folder of class folders)`,
    );
  const entries = await entriesOf(root, shown);
  const folders = entries.filter((d) => d.isDirectory()).map((d) => d.name);
  if (folders.length === 0) {
    const loose = entries.filter((d) => d.isFile() && IMAGE_EXT.test(d.name)).length;
    const found = loose > 0 ? `; it holds ${loose} images directly, put them in one folder per class` : '';
    throw new DataError(`${shown(root)} has no class folders (one sub-folder per class)${found}`);
  }
  // With the model's class names (evaluate), folder "cat" must mean the class the model calls "cat".
  const names = classNames ? [...classNames] : folders;
  const items: Item[] = [];
  const notes: string[] = [];
  for (const folder of folders) {
    const label = names.indexOf(folder);
    if (label < 0)
      throw new DataError(
        `${shown(path.join(root, folder))}: unknown label "${folder}"; the model's classes are ${names.join(', ')}`,
      );
    const files = await filesUnder(path.join(root, folder), shown);
    const images = files.filter((f) => IMAGE_EXT.test(f));
    const others = files.filter((f) => !IMAGE_EXT.test(f));
    if (images.length === 0) {
      const found = others.length > 0 ? `found ${describeOthers(others)}` : 'the folder is empty';
      throw new DataError(
        `class ${folder} has no PNG or JPEG images; ${found} (${shown(path.join(root, folder))})`,
      );
    }
    if (others.length > 0)
      notes.push(`class ${folder}: skipped ${describeOthers(others)} (only PNG and JPEG are read)`);
    for (const file of images) items.push({ file, label });
  }
  return { items, names, notes };
}

/**
 * Opens an image-folder dataset. Rows come in one fixed shuffled order (seed 0) of the sorted file
 * list, so classes are mixed: a validation split (the last rows) and `limit` see every class.
 * Listing it reads every file once (for the hash) and checks its declared size against
 * `opts.imageMaxPixels`: a larger image is a DataError naming it before anything is decoded.
 */
export function imageFolderSource(spec: ImageFolderSpec, opts: OpenDatasetOptions): DatasetSource {
  const [h, w] = spec.imageSize;
  const channels = spec.channels;
  const maxPixels = opts.imageMaxPixels ?? DEFAULT_IMAGE_MAX_PIXELS;
  const width = h * w * channels;
  let pending: Promise<{ info: DatasetInfo; items: Item[]; shown: Shown }> | undefined;
  const scan = async () => {
    const root = await resolveDataPath(spec.uri, opts.dataRoots);
    const shown = namer(root, opts);
    const { items: sorted, names, notes } = await listImages(root, opts.classNames, shown);
    const order = seededPermutation(sorted.length, 0);
    const rows = Math.min(sorted.length, spec.limit ?? Infinity);
    const items = Array.from({ length: rows }, (_, i) => sorted[order[i]!]!);
    const hash = createHash('sha256').update(
      JSON.stringify({ f: 'image-folder', size: spec.imageSize, c: channels }),
    );
    const classCounts = new Array<number>(names.length).fill(0);
    // The hash covers each file's raw bytes and decodes nothing, so info() stays cheap (the
    // decoded-example cache is keyed by it). Only the headers are read, for the size: an image over
    // the limit fails the job here, before any decoding. A broken image fails the job when its chunk
    // is decoded, which training does first, into that cache.
    for (const it of items) {
      const bytes = await readImage(it.file, shown);
      checkImagePixels(bytes, shown(it.file), maxPixels);
      hash.update(`${path.relative(root, it.file)}\n${it.label}\n`).update(bytes);
      classCounts[it.label]!++;
    }
    const info: DatasetInfo = {
      featureShape: [h, w, channels],
      numClasses: names.length,
      classNames: names,
      rows,
      classCounts,
      hash: hash.digest('hex').slice(0, 16),
      ...(notes.length > 0 ? { notes } : {}),
    };
    return { info, items, shown };
  };
  const get = () => (pending ??= scan());
  return {
    info: async () => (await get()).info,
    async *chunks({ chunkSize, start = 0 }): AsyncIterable<Chunk> {
      const { items, shown } = await get();
      for (let s = start; s < items.length; s += chunkSize) {
        const count = Math.min(chunkSize, items.length - s);
        const x = new Float32Array(count * width);
        const y = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const it = items[s + i]!;
          const file = shown(it.file);
          await imageToFeatures(
            await readImage(it.file, shown),
            file,
            spec.imageSize,
            channels,
            x,
            i * width,
            maxPixels,
          );
          y[i] = it.label;
        }
        yield { start: s, count, x, y };
      }
    },
  };
}
