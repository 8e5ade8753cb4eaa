import { open, readFile, rename, rm } from 'node:fs/promises';
import type { Logger } from '../core/log.ts';

/**
 * A small JSON file of the simulator's own, in the hub's data folder, so the demo household
 * carries on after a restart as a real one would: the car's odometer does not run back, the
 * charge point's meter keeps counting. Written whole to a file beside it and renamed over it, so
 * a crash mid-write leaves the last good state, never half of one.
 */
export class SavedStateFile {
  /** The write under way, so two never race for the same temporary file. */
  private writing: Promise<boolean> = Promise.resolve(true);
  /** Whether the last save failed: a run of failures is logged once, not at every save. */
  private failing = false;

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /** What was saved, or an empty object the first time (or when the file is not readable JSON). */
  async read(): Promise<Record<string, unknown>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn('cannot read the simulator state; starting afresh', { path: this.path, error });
      return {};
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // Reported below, like any other content that is not a saved state.
    }
    this.log.warn('the simulator state is not a saved state; starting afresh', { path: this.path });
    return {};
  }

  /**
   * Saves `state`, after any save still under way; whether it was saved. A failure is logged (the
   * first of a run of them: a car saved every second would say so every second), the demo runs on.
   */
  write(state: Record<string, unknown>): Promise<boolean> {
    this.writing = this.writing.then(() =>
      this.replace(`${JSON.stringify(state, null, 1)}\n`).then(
        () => {
          if (this.failing) this.log.info('the simulator state is saved again', { path: this.path });
          this.failing = false;
          return true;
        },
        (error) => {
          if (!this.failing) this.log.warn('could not save the simulator state', { path: this.path, error });
          this.failing = true;
          return false;
        },
      ),
    );
    return this.writing;
  }

  private async replace(text: string): Promise<void> {
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(text);
      // On disk before the rename makes it the state: a power cut then leaves the old one or this.
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temporary, this.path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}
