/** Summary statistics over latency samples, in the samples' own unit. */
export interface Distribution {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** The nearest-rank percentile of an already sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function distribution(samples: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

export function median(values: number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
}

/**
 * The trial whose chosen figure is the median of the trials, so every number reported for a
 * configuration comes from one coherent run instead of medians mixed across runs.
 */
export function medianTrial<T>(trials: T[], key: (t: T) => number): T {
  const sorted = [...trials].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (!Number.isFinite(x)) return 1;
    if (!Number.isFinite(y)) return -1;
    return x - y;
  });
  return sorted[(sorted.length - 1) >> 1];
}

/** a / b, or NaN when either side was not measured. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number {
  if (
    a === null ||
    a === undefined ||
    b === null ||
    b === undefined ||
    !Number.isFinite(a) ||
    !Number.isFinite(b) ||
    b === 0
  ) {
    return Number.NaN;
  }
  return a / b;
}
