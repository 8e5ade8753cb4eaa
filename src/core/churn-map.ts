/**
 * A Map for entries that come and go all the time (open commands, a window's unwritten rows),
 * kept by something that lives as long as the hub.
 *
 * Why not a plain Map: once a long-lived Map has been promoted to V8's old generation, churning
 * short-lived entries through it keeps them alive past the young-generation collections that
 * would otherwise free them. Measured on Node 20: a Map holding five live entries at a time,
 * added and deleted in turn, had about 1.3 MB promoted to the old generation per scavenge,
 * against 14 KB for an array holding the same five. In the hub, 1.3–1.4 MB was promoted at every
 * scavenge, at 1,000 reports a second as at 5,000, and the old generation filled with dead
 * commands until a full collection; with these collections it is about half that, and the
 * average scavenge pause (the p99 of the automation round trip) went from 4.5 to 2.7 ms. A Map
 * made anew now and then (its live entries copied, usually a handful) stays young and does not
 * do this: about 13 KB in the same script.
 *
 * Renewal happens inside `set` when it adds a key, so a loop over `values()` or `keys()` must
 * not add to the map while it runs (none here do; they copy first or only read).
 */
/**
 * What ChurnMap and ChurnSet share: the inner collection, and when to make it anew. That is after
 * `every` added entries, or after as many added entries as it holds when it holds more. The
 * second half keeps renewal cheap for a collection that grows large (a group-commit window of a
 * thousand rows, a backlog of open commands): each renewal copies every live entry, and copying a
 * thousand entries every 64 adds cost a tenth of the hub's CPU at 5,000 reports a second; this
 * way a copy costs at most one entry per add.
 */
abstract class Churning<E, C extends Map<E, unknown> | Set<E>> {
  protected inner: C;
  private added = 0;

  /**
   * `make` builds an empty collection, or a copy of the one given; `every` is the number of
   * added entries between renewals, small enough that a busy collection never lives to be promoted.
   */
  constructor(
    private readonly make: (from?: C) => C,
    private readonly every: number,
  ) {
    this.inner = make();
  }

  get size(): number {
    return this.inner.size;
  }

  has(entry: E): boolean {
    return this.inner.has(entry);
  }

  delete(entry: E): boolean {
    return this.inner.delete(entry);
  }

  /** Empties it; the new, empty collection is young again. */
  clear(): void {
    this.inner = this.make();
    this.added = 0;
  }

  /**
   * Called after each insert with the size before it. Added or updated is told by the size rather
   * than a has() first: one hash lookup per insert, on the hot path.
   */
  protected inserted(before: number): void {
    const size = this.inner.size;
    if (size === before || ++this.added < this.every || this.added < size) return;
    this.added = 0;
    this.inner = this.make(this.inner);
  }
}

export class ChurnMap<K, V> extends Churning<K, Map<K, V>> {
  constructor(renewEvery = 64) {
    super((from) => new Map(from), renewEvery);
  }

  get(key: K): V | undefined {
    return this.inner.get(key);
  }

  set(key: K, value: V): this {
    const before = this.inner.size;
    this.inner.set(key, value);
    this.inserted(before);
    return this;
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
export class ChurnSet<T> extends Churning<T, Set<T>> {
  constructor(renewEvery = 64) {
    super((from) => new Set(from), renewEvery);
  }

  add(value: T): this {
    const before = this.inner.size;
    this.inner.add(value);
    this.inserted(before);
    return this;
  }

  values(): IterableIterator<T> {
    return this.inner.values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.inner.values();
  }
}
