/**
 * Runs async tasks one at a time per key, each after the ones handed in before it under that key.
 *
 * Why: a create that checks for a clash (a name or an id already taken) and then awaits (a
 * password hash, the store's write) before saving lets a second create of the same thing pass
 * the same check in the meantime. Both were answered 201, and the later one either overwrote the
 * earlier (the same id) or sat beside it (two users of one name). Run under the same key, each
 * check sees what the create before it saved, so the second gets what a sequential request gets
 * (a 409, or the next free id). Tasks under different keys (another household's) never wait for
 * each other, and a task that fails does not hold back or fail the ones behind it.
 */
export class KeyedSerial {
  /** Per key, the end of the last task handed in: it settles, never rejects. */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    // Forgotten once nothing waits behind it, so a key per household does not pile up.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
