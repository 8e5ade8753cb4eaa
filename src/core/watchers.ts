/**
 * Callbacks by key, each called once when its key ends: the connections opened with a token that
 * is revoked, the clients logged in with a device account that is removed. A connection that goes
 * away first removes its own callback (the function `add` returns), so nothing piles up.
 */
export class Watchers<K> {
  private readonly byKey = new Map<K, Set<() => void>>();

  add(key: K, onEnd: () => void): () => void {
    let set = this.byKey.get(key);
    if (!set) {
      set = new Set();
      this.byKey.set(key, set);
    }
    set.add(onEnd);
    const mine = set;
    return () => {
      mine.delete(onEnd);
      if (mine.size === 0 && this.byKey.get(key) === mine) this.byKey.delete(key);
    };
  }

  /**
   * Calls (once) and forgets every callback for the key. One that throws does not keep the rest
   * from running (a revoked token ends all its connections); the first error is thrown after.
   */
  end(key: K): void {
    const set = this.byKey.get(key);
    this.byKey.delete(key);
    let failure: { error: unknown } | null = null;
    for (const onEnd of set ?? []) {
      try {
        onEnd();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  /** Whether any callback waits for the key (a login still has a connection open). */
  has(key: K): boolean {
    return this.byKey.has(key);
  }

  /** Keys with callbacks waiting, for tests that check nothing is left behind. */
  get size(): number {
    return this.byKey.size;
  }
}
