/**
 * A server-sent events parser over a fetch body stream (WHATWG streams: Node 18+ and browsers alike).
 * EventSource is not used because it cannot send an Authorization header.
 */

/** One dispatched event: its `event:` name (default `message`) and its `data:` lines joined by newlines. */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * Yields the events of a `text/event-stream` body until the stream ends. Comments (`: ping`) are
 * skipped; an event not followed by a blank line before the end of the stream is dropped, as the
 * specification says. Breaking out of the loop cancels the stream.
 */
export async function* parseSse(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      if (done && buffer.endsWith('\r')) buffer += '\n';
      // Lines end with \n, \r\n or \r; a trailing \r may be the first half of a \r\n still to come.
      let lineEnd: RegExpExecArray | null;
      while ((lineEnd = /\r\n|\n|\r(?=[^\n])/.exec(buffer)) !== null) {
        const line = buffer.slice(0, lineEnd.index);
        buffer = buffer.slice(lineEnd.index + lineEnd[0].length);
        if (line === '') {
          if (data.length > 0)
            yield { event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (done) return;
    }
  } finally {
    // Releases the connection when the consumer stops early; a no-op on a finished stream.
    await reader.cancel().catch(() => undefined);
  }
}
