import { ChurnMap } from '../core/churn-map.ts';
import type { Clock } from '../core/clock.ts';

export interface GroupCommitOptions<T> {
  /**
   * Writes every item of a batch in one transaction: all of them, or none. `background`: nobody
   * waits for any of them (every item came by `write`), so the commit need not wait for the disk
   * (Store's WriteOptions).
   */
  writeBatch(items: T[], background: boolean): Promise<void>;
  /**
   * Writes one item alone: a batch of one (a statement on its own commits for less than one
   * wrapped in a transaction), and each item of a batch that failed, so one bad item fails alone
   * rather than taking the rest of its batch with it.
   */
  writeOne(item: T, background: boolean): Promise<void>;
  /** The hub's clock, for the `within` windows (a virtual clock in tests moves them too). */
  clock: Clock;
  /** What happens to an item that could not be written and that no caller is waiting for. */
  onError(error: unknown, item: T): void;
  /** A batch this large is written at the end of the current turn rather than at its deadline. */
  maxBatch?: number;
  /** The most items one transaction writes; a longer batch is written in several, in order. */
  maxTransaction?: number;
}

interface Entry<T> {
  item: T;
  waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> | null;
}

/**
 * Group commit for one store table. Every save of a turn (or of a short window) is collected and
 * written in one transaction, because a commit costs several times what a row does (in SQLite's
 * WAL, ~55 µs a commit against ~15 µs a row). Items share a key when a later save supersedes an
 * earlier one (a command's next status, a trace's next copy): only the latest is written, in the
 * position of the first. Batches are written one after another, so an older copy never lands
 * after a newer one.
 */
export class GroupCommit<T> {
  /** A ChurnMap: every item passes through it, and a plain Map kept them alive (see ChurnMap). */
  private readonly entries = new ChurnMap<string, Entry<T>>();
  private immediate: NodeJS.Immediate | null = null;
  private cancelTimer: (() => void) | null = null;
  private deadline = Number.POSITIVE_INFINITY;
  /** The batch being written, if any; the next one starts after it. Never rejects. */
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly options: GroupCommitOptions<T>) {}

  /** Items not yet handed to the store. */
  get size(): number {
    return this.entries.size;
  }

  /** The latest unwritten item under a key, so readers see what is about to be stored. */
  peek(key: string): T | undefined {
    return this.entries.get(key)?.item;
  }

  /**
   * Takes back an unwritten item nobody waits for, because it need not be written after all;
   * false when it is already on its way to the store (or someone waits for it).
   */
  drop(key: string): boolean {
    const entry = this.entries.get(key);
    if (!entry || entry.waiters) return false;
    return this.entries.delete(key);
  }

  /**
   * Queues an item to be written within `withinMs` (0: at the end of this turn). Nobody waits for
   * it; a failure goes to `onError`.
   */
  write(key: string, item: T, withinMs = 0): void {
    const entry = this.entries.get(key);
    if (entry) entry.item = item;
    else this.entries.set(key, { item, waiters: null });
    this.schedule(withinMs);
  }

  /** Queues an item for the end of this turn and resolves once it is committed (or rejects). */
  commit(key: string, item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = this.entries.get(key);
      if (entry) {
        entry.item = item;
        entry.waiters = [...(entry.waiters ?? []), { resolve, reject }];
      } else this.entries.set(key, { item, waiters: [{ resolve, reject }] });
      this.schedule(0);
    });
  }

  /** Writes everything queued so far, now, and resolves when it is stored. */
  async flush(): Promise<void> {
    this.unschedule();
    do await this.drain();
    while (this.entries.size > 0);
  }

  private schedule(withinMs: number): void {
    if (this.immediate) return;
    if (withinMs <= 0 || this.entries.size >= (this.options.maxBatch ?? 1000)) {
      this.unschedule();
      this.immediate = setImmediate(() => {
        this.immediate = null;
        void this.drain();
      });
      return;
    }
    const { clock } = this.options;
    const due = clock.now() + withinMs;
    if (due >= this.deadline) return;
    this.cancelTimer?.();
    this.deadline = due;
    this.cancelTimer = clock.setTimeout(() => {
      this.cancelTimer = null;
      this.deadline = Number.POSITIVE_INFINITY;
      void this.drain();
    }, withinMs);
  }

  private unschedule(): void {
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.deadline = Number.POSITIVE_INFINITY;
  }

  private drain(): Promise<void> {
    // A throwing onError must not reject the chain: every later write hangs off it.
    this.tail = this.tail.then(() => this.writeOut()).catch(() => {});
    return this.tail;
  }

  private async writeOut(): Promise<void> {
    if (this.entries.size === 0) return;
    const all = [...this.entries.values()];
    this.entries.clear();
    // A synchronous store (SQLite) holds the event loop for a whole transaction: a long batch is
    // written in parts, with other work (a command waiting to be published) let in between.
    const size = this.options.maxTransaction ?? 128;
    if (all.length <= size) return this.writeEntries(all);
    for (let at = 0; at < all.length; at += size) {
      if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      await this.writeEntries(all.slice(at, at + size));
    }
  }

  private async writeEntries(batch: Entry<T>[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const background = batch.every((entry) => !entry.waiters);
        await this.options.writeBatch(
          batch.map((e) => e.item),
          background,
        );
        for (const entry of batch) for (const w of entry.waiters ?? []) w.resolve();
        return;
      } catch {
        // Written again one by one below, to find the item the store refuses.
      }
    }
    for (const entry of batch) {
      try {
        await this.options.writeOne(entry.item, !entry.waiters);
        for (const w of entry.waiters ?? []) w.resolve();
      } catch (error) {
        this.fail(entry, error);
      }
    }
  }

  private fail(entry: Entry<T>, error: unknown): void {
    if (entry.waiters) for (const w of entry.waiters) w.reject(error);
    else this.options.onError(error, entry.item);
  }
}
