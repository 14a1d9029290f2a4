/**
 * Reads the environment-variable tables of the docs (Markdown tables whose first header cell is
 * `variable`) and the defaults of the zod env schemas, so a test can compare them.
 */
/** One row of an env table: its variables (several share a row: `A` / `B`) and its default cell. */
export interface EnvRow {
  heading: string;
  line: number;
  vars: string[];
  defaultCell: string;
}

const cells = (line: string) =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

/** Every row of every `| variable | … | default |` table, with the heading it sits under. */
export function envTableRows(markdown: string): EnvRow[] {
  const rows: EnvRow[] = [];
  const lines = markdown.split('\n');
  let heading = '';
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    if (/^#{1,6} /.test(l)) heading = l.replace(/^#+ /, '');
    if (!l.startsWith('|')) continue;
    const head = cells(l);
    if (head[0] !== 'variable' || head.at(-1) !== 'default') continue;
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
      const c = cells(lines[i]!);
      if (c.length !== head.length)
        throw new Error(`line ${i + 1}: ${c.length} cells where the header has ${head.length}`);
      const vars = [...c[0]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
      rows.push({ heading, line: i + 1, vars, defaultCell: c.at(-1)! });
    }
  }
  return rows;
}

interface ZodInternals {
  _zod: { def: { type: string; defaultValue?: unknown; in?: unknown; out?: unknown; innerType?: unknown } };
}

/**
 * A field's default as the environment would spell it (before any transform): `3000` → `'3000'`,
 * `''` for an empty list; `undefined` when the field is optional without a default.
 */
export function rawDefault(field: unknown): string | undefined {
  let t = field as ZodInternals;
  for (;;) {
    const d = t._zod.def;
    if (d.type === 'default') return String(d.defaultValue);
    if (d.type === 'optional') return undefined;
    // A pipe starting with a transform is z.preprocess(): the default is the output schema's.
    if (d.type === 'pipe')
      t = ((d.in as ZodInternals)._zod.def.type === 'transform' ? d.out : d.in) as ZodInternals;
    else if (d.innerType) t = d.innerType as ZodInternals;
    else return undefined;
  }
}

/** Every variable of an object schema with its raw default. */
export function schemaDefaults(schema: { shape: Record<string, unknown> }): Map<string, string | undefined> {
  return new Map(Object.entries(schema.shape).map(([k, f]) => [k, rawDefault(f)]));
}
