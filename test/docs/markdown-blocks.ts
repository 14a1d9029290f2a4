/**
 * The runnable examples of a Markdown file: fenced code blocks whose info string is `<lang> run`
 * (```` ```bash run ````, ```` ```ts run ````). Blocks without `run` are shown, never executed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** One runnable block: where it is (1-based line of its opening fence) and what it says. */
export interface RunnableBlock {
  file: string;
  line: number;
  lang: 'bash' | 'ts';
  code: string;
}

/** Every fenced block of `text` whose info string is `<lang> run`, in order. Unknown languages throw. */
export function runnableBlocks(text: string, file: string): RunnableBlock[] {
  const blocks: RunnableBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, fence, lang, rest] = open as unknown as [string, string, string, string];
    const end = lines.findIndex((l, j) => j > i && l.startsWith(fence) && l.trim() === fence);
    if (end < 0) throw new Error(`${file}:${i + 1}: unclosed code fence`);
    if (rest.trim().split(/\s+/).includes('run')) {
      if (lang !== 'bash' && lang !== 'ts')
        throw new Error(`${file}:${i + 1}: a runnable block must be bash or ts, not "${lang}"`);
      blocks.push({ file, line: i + 1, lang, code: lines.slice(i + 1, end).join('\n') + '\n' });
    }
    i = end;
  }
  return blocks;
}

/** The runnable blocks of a file of the repository (`root`-relative `file`). */
export async function runnableBlocksOf(root: string, file: string): Promise<RunnableBlock[]> {
  return runnableBlocks(await readFile(path.join(root, file), 'utf8'), file);
}
