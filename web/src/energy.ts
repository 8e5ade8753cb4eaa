import type { Thing } from './api/types.ts';

export interface EnergyFlow {
  /** Watts; positive means power flowing in the direction the name says. */
  solar: number | null;
  /** Positive is import from the grid, negative export. */
  grid: number | null;
  house: number | null;
  car: number | null;
}

function watts(thing: Thing): number | null {
  const w = thing.state['sensor.power'];
  if (typeof w === 'number') return w;
  const kw = thing.state['charging.power'];
  return typeof kw === 'number' ? kw * 1000 : null;
}

const sum = (values: Array<number | null>) => {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
};

/**
 * Where power is going right now, from the site's meters as things: the solar inverter, the grid
 * meter and the house load are recognised by name (how the demo and most MQTT meters call them),
 * the car by its charger's or its own charging power. Null when the household has no such meters.
 */
export function energyFlow(things: Iterable<Thing>): EnergyFlow | null {
  const all = [...things];
  const named = (pattern: RegExp) =>
    sum(all.filter((t) => pattern.test(`${t.id} ${t.name}`) && t.kind !== 'vehicle').map(watts));
  const flow: EnergyFlow = {
    solar: named(/solar|\bpv\b|inverter/i),
    grid: named(/grid|utility meter/i),
    house: named(/house load|home load|house consumption/i),
    car: sum(
      all
        .filter((t) => t.kind === 'charger' || (t.kind === 'vehicle' && t.capabilities.includes('charging')))
        .map(watts),
    ),
  };
  const meters = [flow.solar, flow.grid, flow.house].filter((v) => v !== null).length;
  return meters > 0 ? flow : null;
}
