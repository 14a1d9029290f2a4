/**
 * A least-recently-used map bounded by entry count and by total bytes. Each predict thread keeps its
 * loaded models in one; evicted values go to `onEvict` (which frees their weights).
 */
/** An LRU map whose bounds are an entry count and a byte total. */
export class SizedLru<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private total = 0;

  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly onEvict: (key: string, value: V) => void;
  constructor(
    maxEntries: number,
    maxBytes: number,
    onEvict: (key: string, value: V) => void = () => undefined,
  ) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.onEvict = onEvict;
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  /** The value, marked as most recently used. */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    // A Map iterates in insertion order: re-inserting moves the key to the "recent" end.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Adds a value and evicts the oldest entries until both bounds hold again. The new entry itself is
   * never evicted: a model larger than the byte bound is still served, alone.
   * @returns the keys evicted.
   */
  set(key: string, value: V, bytes: number): string[] {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.total -= old.bytes;
      if (old.value !== value) this.onEvict(key, old.value);
    }
    this.entries.set(key, { value, bytes });
    this.total += bytes;
    const evicted: string[] = [];
    for (const [k, e] of this.entries) {
      if (k === key || (this.entries.size <= this.maxEntries && this.total <= this.maxBytes)) break;
      this.entries.delete(k);
      this.total -= e.bytes;
      evicted.push(k);
      this.onEvict(k, e.value);
    }
    return evicted;
  }

  delete(key: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    this.total -= e.bytes;
    this.onEvict(key, e.value);
    return true;
  }

  clear(): void {
    for (const k of [...this.entries.keys()]) this.delete(k);
  }
}
