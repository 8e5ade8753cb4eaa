import { sameValue } from '../../core/twin.ts';
import { wallClockTime } from '../../core/wall-time.ts';
import { type ExpressionScope, evaluate, truthy } from '../expression/index.ts';
import type { Condition, TriggerData } from '../model.ts';
import { isoWeekday, secondsOfDay } from '../time/duration.ts';
import { type GeoPoint, sunTimeOn } from '../time/sun.ts';
import { inRange } from './triggers.ts';

/** What a condition can read. */
export interface ConditionEnv {
  now: number;
  value(thing: string, property: string): unknown;
  location: GeoPoint | null;
  /** The household's time zone, whose clocks time conditions read; asked only by those. */
  timeZone(): string;
  trigger: TriggerData | null;
  scope: ExpressionScope;
}

/** Evaluates a condition; returns its result and, when useful, what it saw (for the trace). */
export function checkCondition(condition: Condition, env: ConditionEnv): { result: boolean; detail?: string } {
  switch (condition.type) {
    case 'and':
      return { result: condition.conditions.every((c) => checkCondition(c, env).result) };
    case 'or':
      return { result: condition.conditions.some((c) => checkCondition(c, env).result) };
    case 'not':
      return { result: !condition.conditions.some((c) => checkCondition(c, env).result) };
    case 'state': {
      const value = env.value(condition.thing, condition.property);
      return {
        result: condition.state.some((s) => sameValue(s, value)),
        detail: `${condition.thing} ${condition.property} is ${JSON.stringify(value ?? null)}`,
      };
    }
    case 'numeric_state': {
      const value = env.value(condition.thing, condition.property);
      return {
        result: inRange(value, condition.above, condition.below),
        detail: `${condition.thing} ${condition.property} is ${JSON.stringify(value ?? null)}`,
      };
    }
    case 'time': {
      const timeZone = env.timeZone();
      const seconds = secondsOfDay(env.now, timeZone);
      const { after, before } = condition;
      let inWindow = true;
      // A window whose end is before its start spans midnight (22:00 → 06:00).
      if (after !== undefined && before !== undefined)
        inWindow = after <= before ? seconds >= after && seconds < before : seconds >= after || seconds < before;
      else if (after !== undefined) inWindow = seconds >= after;
      else if (before !== undefined) inWindow = seconds < before;
      const day = !condition.weekdays || condition.weekdays.includes(isoWeekday(env.now, timeZone));
      return { result: inWindow && day, detail: `local time ${wallClockTime(env.now, timeZone)}` };
    }
    case 'sun': {
      if (!env.location) return { result: false, detail: 'the household has no location' };
      const edge = (e: { event: 'sunrise' | 'sunset'; offsetMs: number } | undefined) =>
        e ? sunTimeOn(e.event, e.offsetMs, env.now, env.location as GeoPoint) : undefined;
      const after = edge(condition.after);
      const before = edge(condition.before);
      const ok =
        (after === undefined || (after !== null && env.now >= after)) &&
        (before === undefined || (before !== null && env.now < before));
      return { result: ok };
    }
    case 'zone': {
      const zone = env.value(condition.thing, 'presence.zone');
      return { result: zone === condition.zone, detail: `${condition.thing} is in ${JSON.stringify(zone ?? null)}` };
    }
    case 'expression': {
      const refusedBefore = env.scope.refused?.length ?? 0;
      const value = evaluate(condition.expression, env.scope);
      const refused = env.scope.refused?.slice(refusedBefore) ?? [];
      // A text it could not build makes it false, and says so rather than only "→ false".
      if (refused.length) return { result: false, detail: `${condition.text}: ${refused[0]}` };
      return { result: truthy(value), detail: `${condition.text} → ${JSON.stringify(value)}` };
    }
    case 'trigger':
      return {
        result: env.trigger !== null && condition.ids.includes(env.trigger.id),
        detail: `trigger ${env.trigger?.id ?? 'none'}`,
      };
  }
}
