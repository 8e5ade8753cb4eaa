import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { axisFormat, bandPath, niceTicks } from '../web/src/chart-scale.ts';

describe("the dashboard chart's axis", () => {
  it('ticks are round steps that cover the values, two to five of them', () => {
    assert.deepEqual(niceTicks(21.3, 24.9), { ticks: [22, 23, 24], step: 1 });
    assert.deepEqual(niceTicks(0, 80), { ticks: [0, 20, 40, 60, 80], step: 20 });
    fc.assert(
      // Spans down to a millionth of the values' size: a chart of a value that hardly moves.
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-6, max: 10, noNaN: true }),
        (low, share) => {
          const span = Math.max(1e-3, Math.abs(low) * share);
          const { ticks, step } = niceTicks(low, low + span);
          assert.ok(ticks.length >= 2 && ticks.length <= 5, `${ticks.length} ticks for ${low}..${low + span}`);
          const mantissa = step / 10 ** Math.floor(Math.log10(step));
          assert.ok(
            [1, 2, 2.5, 5].some((m) => Math.abs(mantissa - m) < 1e-9),
            `step ${step}`,
          );
          for (let i = 1; i < ticks.length; i++) assert.ok(Math.abs(ticks[i] - ticks[i - 1] - step) < step * 1e-3);
        },
      ),
    );
  });

  it('labels show as many decimals as the step has, so no two ticks read alike', () => {
    assert.equal(axisFormat('°C', 2.5, 30)(22.5), '22.5 °C');
    assert.equal(axisFormat('', 0.25, 3)(1.75), '1.75');
    assert.equal(axisFormat('deg', 0.001, 52)(52.123), '52.123°');
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-2, max: 1e6, noNaN: true }),
        (low, span) => {
          const { ticks, step } = niceTicks(low, low + span);
          const text = axisFormat('', step, Math.max(Math.abs(low), Math.abs(low + span)));
          const labels = ticks.map(text);
          assert.equal(new Set(labels).size, labels.length, labels.join(' | '));
        },
      ),
    );
  });

  it('writes distances of a kilometre and more in km, with the decimals the step needs in km', () => {
    const km = axisFormat('m', 2500, 12_345_000);
    assert.equal(km(12_345_000), `${(12_345).toLocaleString(undefined, { maximumFractionDigits: 1 })} km`);
    assert.equal(km(12_347_500), `${(12_347.5).toLocaleString(undefined, { maximumFractionDigits: 1 })} km`);
    assert.equal(axisFormat('m', 50, 900)(850), '850 m');
  });
});

describe("a history chart's min–max band", () => {
  /** The band's outline as absolute points, reading the path as SVG does (M x,y / H x / V y / Z). */
  const outline = (path: string): Array<[number, number]> => {
    const points: Array<[number, number]> = [];
    let x = 0;
    let y = 0;
    for (const [, command, args] of path.matchAll(/([MHVZ])([^MHVZ]*)/g)) {
      // SVG reads "656.6172.0" as two numbers: 656.6172 and .0.
      const numbers = (args.match(/-?\d*\.?\d+/g) ?? []).map(Number);
      if (command === 'M') [x, y] = numbers;
      for (const n of command === 'H' || command === 'V' ? numbers : []) {
        if (command === 'H') x = n;
        else y = n;
        points.push([x, y]);
      }
      if (command === 'M') points.push([x, y]);
    }
    return points;
  };

  it('stays between each bucket’s own top and bottom (property)', () => {
    const bucket = fc.record({
      width: fc.integer({ min: 1, max: 50 }),
      top: fc.integer({ min: 10, max: 200 }),
      height: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(bucket, { minLength: 1, maxLength: 20 }), (buckets) => {
        let at = 40;
        const edges = buckets.map((b) => {
          const edge = {
            x0: at.toFixed(1),
            x1: (at + b.width).toFixed(1),
            top: b.top.toFixed(1),
            bottom: (b.top + b.height).toFixed(1),
          };
          at += b.width;
          return edge;
        });
        const highest = Math.min(...buckets.map((b) => b.top));
        const lowest = Math.max(...buckets.map((b) => b.top + b.height));
        for (const [px, py] of outline(bandPath(edges))) {
          assert.ok(py >= highest && py <= lowest, `y ${py} outside the band's ${highest}–${lowest}`);
          assert.ok(px >= 40 && px <= at, `x ${px} outside the chart's buckets`);
        }
      }),
    );
  });

  it('draws a bucket of one value as a flat line, not a block up to the top', () => {
    const path = bandPath([
      { x0: '645.6', x1: '656.6', top: '132.0', bottom: '132.0' },
      { x0: '656.6', x1: '663.8', top: '172.0', bottom: '172.0' },
    ]);
    assert.equal(path, 'M645.6,132.0H656.6V172.0H663.8V172.0H656.6V132.0H645.6Z');
  });
});
