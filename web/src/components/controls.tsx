import { useEffect, useRef, useState } from 'react';
import type { Thing } from '../api/types.ts';
import { boolOf, findAction, formatNumber, inputField, numberOf } from '../format.ts';
import { inSentence, propertyLabel } from '../labels.ts';
import { usable } from '../live/may-run.ts';
import { CommandNote } from './CommandNote.tsx';
import { useCommand } from './use-command.ts';

/** How long a slider or stepper waits after the last change before it sends, so a drag is one command. */
const SETTLE_MS = 600;

/**
 * A value the user is adjusting: it follows the device until the user moves it, then sends once
 * they stop, and follows the device again after that.
 */
function useDraft(actual: number | null, send: (value: number) => void): [number | null, (value: number) => void] {
  const [draft, setDraft] = useState<number | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const sendRef = useRef(send);
  sendRef.current = send;
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const change = (value: number) => {
    setDraft(value);
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      timer.current = null;
      sendRef.current(value);
      setDraft(null);
    }, SETTLE_MS);
  };
  return [draft ?? actual, change];
}

/** On/off for a switch or a light. Its accessible name is the device's name ("Hall light"). */
export function PowerSwitch({ thing, capability }: { thing: Thing; capability: 'switch' | 'light' }) {
  const state = useCommand(thing);
  const on = boolOf(thing, `${capability}.on`) === true;
  const onAction = findAction(thing, capability, 'turn_on');
  const offAction = findAction(thing, capability, 'turn_off');
  const target = on ? offAction : onAction;
  const refused = state.refusal(target?.name);
  return (
    <div className="control">
      <button
        type="button"
        role="switch"
        className="switch"
        aria-checked={on}
        aria-busy={state.pending}
        aria-label={thing.name}
        {...usable(refused, !target || thing.online === false)}
        onClick={() => {
          if (target && !state.pending) state.run(target.name);
        }}
      >
        <span className="switch-track" aria-hidden="true">
          <span className="switch-thumb" />
        </span>
        <span className="switch-text" aria-hidden="true">
          {state.pending ? (on ? 'Turning off…' : 'Turning on…') : on ? 'On' : 'Off'}
        </span>
      </button>
      <CommandNote thing={thing} state={state} refused={refused} />
    </div>
  );
}

export function BrightnessSlider({ thing }: { thing: Thing }) {
  const state = useCommand(thing);
  const action = findAction(thing, 'light', 'turn_on');
  const [value, change] = useDraft(numberOf(thing, 'light.brightness'), (brightness) =>
    state.run(action?.name ?? 'turn_on', { brightness }),
  );
  if (!action?.info.input?.properties?.brightness) return null;
  const id = `brightness-${thing.id}`;
  const refused = state.refusal(action.name);
  return (
    <div className="control">
      <label htmlFor={id}>
        {propertyLabel(thing, 'light.brightness')}{' '}
        <output htmlFor={id}>{value === null ? '—' : `${Math.round(value)} %`}</output>
      </label>
      <input
        id={id}
        type="range"
        min={0}
        max={100}
        step={1}
        value={value ?? 0}
        aria-label={`${thing.name} ${inSentence(propertyLabel(thing, 'light.brightness'))}`}
        aria-busy={state.pending}
        {...usable(refused, thing.online === false)}
        onChange={(event) => change(Number(event.currentTarget.value))}
      />
      <CommandNote thing={thing} state={state} refused={refused} />
    </div>
  );
}

export function Thermostat({ thing }: { thing: Thing }) {
  const state = useCommand(thing);
  const setPoint = findAction(thing, 'climate', 'set_target_temperature');
  const field = setPoint ? (inputField(setPoint.info) ?? 'temperature') : 'temperature';
  const limits = setPoint?.info.input?.properties?.[field];
  const min = limits?.minimum ?? 5;
  const max = limits?.maximum ?? 35;
  const [target, change] = useDraft(numberOf(thing, 'climate.target_temperature'), (value) =>
    state.run(setPoint?.name ?? 'set_target_temperature', { [field]: value }),
  );
  const current = numberOf(thing, 'climate.current_temperature');
  const refused = state.refusal(setPoint?.name);
  const step = (delta: number) => {
    const base = target ?? current ?? 20;
    change(Math.min(max, Math.max(min, Math.round((base + delta) * 2) / 2)));
  };
  return (
    <div className="control">
      <p className="reading">Now {current === null ? '—' : `${formatNumber(current)} °C`}</p>
      {setPoint ? (
        <fieldset className="stepper">
          <legend className="visually-hidden">{thing.name} set point</legend>
          <button
            type="button"
            aria-label={`Lower ${thing.name} set point`}
            onClick={() => step(-0.5)}
            {...usable(refused, thing.online === false)}
          >
            −
          </button>
          <output aria-live="polite" aria-label={`${thing.name} set point`}>
            {target === null ? '—' : `${formatNumber(target)} °C`}
          </output>
          <button
            type="button"
            aria-label={`Raise ${thing.name} set point`}
            onClick={() => step(0.5)}
            {...usable(refused, thing.online === false)}
          >
            +
          </button>
        </fieldset>
      ) : null}
      <ModeSelect thing={thing} />
      <CommandNote thing={thing} state={state} refused={refused} />
    </div>
  );
}

