/** One server-sent event (only the fields chat completions use). */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * An incremental parser of the `text/event-stream` format: feed it decoded text in chunks of any
 * size (a line or a CRLF may be split across chunks); it returns the events completed so far.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      let end = -1;
      for (let i = start; i < this.buffer.length; i++) {
        const c = this.buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          end = i;
          break;
        }
      }
      if (end < 0) break;
      let next = end + 1;
      if (this.buffer.charCodeAt(end) === 13) {
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (end === this.buffer.length - 1) break;
        if (this.buffer.charCodeAt(end + 1) === 10) next = end + 2;
      }
      this.line(this.buffer.slice(start, end), out);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** The stream ended: a last line without a newline and a last event without a blank line still count. */
  end(): SseEvent[] {
    const out: SseEvent[] = [];
    if (this.buffer) this.line(this.buffer.replace(/\r$/, ''), out);
    this.buffer = '';
    this.line('', out);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n') });
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
  }
}
