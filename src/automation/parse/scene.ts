import { validate } from '../../model/schema.ts';
import { resolveAction, type Thing } from '../../model/thing.ts';

type Command = { action: string; input: Record<string, unknown> };

/**
 * Which commands bring a thing into the state a scene asks for, e.g. `{light.on: true,
 * light.brightness: 40}` → `turn_on {brightness: 40}`. Returns a message when the thing cannot
 * reach the state (an unknown property, or no action that sets it).
 */
export function sceneCommands(thing: Thing, desired: Record<string, unknown>): Command[] | string {
  const commands: Command[] = [];
  const handled = new Set<string>();
  const want = (property: string) => (Object.hasOwn(desired, property) ? desired[property] : undefined);
  for (const property of Object.keys(desired)) {
    if (!Object.hasOwn(thing.properties, property)) {
      return `${thing.id} has no property ${JSON.stringify(property)} (properties: ${Object.keys(thing.properties).join(', ')})`;
    }
    const error = validate(thing.properties[property].schema, desired[property], property);
    if (error) return error;
  }
  const add = (action: string, input: Record<string, unknown>, covers: string[]): string | null => {
    if (!resolveAction(thing, action)) return `${thing.id} has no ${action} action to set ${covers.join(', ')}`;
    commands.push({ action, input });
    for (const p of covers) handled.add(p);
    return null;
  };
  for (const capability of ['light', 'switch']) {
    const on = want(`${capability}.on`);
    const extras: Record<string, unknown> = {};
    const covered: string[] = [];
    for (const name of ['brightness', 'color_temp']) {
      const v = capability === 'light' ? want(`light.${name}`) : undefined;
      if (v !== undefined) {
        extras[name] = v;
        covered.push(`light.${name}`);
      }
    }
    if (on === false) {
      const problem = add('turn_off', {}, [`${capability}.on`]);
      if (problem) return problem;
    } else if (on === true || covered.length) {
      const problem = add('turn_on', extras, [...(on === true ? [`${capability}.on`] : []), ...covered]);
      if (problem) return problem;
    }
  }
  const direct: Array<[string, (v: unknown) => Command]> = [
    ['lock.locked', (v) => ({ action: v ? 'lock' : 'unlock', input: {} })],
    ['climate.mode', (v) => ({ action: 'set_mode', input: { mode: v } })],
    ['climate.target_temperature', (v) => ({ action: 'set_target_temperature', input: { temperature: v } })],
    ['cover.position', (v) => ({ action: 'set_position', input: { position: v } })],
    ['charging.charging', (v) => ({ action: v ? 'start' : 'stop', input: {} })],
    ['charging.limit', (v) => ({ action: 'set_limit', input: { limit: v } })],
    ['charging.current_limit', (v) => ({ action: 'set_current_limit', input: { current: v } })],
  ];
  for (const [property, make] of direct) {
    const v = want(property);
    if (v === undefined) continue;
    const command = make(v);
    const problem = add(command.action, command.input, [property]);
    if (problem) return problem;
  }
  const rest = Object.keys(desired).filter((p) => !handled.has(p));
  if (rest.length) return `no action can set ${rest.join(', ')} on ${thing.id}`;
  return commands;
}