function ModeSelect({ thing }: { thing: Thing }) {
  const state = useCommand(thing);
  const action = findAction(thing, 'climate', 'set_mode');
  if (!action) return null;
  const field = inputField(action.info) ?? 'mode';
  const modes = action.info.input?.properties?.[field]?.enum ?? ['off', 'heat', 'cool', 'auto'];
  const id = `mode-${thing.id}`;
  const mode = thing.state['climate.mode'];
  const refused = state.refusal(action.name);
  return (
    <div className="inline-field">
      <label htmlFor={id}>{propertyLabel(thing, 'climate.mode')}</label>
      <select
        id={id}
        aria-label={`${thing.name} ${inSentence(propertyLabel(thing, 'climate.mode'))}`}
        value={typeof mode === 'string' ? mode : ''}
        aria-busy={state.pending}
        {...usable(refused, thing.online === false)}
        onChange={(event) => state.run(action.name, { [field]: event.currentTarget.value })}
      >
        {typeof mode !== 'string' ? <option value="">—</option> : null}
        {modes.map((m) => (
          <option key={m} value={m}>
            {m.charAt(0).toUpperCase() + m.slice(1)}
          </option>
        ))}
      </select>
      <CommandNote thing={thing} state={state} refused={refused} />
    </div>
  );
}

export function LockControl({ thing }: { thing: Thing }) {
  const state = useCommand(thing);
  const locked = boolOf(thing, 'lock.locked');
  const action = findAction(thing, 'lock', locked ? 'unlock' : 'lock');
  const verb = locked ? 'Unlock' : 'Lock';
  const refused = state.refusal(action?.name);
  return (
    <div className="control">
      <p className="reading">{locked === null ? 'Lock state unknown' : locked ? 'Locked' : 'Unlocked'}</p>
      <button
        type="button"
        aria-label={`${verb} ${thing.name}`}
        aria-busy={state.pending}
        {...usable(refused, !action || thing.online === false)}
        onClick={() => {
          if (action && !state.pending) state.run(action.name);
        }}
      >
        {state.pending ? `${verb}ing…` : verb}
      </button>
      <CommandNote thing={thing} state={state} refused={refused} />
    </div>
  );
}

export function CoverControl({ thing }: { thing: Thing }) {
  const state = useCommand(thing);
  const open = findAction(thing, 'cover', 'open');
  const close = findAction(thing, 'cover', 'close');
  const setPosition = findAction(thing, 'cover', 'set_position');
  const [position, change] = useDraft(numberOf(thing, 'cover.position'), (value) =>
    state.run(setPosition?.name ?? 'set_position', { [inputField(setPosition?.info ?? {}) ?? 'position']: value }),
  );
  const id = `cover-${thing.id}`;
  const refusedOpen = state.refusal(open?.name);
  const refusedClose = state.refusal(close?.name);
  const refusedPosition = state.refusal(setPosition?.name);
  return (
    <div className="control">
      <div className="button-row">
        {open ? (
          <button
            type="button"
            aria-label={`Open ${thing.name}`}
            onClick={() => state.run(open.name)}
            {...usable(refusedOpen, thing.online === false)}
          >
            Open
          </button>
        ) : null}
        {close ? (
          <button
            type="button"
            aria-label={`Close ${thing.name}`}
            onClick={() => state.run(close.name)}
            {...usable(refusedClose, thing.online === false)}
          >
            Close
          </button>
        ) : null}
      </div>
      {setPosition ? (
        <>
          <label htmlFor={id}>
            {propertyLabel(thing, 'cover.position')}{' '}
            <output htmlFor={id}>{position === null ? '—' : `${Math.round(position)} %`}</output>
          </label>
          <input
            id={id}
            type="range"
            min={0}
            max={100}
            value={position ?? 0}
            aria-label={`${thing.name} ${inSentence(propertyLabel(thing, 'cover.position'))}`}
            {...usable(refusedPosition, thing.online === false)}
            onChange={(event) => change(Number(event.currentTarget.value))}
          />
        </>
      ) : null}
      <CommandNote thing={thing} state={state} refused={refusedOpen ?? refusedClose ?? refusedPosition} />
    </div>
  );
}
