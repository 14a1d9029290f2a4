/**
 * An image folder packed as an archive: one folder per class holding PNG or JPEG images (in sub-folders
 * too), as torchvision's ImageFolder and Keras' `image_dataset_from_directory` read it. Hidden and system
 * entries (dot files, `__MACOSX/`, `Thumbs.db`, `desktop.ini`) are not data. When everything sits in one
 * folder of class folders (what zipping a folder gives), that folder is the root.
 */
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ImageSizeReader, tooManyPixels } from '../data/image-header.ts';
import { isHiddenEntry } from '../data/image-folder.ts';
import { DataError } from '../util/errors.ts';
import type { ClassCounts } from '@mlq/contract';

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** True for an entry that is not data: one in or of a hidden or system folder or file, as the reader skips them. */
export function isIgnoredEntry(name: string): boolean {
  return name.split('/').some(isHiddenEntry);
}

/** Reads an image entry to its end, keeping only what its header needs (image-header.ts). */
async function headerOf(body: Readable): Promise<ImageSizeReader> {
  const reader = new ImageSizeReader();
  for await (const c of body as AsyncIterable<Buffer>) reader.push(c);
  reader.end();
  return reader;
}

/** What an image-folder archive holds, for the upload's answer. */
export interface ImageFolderSummary {
  rows: number;
  classes: ClassCounts;
  root: string;
}

/**
 * Collects the files of an archive walk and checks they make an image folder, and that each image
 * is the PNG or JPEG its extension says of at most `maxPixels` pixels (width × height, from its
 * header: nothing is decoded).
 */
export class ImageFolderCheck {
  private readonly images: string[] = [];
  private readonly others: string[] = [];
  private readonly maxPixels: number;
  /** `maxPixels`: IMAGE_MAX_PIXELS. */
  constructor(maxPixels: number) {
    this.maxPixels = maxPixels;
  }

  /** The walk's onFile: a DataError naming the entry for an image that is not what its extension says, or too large. */
  readonly onFile = async (f: { name: string }, body: Readable): Promise<void> => {
    if (isIgnoredEntry(f.name) || !IMAGE_EXT.test(f.name)) {
      if (!isIgnoredEntry(f.name)) this.others.push(f.name);
      await finished(body.resume());
      return;
    }
    const header = await headerOf(body);
    const format = /\.png$/i.test(f.name) ? 'PNG' : 'JPEG';
    if (header.format !== format) throw new DataError(`archive entry "${f.name}": not a ${format} image`);
    // A header this reader cannot follow is left to the decoder, which checks the size again.
    const why = header.size && tooManyPixels(header.size, this.maxPixels);
    if (why) throw new DataError(`archive entry "${f.name}": ${why}`);
    this.images.push(f.name);
  };

  /** The classes and their image counts; a DataError when the layout is not one folder per class. */
  finish(): ImageFolderSummary {
    const root = this.rootFolder();
    const depth = root ? root.split('/').length : 0;
    const under = (n: string) => (root ? n.startsWith(`${root}/`) : true);
    const classes: ClassCounts = {};
    for (const n of this.images) {
      const parts = n.split('/');
      // Images directly in the root belong to no class: the reader skips them too.
      if (!under(n) || parts.length < depth + 2) continue;
      const c = parts[depth]!;
      classes[c] = (classes[c] ?? 0) + 1;
    }
    const names = Object.keys(classes).sort();
    if (names.length === 0)
      throw new DataError(
        `no class folders: put each class's PNG or JPEG images in a folder of its own (found ${this.images.length} image(s) outside any class folder)`,
      );
    for (const n of this.others) {
      const parts = n.split('/');
      const c = parts[depth];
      if (!under(n) || parts.length < depth + 2 || c === undefined || classes[c] !== undefined) continue;
      const byExt = new Map<string, number>();
      for (const o of this.others.filter((x) => x.split('/')[depth] === c)) {
        const ext = /\.[^./]+$/.exec(o)?.[0]?.toLowerCase() ?? 'without extension';
        byExt.set(ext, (byExt.get(ext) ?? 0) + 1);
      }
      const found = [...byExt].map(([ext, n]) => `${n} ${ext}`).join(', ');
      throw new DataError(`class ${c} has no PNG or JPEG images; found ${found}`);
    }
    return { rows: names.reduce((s, c) => s + classes[c]!, 0), classes: sortKeys(classes), root };
  }

  /** `""`, or the single folder that wraps all class folders. */
  private rootFolder(): string {
    let root = '';
    for (;;) {
      const prefix = root ? `${root}/` : '';
      const rest = this.images.map((n) => n.slice(prefix.length).split('/'));
      const tops = new Set(rest.map((p) => p[0]));
      // One folder, no image directly in it, and images two levels below it: it wraps the class folders.
      if (tops.size !== 1 || rest.some((p) => p.length < 3)) return root;
      root = `${prefix}${rest[0]![0]}`;
    }
  }
}

function sortKeys(o: ClassCounts): ClassCounts {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
