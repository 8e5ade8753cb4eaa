/**
 * A charge point's clock as the hub sees it, so its timestamps can be put on the hub's time line.
 *
 * The core passes over a report stamped before the value it would replace (a message the charge
 * point queued while offline). A charge point whose clock was reset (booted into 1970 without a
 * real-time clock, stepped back hours by a bad time server) stamps every report before the ones it
 * sent earlier, and went unheard until its clock caught up again: for 1970, never. A clock that
 * ran ahead held its last value against the right time once it was put right.
 *
 * One message cannot tell a wrong clock from a late message; the messages that follow can. A late
 * message is out of step with the ones around it; a wrong clock is off the hub's by the same
 * amount, message after message, while it ticks on at the hub's pace. So:
 * - a timestamp within SLACK_MS of the hub's clock is the charge point's word, taken as it is: a
 *   message a few seconds out of order is still late;
 * - one further off, by as much as the message before it that it follows by PACE_SPAN_MS or more
 *   in the charge point's time, is a clock that runs behind or ahead: the hub's time of receipt
 *   stands for it, and later messages are moved by that much, so one sent late among them is
 *   still late (messages sent in one go after an outage, stamped apart, are not in pace);
 * - so is one that, moved so, would be ahead of the hub's clock (a clock put forward), or still
 *   more than FAR_BEHIND_MS behind it: no charge point holds a message that long, and the first
 *   message after a boot into 1970 (its status: a car plugged in) is heard at once.
 * - otherwise it is late, or out of order, and keeps its time as moved.
 * No time comes out ahead of the hub's: it would hold its value against the reports after it.
 * A BootNotification starts the clock afresh: what it said before tells nothing of it now.
 */

/** How far a charge point's timestamp may be from the hub's clock and still count as its clock being right. */
const SLACK_MS = 60_000;

/** How far apart (in the charge point's time) two messages must be to tell the pace of its clock. */
const PACE_SPAN_MS = 10_000;

/**
 * How closely two messages' distances from the hub's clock must agree for the charge point's clock
 * to count as off by that much: a network's jitter, or a tenth of the time between them.
 */
const JITTER_MS = 2_000;

/** Further behind the hub's clock than this is no late message but a wrong clock. */
const FAR_BEHIND_MS = 24 * 60 * 60_000;

export class ChargerClock {
  /** How far the charge point's clock is behind the hub's (negative: ahead), as last judged. */
  private offset = 0;
  /** The last timestamp taken, and how far it was behind the hub's clock when it came. */
  private last: { stamped: number; behind: number } | null = null;

  /** The charge point booted: its clock starts a new epoch. */
  booted(): void {
    this.offset = 0;
    this.last = null;
  }

  /** The hub time a timestamp the charge point stamped stands for, given when the hub received it. */
  place(stamped: number, received: number): number {
    const behind = received - stamped;
    const last = this.last;
    this.last = { stamped, behind };
    if (Math.abs(behind) <= SLACK_MS) {
      this.offset = 0;
      return Math.min(stamped, received);
    }
    const span = last === null ? 0 : stamped - last.stamped;
    const keepsPace =
      last !== null && span >= PACE_SPAN_MS && Math.abs(behind - last.behind) <= Math.max(JITTER_MS, span / 10);
    const moved = stamped + this.offset;
    if (keepsPace || moved > received || received - moved > FAR_BEHIND_MS) this.offset = behind;
    return Math.min(stamped + this.offset, received);
  }
}
