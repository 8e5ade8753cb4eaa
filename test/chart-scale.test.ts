import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { axisFormat, niceTicks } from '../web/src/chart-scale.ts';

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
