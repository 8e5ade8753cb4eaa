/**
 * Solar charging that does not flap: charging starts only after the surplus has stayed above the
 * on-threshold for the on-delay, and stops only after it has stayed below the off-threshold for
 * the off-delay, so a passing cloud neither starts nor ends a charge. Time comes in as an argument;
 * the caller's clock decides it.
 */
export interface SolarSettings {
  /** Surplus needed to start, W. */
  onThresholdW: number;
  /** Surplus below which charging stops, W. */
  offThresholdW: number;
  onDelayMs: number;
  offDelayMs: number;
}

export class SolarSurplus {
  private charging = false;
  /** Since when the surplus has been on the other side of the threshold. */
  private crossedAt: number | null = null;

  constructor(private settings: SolarSettings) {}

  update(settings: SolarSettings): void {
    this.settings = settings;
  }

  get enabled(): boolean {
    return this.charging;
  }

  /**
   * Feeds the surplus available to this charger at `now`; answers whether it should charge. A
   * surplus no one can measure (null: a meter offline or silent) counts as below the
   * off-threshold, whatever the thresholds are: it never starts a charge, and stops one after the
   * off-delay, as a cloud would, so a meter that drops out for a moment does not end it.
   */
  decide(now: number, surplusW: number | null): boolean {
    const { onThresholdW, offThresholdW, onDelayMs, offDelayMs } = this.settings;
    const wantsChange = this.charging
      ? surplusW === null || surplusW < offThresholdW
      : surplusW !== null && surplusW >= onThresholdW;
    if (!wantsChange) {
      this.crossedAt = null;
      return this.charging;
    }
    this.crossedAt ??= now;
    if (now - this.crossedAt >= (this.charging ? offDelayMs : onDelayMs)) {
      this.charging = !this.charging;
      this.crossedAt = null;
    }
    return this.charging;
  }
}
