/** Text as error messages show it. */

/**
 * Characters a person cannot see in a message: controls (C0, DEL, C1), format characters (the
 * byte-order mark U+FEFF, zero-width spaces and joiners, bidirectional marks, soft hyphen: Unicode
 * category Cf), line and paragraph separators, and the spaces that look like an ordinary one
 * (no-break, en/em, ideographic...) or like nothing (Hangul fillers).
 */
const INVISIBLE =
  /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\u115F\u1160\u3164\uFFA0]/gu;
const NAMED: Record<string, string> = { '\t': '\\t', '\r': '\\r', '\n': '\\n', '\0': '\\0' };

/**
 * `text` with every invisible character written as an escape (`\t`, `\r`, `\n`, `\0`, else `\uXXXX`),
 * so that "not JSON: Unexpected token" shows the `\uFEFF` it is about. Visible text is unchanged.
 */
export function showInvisible(text: string): string {
  return text.replace(
    INVISIBLE,
    (c) => NAMED[c] ?? `\\u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`,
  );
}

/**
 * A URI's userinfo (`user:password@`) before its host, wherever one appears in `text`.
 * Greedy up to the last `@` before the path, as URL parsers read it: `p@ss` in a password is covered.
 * Not in `dataset://name@3`, whose `@` is the version's.
 */
const USERINFO = /\b(?!dataset:\/\/)([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>`]*@/gi;

/**
 * `text` with the credentials of every URI in it replaced: `http://user:pass@host/x` becomes
 * `http://***@host/x`, so that an error message that echoes a URI never repeats a password.
 */
export function redactUserinfo(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

/**
 * What every error message for a person goes through: credentials redacted, invisible characters
 * shown, and at most MAX_MESSAGE characters kept.
 */
export function forMessage(text: string): string {
  return capMessage(showInvisible(redactUserinfo(text)));
}

/**
 * A value quoted in a message: whole when short, else its first `max` characters and how long it
 * was (`1111…(31457280 characters)`), so that a 30 MB field cannot make a 30 MB error.
 */
export function clip(text: string, max = 40): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} characters)`;
}

/** The longest message a job's failure or log line keeps (Redis stores it, the API and console show it). */
export const MAX_MESSAGE = 2000;

/** `text` cut to MAX_MESSAGE characters (a last guard: the messages themselves quote values clipped). */
export function capMessage(text: string, max = MAX_MESSAGE): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length - max} more characters)`;
}
