import type { Thing } from '../api/types.ts';
import { formatValue, propertyLabel } from '../format.ts';
import { BrightnessSlider, CoverControl, LockControl, PowerSwitch, Thermostat } from './controls.tsx';

/** Capabilities that have a control; a device's other properties are shown as readings. */
const CONTROLLED = new Set(['switch', 'light', 'climate', 'lock', 'cover']);

/**
 * A charger has two energies that would both read "Energy": its meter's running total, and what
 * it has delivered since the current charge began.
 */
const CHARGER_LABELS: Record<string, string> = {
  'sensor.energy': 'Meter reading',
  'charging.energy': 'Energy this charge',
};

function readingLabel(thing: Thing, property: string): string {
  const special = thing.kind === 'charger' && Object.hasOwn(CHARGER_LABELS, property);
  return special ? CHARGER_LABELS[property] : propertyLabel(property);
}

/** One device with its controls (`controls`) or, on the overview, just its state at a glance. */
export function DeviceCard({ thing, controls }: { thing: Thing; controls: boolean }) {
  const headingId = `device-${thing.id}`;
  return (
    <article className="card device" aria-labelledby={headingId}>
      <header className="card-head">
        <h3 id={headingId}>{thing.name}</h3>
        {thing.online === false ? <span className="badge offline">Offline</span> : null}
      </header>
      {controls ? <DeviceControls thing={thing} /> : <DeviceSummary thing={thing} />}
      {controls ? <Readings thing={thing} /> : null}
    </article>
  );
}

function DeviceControls({ thing }: { thing: Thing }) {
  const has = (c: string) => thing.capabilities.includes(c);
  return (
    <>
      {has('switch') ? <PowerSwitch thing={thing} capability="switch" /> : null}
      {has('light') ? <PowerSwitch thing={thing} capability="light" /> : null}
      {has('light') ? <BrightnessSlider thing={thing} /> : null}
      {has('climate') ? <Thermostat thing={thing} /> : null}
      {has('lock') ? <LockControl thing={thing} /> : null}
      {has('cover') ? <CoverControl thing={thing} /> : null}
    </>
  );
}

/** Readings for the properties no control already shows. */
function Readings({ thing }: { thing: Thing }) {
  const rows = Object.entries(thing.properties).filter(([name]) => !CONTROLLED.has(name.split('.', 1)[0]));
  if (rows.length === 0) return null;
  return (
    <dl className="readings">
      {rows.map(([name, info]) => (
        <div key={name}>
          <dt>{readingLabel(thing, name)}</dt>
          <dd>{formatValue(info.value, info)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** The state in one line: "On · 79 %", "Locked", "21 °C · 45 %". */
export function summarize(thing: Thing, withPower = true): string {
  const s = thing.state;
  const parts: string[] = [];
  if (withPower && typeof s['light.on'] === 'boolean') parts.push(s['light.on'] ? 'On' : 'Off');
  if (s['light.on'] === true && typeof s['light.brightness'] === 'number')
    parts.push(`${s['light.brightness']} % bright`);
  if (withPower && typeof s['switch.on'] === 'boolean') parts.push(s['switch.on'] ? 'On' : 'Off');
  if (typeof s['lock.locked'] === 'boolean') parts.push(s['lock.locked'] ? 'Locked' : 'Unlocked');
  if (typeof s['cover.position'] === 'number') parts.push(`${s['cover.position']} % open`);
  if (typeof s['climate.current_temperature'] === 'number') {
    parts.push(
      `${formatValue(s['climate.current_temperature'], { unit: '°C' })} → ${formatValue(s['climate.target_temperature'] ?? null, { unit: '°C' })}`,
    );
  }
  if (typeof s['sensor.temperature'] === 'number') parts.push(formatValue(s['sensor.temperature'], { unit: '°C' }));
  if (typeof s['sensor.humidity'] === 'number')
    parts.push(`${formatValue(s['sensor.humidity'], { unit: '%' })} humidity`);
  if (typeof s['sensor.power'] === 'number') parts.push(formatValue(s['sensor.power'], { unit: 'W' }));
  return parts.join(' · ');
}

/** The overview's glance: the state in words, and the on/off switch people reach for most. */
function DeviceSummary({ thing }: { thing: Thing }) {
  const power = thing.capabilities.includes('light')
    ? 'light'
    : thing.capabilities.includes('switch')
      ? 'switch'
      : null;
  return (
    <>
      <p className="summary">{summarize(thing, power === null) || (power ? '' : '—')}</p>
      {power ? <PowerSwitch thing={thing} capability={power} /> : null}
    </>
  );
}
