/**
 * A Map for entries that come and go all the time (open commands, a window's unwritten rows),
 * kept by something that lives as long as the hub.
 *
 * Why not a plain Map: once a long-lived Map has been promoted to V8's old generation, churning
 * short-lived entries through it keeps them alive past the young-generation collections that
 * would otherwise free them. Measured on Node 20: a Map holding five live entries at a time,
 * added and deleted in turn, had about 1.3 MB promoted to the old generation per scavenge,
 * against 14 KB for an array holding the same five; in the hub that was the whole cost of every
 * scavenge (4–10 ms pauses, the p99 of the automation round trip) and the old generation filled
 * with dead commands until a full collection. A Map made anew now and then (its live entries
 * copied, usually a handful) stays young and does not do this: about 13 KB.
 *
 * Renewal happens inside `set` when it adds a key, so a loop over `values()` or `keys()` must
 * not add to the map while it runs (none here do; they copy first or only read).
 */
export class ChurnMap<K, V> {
  private inner = new Map<K, V>();
  private added = 0;

  /** Keys added between renewals: small enough that a busy map never lives to be promoted. */
  constructor(private readonly renewEvery = 64) {}

  get size(): number {
    return this.inner.size;
  }

  get(key: K): V | undefined {
    return this.inner.get(key);
  }

  has(key: K): boolean {
    return this.inner.has(key);
  }

  set(key: K, value: V): this {
    const inner = this.inner;
    const before = inner.size;
    inner.set(key, value);
    // Counted by size, not by a has() first: one hash lookup per set, on the hot path.
    if (inner.size !== before && ++this.added >= this.renewEvery) {
      this.added = 0;
      this.inner = new Map(inner);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.inner.delete(key);
  }

  /** Empties it; the new, empty Map is young again. */
  clear(): void {
    this.inner = new Map();
    this.added = 0;
  }

  keys(): IterableIterator<K> {
    return this.inner.keys();
  }

  values(): IterableIterator<V> {
    return this.inner.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.inner.entries();
  }

  forEach(fn: (value: V, key: K) => void): void {
    this.inner.forEach(fn);
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.inner.entries();
  }
}

/** The same for a Set (runs in flight, commands waiting for a report): see ChurnMap. */
export class ChurnSet<T> {
  private inner = new Set<T>();
  private added = 0;

  constructor(private readonly renewEvery = 64) {}

  get size(): number {
    return this.inner.size;
  }

  has(value: T): boolean {
    return this.inner.has(value);
  }

  add(value: T): this {
    const inner = this.inner;
    const before = inner.size;
    inner.add(value);
    if (inner.size !== before && ++this.added >= this.renewEvery) {
      this.added = 0;
      this.inner = new Set(inner);
    }
    return this;
  }

  delete(value: T): boolean {
    return this.inner.delete(value);
  }

  clear(): void {
    this.inner = new Set();
    this.added = 0;
  }

  values(): IterableIterator<T> {
    return this.inner.values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.inner.values();
  }
}
