/**
 * One status line on stderr, rewritten in place, so a long run shows what it is doing without
 * scrolling the table off the screen. On a non-TTY stderr each new step becomes its own line.
 */
export class ProgressLine {
  private last = '';
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = Date.now();

  show(text: string): void {
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0).padStart(4);
    const line = `[${elapsed} s] ${text}`;
    if (this.tty) {
      const width = process.stderr.columns ?? 120;
      const clipped = line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line;
      process.stderr.write(`\r\x1b[2K${clipped}`);
    } else if (text !== this.last) {
      process.stderr.write(`${line}\n`);
    }
    this.last = text;
  }

  /** Ends the status line so that what follows starts on a clean line. */
  done(text = 'done'): void {
    this.show(text);
    if (this.tty) process.stderr.write('\n');
  }
}

export const progress = new ProgressLine();
