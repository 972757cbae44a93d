// File contents by (session, commit, path). Content at a commit is immutable, so an entry never
// goes stale; the cache is bounded in bytes (least recently used out first), and concurrent
// reads of one file share one request.

export class ContentCache {
  private readonly entries = new Map<string, Uint8Array>();
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  get size(): number {
    return this.bytes;
  }

  async get(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // most recently used goes last
      this.entries.set(key, hit);
      return hit;
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const loading = load().then(
      (content) => {
        this.inFlight.delete(key);
        this.store(key, content);
        return content;
      },
      (err: unknown) => {
        this.inFlight.delete(key); // a failure is not cached: the next read tries again
        throw err;
      },
    );
    this.inFlight.set(key, loading);
    return loading;
  }

  private store(key: string, content: Uint8Array): void {
    if (content.byteLength > this.maxBytes) return;
    this.entries.set(key, content);
    this.bytes += content.byteLength;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= value.byteLength;
    }
  }
}
