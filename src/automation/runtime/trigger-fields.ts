import type { TriggerData, TriggerType } from '../model.ts';

/** What every trigger hands its run, first and last in each kind's list below. */
const FIRST = ['id', 'type', 'cause', 'ts'] as const;
const LAST = 'description';

/**
 * The fields of `trigger` a run can read, for each kind of trigger: the one list both the runtime
 * and the check at save go by. The code that builds a kind's `trigger` is typed by its entry here
 * (TriggerDataOf), so it cannot hand a run a field that is not listed; a rule that reads a field
 * none of its triggers lists is refused when saved (parse/rule.ts).
 */
export const TRIGGER_FIELDS = {
  state: [...FIRST, 'thing', 'property', 'from', 'to', LAST],
  numeric_state: [...FIRST, 'thing', 'property', 'from', 'to', LAST],
  zone: [...FIRST, 'thing', 'property', 'from', 'to', 'zone', 'event', LAST],
  time: [...FIRST, LAST],
  cron: [...FIRST, LAST],
  sun: [...FIRST, LAST],
  event: [...FIRST, 'event', 'thing', 'data', LAST],
  mqtt: [...FIRST, 'topic', 'payload', 'payload_json', LAST],
  // The body of the call, as sent when it is a JSON object, else as `data.body`.
  webhook: [...FIRST, 'data', LAST],
} as const satisfies { [K in TriggerType]: ReadonlyArray<keyof TriggerData> };

/** Every field of TriggerData is brought by some trigger: one added there and not here does not compile. */
type Unlisted = Exclude<keyof TriggerData, (typeof TRIGGER_FIELDS)[TriggerType][number]>;
export const EVERY_FIELD_LISTED: [Unlisted] extends [never] ? true : Unlisted = true;

/** What a trigger of these kinds hands its run: only the fields TRIGGER_FIELDS lists for them. */
export type TriggerDataOf<K extends TriggerType> = Pick<TriggerData, (typeof TRIGGER_FIELDS)[K][number]>;

/** The fields a rule with these triggers can read of `trigger`, each once, in the lists' order. */
export function fieldsBroughtBy(types: Iterable<TriggerType>): string[] {
  const fields = new Set<string>();
  for (const type of types) for (const field of TRIGGER_FIELDS[type]) fields.add(field);
  return [...fields];
}
