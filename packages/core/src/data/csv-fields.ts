/**
 * The fields of one CSV line, as upload validation (datasets/validate-lines.ts) and the reader jobs
 * train from (data/csv.ts) both read them, so that an upload that validates reads the same way:
 *
 * - Fields end at a comma. An unquoted field is its text trimmed; a quote inside it is text (`5"`, `a"b`).
 * - A field whose first character other than spaces and tabs is `"` is quoted (RFC 4180): it ends at
 *   the next quote that is not doubled, `""` inside it is one quote, and commas inside it are text.
 *   Spaces and tabs before its opening and after its closing quote are dropped (`1, "a,b" ,3` is
 *   `1`, `a,b`, `3`); any other text after the closing quote is an error naming the line and field.
 * - A quoted field cannot span lines: both callers end lines at LF, CR or CRLF before splitting.
 *
 * Error messages name the place through `where`, called only to throw: the reader's rows build no
 * strings for a message they do not need.
 */
import { clip, DataError } from '../util/errors.ts';

/** The place a message names (`dataset://t@1, line 12`, `data.csv:12`, `line 12`); called only on an error. */
export type Where = () => string;

export const COMMA = 44;
export const QUOTE = 34;
const SPACE = 32;
const TAB = 9;
/** How much of a field an error message quotes. */
const SHOWN = 40;

/** The first index at or after `i` (and before `e`) that is not a space or a tab. */
export function skipBlanks(buf: Uint8Array, i: number, e: number): number {
  while (i < e && (buf[i] === SPACE || buf[i] === TAB)) i++;
  return i;
}

/** A quoted field's text, and where the line goes on after it: at the comma that ends it, or at the line's end. */
export interface QuotedField {
  text: string;
  end: number;
}

/** `field 2 ("b")`, or `field 2` when the columns are not known (the header). */
function fieldName(n: number, names: readonly string[] | undefined): string {
  const name = names?.[n - 1];
  return name === undefined ? `field ${n}` : `field ${n} ("${clip(name, 80)}")`;
}

/**
 * Reads the quoted field whose opening quote is at `q` (field number `n`, from 1) of the line that
 * ends at `e`. `names` (the header's columns, when known) name the field in messages.
 */
export function readQuoted(
  buf: Buffer,
  q: number,
  e: number,
  where: Where,
  n: number,
  names?: readonly string[],
): QuotedField {
  let text = '';
  let j = q + 1;
  for (;;) {
    const close = buf.indexOf(QUOTE, j);
    if (close < 0 || close >= e)
      throw new DataError(
        `${where()}: ${fieldName(n, names)}: a quoted field is not closed (fields cannot span lines)`,
      );
    text += buf.toString('utf8', j, close);
    if (close + 1 < e && buf[close + 1] === QUOTE) {
      text += '"';
      j = close + 2;
      continue;
    }
    const end = skipBlanks(buf, close + 1, e);
    if (end < e && buf[end] !== COMMA) {
      let stop = end;
      while (stop < e && buf[stop] !== COMMA) stop++;
      const raw = buf.toString('utf8', q, stop);
      const shown = clip(raw, SHOWN);
      throw new DataError(
        `${where()}: ${fieldName(n, names)}: text after the closing quote: ${shown} ` +
          '(a quote inside a quoted field is written twice: "")',
      );
    }
    return { text, end };
  }
}

/**
 * Splits the line `buf[s .. e)` into its fields' text (a header, or a row with a quote in it).
 * `names` (the header's columns, when known) name a field in messages.
 */
export function splitFields(
  buf: Buffer,
  s: number,
  e: number,
  where: Where,
  names?: readonly string[],
): string[] {
  const out: string[] = [];
  let i = s;
  for (;;) {
    const start = skipBlanks(buf, i, e);
    if (start < e && buf[start] === QUOTE) {
      const f = readQuoted(buf, start, e, where, out.length + 1, names);
      out.push(f.text);
      i = f.end;
    } else {
      let j = start;
      while (j < e && buf[j] !== COMMA) j++;
      out.push(buf.toString('utf8', start, j).trim());
      i = j;
    }
    if (i >= e) return out;
    i++;
  }
}
