import type { Thing } from '../api/types.ts';
import { formatNumber, formatReading, formatValue } from '../format.ts';
import { booleanText, propertyLabels } from '../labels.ts';
import { BrightnessSlider, CoverControl, LockControl, PowerSwitch, Thermostat } from './controls.tsx';

/** Capabilities that have a control; a device's other properties are shown as readings. */
const CONTROLLED = new Set(['switch', 'light', 'climate', 'lock', 'cover']);

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
  const labels = propertyLabels(thing);
  return (
    <dl className="readings">
      {rows.map(([name, info]) => (
        <div key={name}>
          <dt>{labels.get(name)}</dt>
          <dd>{formatReading(name, info.value, info)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** The state in one line: "On · 79 %", "Locked", "21 °C · 45 %", "Charging at 11 kW". */
export function summarize(thing: Thing, withPower = true): string {
  const s = thing.state;
  const parts: string[] = [];
  const said = (property: string) => {
    const value = s[property];
    if (typeof value === 'boolean') parts.push(booleanText(property, value));
  };
  if (withPower) said('light.on');
  if (s['light.on'] === true && typeof s['light.brightness'] === 'number')
    parts.push(`${s['light.brightness']} % bright`);
  if (withPower) said('switch.on');
  said('lock.locked');
  said('sensor.contact');
  said('sensor.motion');
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
  // A charge point says what it is doing; its meter reading is on its Home card.
  if (thing.capabilities.includes('charging')) parts.push(chargingWords(thing, 'Idle') ?? '');
  return parts.filter(Boolean).join(' · ');
}

/** A charge point's states that say it cannot charge, in its own (OCPP) words. */
const CHARGER_TROUBLE = new Set(['Faulted', 'Unavailable']);

/**
 * What a charge point or a car is doing about charging, in a few words: "Charging at 11 kW",
 * "Plugged in", else `unplugged` ("Idle" for a charge point, "Not plugged in" for a car). Null when
 * the thing reports none of it.
 */
export function chargingWords(thing: Thing, unplugged: string): string | null {
  const s = thing.state;
  const status = s['charging.status'];
  if (typeof status === 'string' && CHARGER_TROUBLE.has(status)) return status;
  const power = typeof s['charging.power'] === 'number' ? s['charging.power'] : null;
  if (s['charging.charging'] === true) return power !== null ? `Charging at ${formatNumber(power)} kW` : 'Charging';
  if (s['charging.connected'] === true) return 'Plugged in';
  if (s['charging.connected'] === false) return unplugged;
  return null;
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
