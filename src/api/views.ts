import type { Command, HubEvent } from '../core/events.ts';
import type { Twin } from '../core/twin.ts';
import { type Thing, thingCapabilities } from '../model/thing.ts';

/** Times go out as ISO strings: what people and other tools read without a conversion. */
export const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A thing as clients see it: its description, `state` as plain values for scripts, and
 * `properties` with each value's schema and time for dashboards. `meta` stays inside.
 */
export function thingView(twin: Twin) {
  const { thing, state } = twin;
  const properties: Record<string, unknown> = {};
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(thing.properties)) {
    const current = state.get(name);
    values[name] = current?.value ?? null;
    properties[name] = {
      ...spec.schema,
      ...(spec.binding ? { binding: spec.binding } : {}),
      value: current?.value ?? null,
      ts: current ? iso(current.ts) : null,
    };
  }
  return {
    id: thing.id,
    kind: thing.kind,
    name: thing.name,
    room: thing.room ?? null,
    adapter: thing.adapter,
    capabilities: thingCapabilities(thing),
    online: twin.online,
    state: values,
    properties,
    actions: thing.actions,
    events: thing.events ?? {},
    problems: problemsOf(thing),
    createdAt: thing.createdAt,
    updatedAt: thing.updatedAt,
  };
}

function problemsOf(thing: Thing): string[] {
  const problems = thing.meta?.problems;
  return Array.isArray(problems) ? problems.filter((p): p is string => typeof p === 'string') : [];
}

export function commandView(command: Command) {
  return {
    id: command.id,
    commandId: command.id,
    thing: command.thing,
    action: command.action,
    input: command.input,
    status: command.status,
    error: command.error ?? null,
    expect: command.expect,
    issuedBy: command.issuedBy,
    cause: command.cause ?? null,
    createdAt: iso(command.createdAt),
    updatedAt: iso(command.updatedAt),
    expiresAt: iso(command.expiresAt),
  };
}

/** An event for the API: ISO time, the household id left out (the caller's own, always). */
export function eventView(event: HubEvent) {
  const { householdId: _h, ts, ...rest } = event;
  if (rest.type === 'command') return { ...rest, ts: iso(ts), command: commandView(rest.command) };
  return { ...rest, ts: iso(ts) };
}

/**
 * Characters no name holds: control characters (a NUL or an escape sequence has no place in a
 * name shown on a dashboard or written to a log, C1 ones included), and the invisible ones that
 * change how the text around them reads: a zero-width space or byte-order mark hides inside a name
 * ("Zo\u200be" is not "Zoe"), and the bidirectional embeddings, overrides and isolates reorder
 * what follows (U+202E shows "gnp.exe" for "exe.png"). Joiners stay: emoji and scripts need them.
 */
const NOT_IN_NAMES = '\\u0000-\\u001f\\u007f-\\u009f\\u200b\\u202a-\\u202e\\u2066-\\u2069\\ufeff';

/** A name as people write it: some text that is not all spaces, with none of NOT_IN_NAMES. */
export const NAME_PATTERN = `^[^${NOT_IN_NAMES}]*[^\\s${NOT_IN_NAMES}][^${NOT_IN_NAMES}]*$`;

/**
 * The 404 message for a path no route takes. The path is quoted shortened: a hostile
 * 10,000-character one is not echoed whole.
 */
export function noRouteFor(method: string, url: string, max = 200): string {
  const path = url.split('?', 1)[0];
  return `no route for ${method} ${path.length > max ? `${path.slice(0, max)}… (${path.length} characters)` : path}`;
}
