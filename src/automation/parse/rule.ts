import { createHash } from 'node:crypto';
import { validate } from '../../model/schema.ts';
import { resolveAction, THING_ID_PATTERN, type Thing } from '../../model/thing.ts';
import {
  type Expr,
  ExpressionSyntaxError,
  forEachNode,
  parseExpression,
  stateReferences,
} from '../expression/index.ts';
import type { Action, Condition, Rule, RuleOrigin, RunMode, Template, Trigger, TriggerType } from '../model.ts';
import { fieldsBroughtBy } from '../runtime/trigger-fields.ts';
import { parseCron } from '../time/cron.ts';
import { parseDuration, parseTimeOfDay, WEEKDAYS } from '../time/duration.ts';
import type { SunEvent } from '../time/sun.ts';
import { fieldName, RuleError } from './errors.ts';
import { sceneCommands } from './scene.ts';
import { compileTemplate, templateExpressions, templateIsLiteral } from './template.ts';

/** What validation needs to know about the household a rule belongs to. */
export interface RuleContext {
  householdId: string;
  thing(id: string): Thing | undefined;
  /** Whether the household has a location, which sun triggers and conditions need. */
  hasLocation: boolean;
  origin: RuleOrigin;
  /**
   * What to do with a field that older versions accepted and this one refuses because it means
   * nothing (`max` on a `single` or `restart` rule): `refuse` it in a rule being written now (the
   * API), or `ignore` it in one already stored or in a file, which must still load after an
   * upgrade; what was ignored is listed in the rule's `warnings`. Default `ignore`: a load path
   * that forgets to say must never leave a hub without its rules.
   */
  legacy?: 'refuse' | 'ignore';
}

type Path = Array<string | number>;
type Raw = Record<string, unknown>;

const MODES: RunMode[] = ['single', 'restart', 'queued', 'parallel'];
/** Runs at once (parallel) or waiting (queued) when a rule does not say. */
const DEFAULT_MAX = 10;
const RULE_ID = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const TRIGGER_TYPES = ['state', 'numeric_state', 'zone', 'time', 'cron', 'sun', 'event', 'mqtt', 'webhook'];
const CONDITION_TYPES = [
  'and',
  'or',
  'not',
  'state',
  'numeric_state',
  'time',
  'sun',
  'zone',
  'expression',
  'template',
  'trigger',
];
const CONTROL_ACTIONS = ['delay', 'wait_for_trigger', 'choose', 'if', 'repeat', 'notify', 'stop', 'variables', 'scene'];
/** Names for a webhook's body that Home Assistant (`json`) and MQTT triggers (`payload`) teach. */
const BODY_GUESSES = ['payload', 'payload_json', 'json', 'body'];

/** The fields an expression reads of `trigger` by name: `trigger.topic`, `trigger["topic"]`. */
function triggerFields(expr: Expr): string[] {
  const found: string[] = [];
  forEachNode(expr, (e) => {
    if (e.kind === 'member' && e.object.kind === 'name' && e.object.name === 'trigger') found.push(e.name);
    if (
      e.kind === 'index' &&
      e.object.kind === 'name' &&
      e.object.name === 'trigger' &&
      e.index.kind === 'literal' &&
      typeof e.index.value === 'string'
    )
      found.push(e.index.value);
  });
  return found;
}

/** What a sun trigger or condition without the household's location says: what to do about it. */
const NO_LOCATION =
  'needs the household\'s location, to know when the sun rises and sets there: set it with PUT /api/household {"latitude": …, "longitude": …}';
/**
 * Characters an id may not hold, as ranges of code points: controls (C0, DEL, C1), the marks,
 * overrides and isolates that turn text right to left, zero-width ones, line and paragraph
 * separators, the byte-order mark, and halves of a character without their other half.
 */
const UNSEEN: Array<[number, number]> = [
  [0x00, 0x1f],
  [0x7f, 0x9f],
  [0x61c, 0x61c],
  [0x200b, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2069],
  [0xfeff, 0xfeff],
  [0xd800, 0xdfff],
];

/** The first character of `text` that UNSEEN names, as its code point, or null. */
function unseenCharacter(text: string): number | null {
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (UNSEEN.some(([from, to]) => code >= from && code <= to)) return code;
  }
  return null;
}
/** Most nested action lists and conditions in one rule: a bound on work, far above real rules. */
const MAX_NESTING = 16;

/**
 * A rule's version: a hash of its document as canonical JSON (keys sorted at every level, lists in
 * order), so a rule has the same version however it was stored. PostgreSQL keeps an API rule as
 * JSONB, which hands its keys back in another order than they were written; a hash of the JSON as
 * read made every such rule look changed after a restart, and cancelled its waiting runs.
 */
export function ruleVersion(source: unknown): string {
  return createHash('sha256').update(canonicalJson(source)).digest('hex').slice(0, 16);
}

/** JSON with every object's keys sorted, for a hash that does not depend on their order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const fields = Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Raw)[key])}`);
  return `{${fields.join(',')}}`;
}

/**
 * Turns a rule document (parsed YAML or JSON) into a Rule, or throws a RuleError naming the first
 * field that is wrong. Nothing is returned half-checked: a rule is usable in full or not at all.
 */
export function parseRule(raw: unknown, ctx: RuleContext): Rule {
  return new RuleParser(ctx).rule(raw);
}

class RuleParser {
  private readonly lists: Action[][] = [];
  private readonly listPaths: string[] = [];
  private readonly warnings: string[] = [];
  /** The kinds of the rule's own triggers: what its `trigger` can hold (see triggerFieldProblems). */
  private triggerTypes: TriggerType[] = [];

  constructor(private readonly ctx: RuleContext) {}

  fail(path: Path, message: string): never {
    throw new RuleError({ field: fieldName(path), path, message });
  }

  rule(raw: unknown): Rule {
    const doc = this.object(raw, []);
    this.known(
      doc,
      [],
      [
        'id',
        'name',
        'alias',
        'description',
        'enabled',
        'mode',
        'max',
        'triggers',
        'trigger',
        'conditions',
        'condition',
        'actions',
        'action',
        'variables',
      ],
    );
    const id = doc.id;
    const idRule = 'lower-case letters, digits, ".", "_" or "-", starting with a letter or digit, up to 100 characters';
    if (id === undefined || id === null || id === '') this.fail(['id'], `is required: ${idRule}`);
    else if (typeof id !== 'string') this.fail(['id'], `must be text: ${idRule}`);
    else if (!RULE_ID.test(id)) this.fail(['id'], `${JSON.stringify(id.slice(0, 120))} is not a rule id: ${idRule}`);
    const name = doc.name ?? doc.alias ?? id;
    if (typeof name !== 'string' || name.length > 200) this.fail(['name'], 'must be text of up to 200 characters');
    const description = doc.description ?? '';
    if (typeof description !== 'string') this.fail(['description'], 'must be text');
    const enabled = doc.enabled ?? true;
    if (typeof enabled !== 'boolean') this.fail(['enabled'], 'must be true or false');
    const mode = doc.mode ?? 'single';
    if (typeof mode !== 'string' || !MODES.includes(mode as RunMode))
      this.fail(['mode'], `must be one of ${MODES.join(', ')}`);
    let max = doc.max ?? DEFAULT_MAX;
    if (doc.max !== undefined && (mode === 'single' || mode === 'restart')) {
      // Only queued and parallel rules count runs: a `max` elsewhere was accepted and ignored
      // before, so a rule stored or written with it still loads, with a warning.
      const problem = `only applies to mode queued and parallel, and this rule's mode is ${mode}${doc.mode === undefined ? ' (the default)' : ''}`;
      if (this.ctx.legacy === 'refuse') this.fail(['max'], `${problem}: remove max, or change the mode`);
      this.warnings.push(`max: ignored: ${problem}`);
      max = DEFAULT_MAX;
    }
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 1000)
      this.fail(['max'], 'must be a whole number from 1 to 1000');

    const triggersKey = doc.triggers !== undefined ? 'triggers' : 'trigger';
    const triggers = this.list(doc[triggersKey], [triggersKey], true).map((t, i) =>
      this.trigger(t, [triggersKey, i], String(i)),
    );
    this.triggerTypes = [...new Set(triggers.map((t) => t.type))];
    const seen = new Set<string>();
    for (const [i, t] of triggers.entries()) {
      if (seen.has(t.id)) this.fail([triggersKey, i, 'id'], `trigger id ${JSON.stringify(t.id)} is used twice`);
      seen.add(t.id);
    }
    const conditionsKey = doc.conditions !== undefined ? 'conditions' : 'condition';
    const conditions = this.conditions(doc[conditionsKey], [conditionsKey], 0);
    const actionsKey = doc.actions !== undefined ? 'actions' : 'action';
    this.actionList(doc[actionsKey], [actionsKey], true, 0);
    const variables = doc.variables === undefined ? {} : this.variables(doc.variables, ['variables']);
    const source = JSON.parse(JSON.stringify(doc)) as Raw;
    return {
      id,
      householdId: this.ctx.householdId,
      name,
      description,
      enabled,
      mode: mode as RunMode,
      max,
      triggers,
      conditions,
      lists: this.lists,
      listPaths: this.listPaths,
      variables,
      origin: this.ctx.origin,
      warnings: this.warnings,
      source,
      version: ruleVersion(source),
    };
  }

  // ------------------------------------------------------------------ shapes

  object(raw: unknown, path: Path): Raw {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      this.fail(path, 'must be a mapping (key: value)');
    return raw as Raw;
  }

  list(raw: unknown, path: Path, required: boolean): unknown[] {
    if (raw === undefined || raw === null) {
      if (required) this.fail(path, 'is required and must list at least one item');
      return [];
    }
    const items = Array.isArray(raw) ? raw : [raw];
    if (required && items.length === 0) this.fail(path, 'must list at least one item');
    if (items.length > 200) this.fail(path, 'lists more than 200 items');
    return items;
  }

  known(doc: Raw, path: Path, keys: string[]): void {
    for (const key of Object.keys(doc)) {
      if (!keys.includes(key)) this.fail([...path, key], `is not a known field here (known: ${keys.join(', ')})`);
    }
  }

  string(doc: Raw, key: string, path: Path, required = true): string {
    const value = doc[key];
    if (value === undefined && !required) return '';
    if (typeof value !== 'string' || value === '' || value.length > 500)
      this.fail([...path, key], 'is required and must be non-empty text');
    return value;
  }

  number(doc: Raw, key: string, path: Path): number | undefined {
    const value = doc[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail([...path, key], 'must be a number');
    return value;
  }

  duration(value: unknown, path: Path): number {
    const ms = parseDuration(value);
    if (typeof ms === 'string') this.fail(path, ms);
    if (ms > 366 * 86_400_000) this.fail(path, 'must be at most a year');
    return ms;
  }

  values(value: unknown): unknown[] {
    return Array.isArray(value) ? value : [value];
  }

  weekdays(value: unknown, path: Path): number[] | undefined {
    if (value === undefined) return undefined;
    return this.values(value).map((day, i) => {
      const index =
        typeof day === 'string' ? WEEKDAYS.indexOf(day.toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]) : -1;
      if (index < 0)
        this.fail(Array.isArray(value) ? [...path, i] : path, `must be a weekday (${WEEKDAYS.join(', ')})`);
      return index + 1;
    });
  }

  // ------------------------------------------------------------------ things

  thingId(doc: Raw, key: string, path: Path): Thing {
    const id = doc[key];
    if (typeof id !== 'string' || !THING_ID_PATTERN.test(id)) this.fail([...path, key], 'must be a thing id');
    const thing = this.ctx.thing(id);
    if (!thing) this.fail([...path, key], `unknown thing ${JSON.stringify(id)}`);
    return thing;
  }

  property(thing: Thing, doc: Raw, path: Path): string {
    const property = this.string(doc, 'property', path);
    if (!Object.hasOwn(thing.properties, property)) {
      const known = Object.keys(thing.properties).join(', ') || 'none';
      this.fail(
        [...path, 'property'],
        `unknown property ${JSON.stringify(property)} on ${thing.id} (properties: ${known})`,
      );
    }
    return property;
  }

  /** Checks literal state values against the property's schema, so `state: "on"` for a boolean is caught. */
  stateValues(thing: Thing, property: string, value: unknown, path: Path): unknown[] {
    const values = this.values(value);
    for (const [i, v] of values.entries()) {
      const error = validate(thing.properties[property].schema, v, property);
      if (error) this.fail(Array.isArray(value) ? [...path, i] : path, error);
    }
    return values;
  }

  numericProperty(thing: Thing, property: string, path: Path): void {
    const type = thing.properties[property].schema.type;
    if (type !== 'number' && type !== 'integer') this.fail(path, `${property} on ${thing.id} is not a number`);
  }

  zoneThing(doc: Raw, path: Path): { thing: string; zone: string } {
    const thing = this.thingId(doc, 'thing', path);
    if (!Object.hasOwn(thing.properties, 'presence.zone'))
      this.fail([...path, 'thing'], `${thing.id} has no presence.zone, so it cannot enter or leave zones`);
    return { thing: thing.id, zone: this.string(doc, 'zone', path) };
  }

  // ------------------------------------------------------------------ triggers

  trigger(raw: unknown, path: Path, defaultId: string): Trigger {
    const doc = this.object(raw, path);
    const typeKey = doc.trigger !== undefined ? 'trigger' : 'platform';
    const type = doc[typeKey];
    if (typeof type !== 'string') this.fail([...path, 'trigger'], `is required: one of ${TRIGGER_TYPES.join(', ')}`);
    if (!TRIGGER_TYPES.includes(type))
      this.fail(
        [...path, typeKey],
        `unknown trigger type ${JSON.stringify(type)} (known: ${TRIGGER_TYPES.join(', ')})`,
      );
    const id = doc.id === undefined ? defaultId : doc.id;
    if (typeof id !== 'string' || id === '' || id.length > 100) this.fail([...path, 'id'], 'must be non-empty text');
    this.visibleId(id, [...path, 'id']);
    const base = [typeKey, 'id'];
    switch (type) {
      case 'state': {
        this.known(doc, path, [...base, 'thing', 'property', 'from', 'to', 'for']);
        const thing = this.thingId(doc, 'thing', path);
        const property = this.property(thing, doc, path);
        return {
          id,
          type,
          thing: thing.id,
          property,
          from: doc.from === undefined ? undefined : this.stateValues(thing, property, doc.from, [...path, 'from']),
          to: doc.to === undefined ? undefined : this.stateValues(thing, property, doc.to, [...path, 'to']),
          forMs: doc.for === undefined ? 0 : this.duration(doc.for, [...path, 'for']),
        };
      }
      case 'numeric_state': {
        this.known(doc, path, [...base, 'thing', 'property', 'above', 'below', 'for']);
        const thing = this.thingId(doc, 'thing', path);
        const property = this.property(thing, doc, path);
        this.numericProperty(thing, property, [...path, 'property']);
        const above = this.number(doc, 'above', path);
        const below = this.number(doc, 'below', path);
        if (above === undefined && below === undefined) this.fail([...path, 'above'], 'above or below is required');
        if (above !== undefined && below !== undefined && above >= below)
          this.fail([...path, 'below'], 'must be greater than above');
        return {
          id,
          type,
          thing: thing.id,
          property,
          above,
          below,
          forMs: doc.for === undefined ? 0 : this.duration(doc.for, [...path, 'for']),
        };
      }
      case 'zone': {
        this.known(doc, path, [...base, 'thing', 'zone', 'event']);
        const event = doc.event ?? 'enter';
        if (event !== 'enter' && event !== 'leave') this.fail([...path, 'event'], 'must be enter or leave');
        return { id, type, ...this.zoneThing(doc, path), event };
      }
      case 'time': {
        this.known(doc, path, [...base, 'at', 'weekday']);
        const at = this.values(doc.at).map((t, i) => {
          const seconds = parseTimeOfDay(t);
          if (seconds === null)
            this.fail(
              Array.isArray(doc.at) ? [...path, 'at', i] : [...path, 'at'],
              'must be a time of day HH:MM or HH:MM:SS',
            );
          return seconds;
        });
        return { id, type, at, weekdays: this.weekdays(doc.weekday, [...path, 'weekday']) };
      }
      case 'cron': {
        this.known(doc, path, [...base, 'pattern']);
        const pattern = this.string(doc, 'pattern', path);
        const schedule = parseCron(pattern);
        if (typeof schedule === 'string') this.fail([...path, 'pattern'], schedule);
        return { id, type, pattern, schedule };
      }
      case 'sun': {
        this.known(doc, path, [...base, 'event', 'offset']);
        if (doc.event !== 'sunrise' && doc.event !== 'sunset')
          this.fail([...path, 'event'], 'must be sunrise or sunset');
        if (!this.ctx.hasLocation) this.fail([...path, 'event'], NO_LOCATION);
        return { id, type, event: doc.event, offsetMs: this.offset(doc.offset, [...path, 'offset']) };
      }
      case 'event': {
        this.known(doc, path, [...base, 'event_type', 'thing', 'data']);
        const eventType = this.string(doc, 'event_type', path);
        if (!/^(state|command|availability|thing\.(added|updated|removed)|[a-z0-9_]+\.[a-z0-9_.]+)$/.test(eventType)) {
          this.fail(
            [...path, 'event_type'],
            'must be a Triad event type such as command, state, availability or automation.run',
          );
        }
        const thing = doc.thing === undefined ? undefined : this.thingId(doc, 'thing', path).id;
        const data = doc.data === undefined ? undefined : this.object(doc.data, [...path, 'data']);
        return { id, type, eventType, thing, data };
      }
      case 'mqtt': {
        this.known(doc, path, [...base, 'topic', 'payload']);
        const topic = this.string(doc, 'topic', path);
        if (/#./.test(topic) || /[^/]\+|\+[^/]/.test(topic))
          this.fail([...path, 'topic'], 'is not a valid MQTT topic filter');
        if (doc.payload !== undefined && !['string', 'number', 'boolean'].includes(typeof doc.payload))
          this.fail([...path, 'payload'], 'must be the text of the message to match, such as "on" or \'{"on": true}\'');
        const payload = doc.payload === undefined ? undefined : String(doc.payload);
        return { id, type, topic, payload };
      }
      case 'webhook': {
        this.known(doc, path, [...base, 'webhook_id']);
        const webhookId = this.string(doc, 'webhook_id', path);
        if (!/^[A-Za-z0-9_-]{8,128}$/.test(webhookId))
          this.fail([...path, 'webhook_id'], 'must be 8 to 128 letters, digits, "_" or "-" (hard to guess)');
        return { id, type, webhookId };
      }
      default:
        return this.fail([...path, typeKey], `unknown trigger type ${JSON.stringify(type)}`);
    }
  }

  offset(value: unknown, path: Path): number {
    if (value === undefined) return 0;
    if (typeof value === 'string' && value.trim().startsWith('-')) return -this.duration(value.trim().slice(1), path);
    // A number of seconds, before or after, bounded as a duration is: it was taken as it came,
    // and 1e300 (or YAML's .inf) made a sun trigger that never fires.
    if (typeof value === 'number' && value < 0) return -this.duration(-value, path);
    return this.duration(value, path);
  }

  // ------------------------------------------------------------------ conditions

  conditions(raw: unknown, path: Path, depth: number): Condition[] {
    return this.list(raw, path, false).map((c, i) =>
      this.condition(c, Array.isArray(raw) ? [...path, i] : path, depth),
    );
  }

  condition(raw: unknown, path: Path, depth: number): Condition {
    if (depth > MAX_NESTING) this.fail(path, `is nested more than ${MAX_NESTING} levels deep`);
    // A bare string is an expression, the shorthand Home Assistant users know from templates.
    if (typeof raw === 'string') return this.expression(raw, path);
    const doc = this.object(raw, path);
    const type = doc.condition;
    if (typeof type !== 'string')
      this.fail([...path, 'condition'], `is required: one of ${CONDITION_TYPES.join(', ')}`);
    if (!CONDITION_TYPES.includes(type))
      this.fail(
        [...path, 'condition'],
        `unknown condition type ${JSON.stringify(type)} (known: ${CONDITION_TYPES.join(', ')})`,
      );
    switch (type) {
      case 'and':
      case 'or':
      case 'not':
        this.known(doc, path, ['condition', 'conditions']);
        return {
          type,
          conditions: this.list(doc.conditions, [...path, 'conditions'], true).map((c, i) =>
            this.condition(c, [...path, 'conditions', i], depth + 1),
          ),
        };
      case 'state': {
        this.known(doc, path, ['condition', 'thing', 'property', 'state']);
        const thing = this.thingId(doc, 'thing', path);
        const property = this.property(thing, doc, path);
        if (doc.state === undefined) this.fail([...path, 'state'], 'is required');
        return {
          type,
          thing: thing.id,
          property,
          state: this.stateValues(thing, property, doc.state, [...path, 'state']),
        };
      }
      case 'numeric_state': {
        this.known(doc, path, ['condition', 'thing', 'property', 'above', 'below']);
        const thing = this.thingId(doc, 'thing', path);
        const property = this.property(thing, doc, path);
        this.numericProperty(thing, property, [...path, 'property']);
        const above = this.number(doc, 'above', path);
        const below = this.number(doc, 'below', path);
        if (above === undefined && below === undefined) this.fail([...path, 'above'], 'above or below is required');
        return { type, thing: thing.id, property, above, below };
      }
      case 'time': {
        this.known(doc, path, ['condition', 'after', 'before', 'weekday']);
        const at = (key: string) => {
          if (doc[key] === undefined) return undefined;
          const seconds = parseTimeOfDay(doc[key]);
          if (seconds === null) this.fail([...path, key], 'must be a time of day HH:MM or HH:MM:SS');
          return seconds;
        };
        const result = {
          type,
          after: at('after'),
          before: at('before'),
          weekdays: this.weekdays(doc.weekday, [...path, 'weekday']),
        } as const;
        if (result.after === undefined && result.before === undefined && !result.weekdays)
          this.fail([...path, 'after'], 'after, before or weekday is required');
        return result;
      }
      case 'sun': {
        this.known(doc, path, ['condition', 'after', 'before', 'after_offset', 'before_offset']);
        if (!this.ctx.hasLocation) this.fail([...path, 'condition'], NO_LOCATION);
        const edge = (key: 'after' | 'before') => {
          if (doc[key] === undefined) return undefined;
          if (doc[key] !== 'sunrise' && doc[key] !== 'sunset') this.fail([...path, key], 'must be sunrise or sunset');
          return {
            event: doc[key] as SunEvent,
            offsetMs: this.offset(doc[`${key}_offset`], [...path, `${key}_offset`]),
          };
        };
        const after = edge('after');
        const before = edge('before');
        if (!after && !before) this.fail([...path, 'after'], 'after or before is required');
        return { type, after, before };
      }
      case 'zone':
        this.known(doc, path, ['condition', 'thing', 'zone']);
        return { type, ...this.zoneThing(doc, path) };
      case 'expression':
      case 'template': {
        const key = type === 'template' ? 'value_template' : 'expression';
        this.known(doc, path, ['condition', key]);
        const text = doc[key];
        if (typeof text !== 'string') this.fail([...path, key], 'is required and must be an expression');
        return this.expression(text, [...path, key]);
      }
      case 'trigger': {
        this.known(doc, path, ['condition', 'id']);
        const ids = this.values(doc.id);
        if (doc.id === undefined || ids.some((id) => typeof id !== 'string'))
          this.fail([...path, 'id'], 'must name one or more trigger ids');
        for (const id of ids as string[]) this.visibleId(id, [...path, 'id']);
        return { type, ids: ids as string[] };
      }
      default:
        return this.fail([...path, 'condition'], `unknown condition type ${JSON.stringify(type)}`);
    }
  }

  expression(text: string, path: Path): Condition {
    // Home Assistant habits: `{{ … }}` around a template condition is accepted and stripped.
    const inner = /^\s*\{\{([\s\S]*)\}\}\s*$/.exec(text)?.[1] ?? text;
    try {
      const expression = parseExpression(inner);
      this.checkStateReferences(expression, path);
      this.refuseOrWarn(this.triggerFieldProblems(expression), inner.trim(), path, 'it reads as null');
      return { type: 'expression', expression, text: inner.trim() };
    } catch (error) {
      if (error instanceof ExpressionSyntaxError) this.fail(path, error.message);
      throw error;
    }
  }

  checkStateReferences(expr: ReturnType<typeof parseExpression>, path: Path): void {
    for (const ref of stateReferences(expr)) {
      const thing = this.ctx.thing(ref.thing);
      if (!thing) this.fail(path, `state(): unknown thing ${JSON.stringify(ref.thing)}`);
      if (!Object.hasOwn(thing.properties, ref.property))
        this.fail(path, `state(): unknown property ${JSON.stringify(ref.property)} on ${ref.thing}`);
    }
  }

  template(value: unknown, path: Path): Template {
    let template: Template;
    try {
      template = compileTemplate(value);
    } catch (error) {
      if (error instanceof ExpressionSyntaxError) this.fail(path, error.message);
      throw error;
    }
    for (const part of templateExpressions(template, path)) this.checkTemplateReads(part.expr, part.source, part.path);
    return template;
  }

  /**
   * What a `{{ … }}` reads that can be known not to exist when the rule is saved: a thing or a
   * property named in `state("…", "…")`, a field none of the rule's triggers brings
   * (`trigger.paylod`, or `trigger.topic` in a rule fired by a webhook). It would render as
   * nothing at every run, without a word.
   */
  checkTemplateReads(expr: Expr, source: string, path: Path): void {
    const problems: string[] = [];
    for (const ref of stateReferences(expr)) {
      const thing = this.ctx.thing(ref.thing);
      if (!thing) problems.push(`state(): unknown thing ${JSON.stringify(ref.thing)}`);
      else if (!Object.hasOwn(thing.properties, ref.property)) {
        const known = Object.keys(thing.properties).join(', ') || 'none';
        problems.push(
          `state(): unknown property ${JSON.stringify(ref.property)} on ${ref.thing} (properties: ${known})`,
        );
      }
    }
    problems.push(...this.triggerFieldProblems(expr));
    const shown = source.length > 80 ? `${source.slice(0, 80)}…` : source;
    this.refuseOrWarn(problems, `{{ ${shown} }}`, path, 'it renders as nothing');
  }

  /**
   * The fields an expression reads of `trigger` that none of the rule's own triggers brings (see
   * TRIGGER_FIELDS, the list the runtime is held to), each with the fields they do bring.
   */
  triggerFieldProblems(expr: Expr): string[] {
    const brought = fieldsBroughtBy(this.triggerTypes);
    const kinds = this.triggerTypes.join(' and ');
    const whose = this.triggerTypes.length === 1 ? `its ${kinds} trigger brings` : `its ${kinds} triggers bring`;
    return triggerFields(expr)
      .filter((field) => !brought.includes(field))
      .map((field) => {
        // Where Home Assistant and MQTT habits look for a webhook's body.
        const hint =
          this.triggerTypes.includes('webhook') && BODY_GUESSES.includes(field)
            ? '; the body of a webhook call is trigger.data'
            : '';
        return `trigger has no field ${JSON.stringify(field)} (fields: ${brought.join(', ')}: what ${whose})${hint}`;
      });
  }

  /**
   * A read known at save to find nothing is refused in a rule written now; in one stored or in a
   * file (see RuleContext.legacy) it is a warning, as such a rule ran before the check and must
   * still load.
   */
  refuseOrWarn(problems: string[], where: string, path: Path, consequence: string): void {
    for (const problem of problems) {
      if (this.ctx.legacy === 'refuse') this.fail(path, `${problem}, in ${where}`);
      this.warnings.push(`${fieldName(path)}: ${problem}, in ${where}; ${consequence}`);
    }
  }

  /**
   * An id shows in traces, logs and the dashboard: one holding a control character (a newline, a
   * NUL) or one that changes how the text around it reads (a right-to-left override making
   * "txt.exe" look like "exe.txt") could pass for another there, or break the lines a log is
   * read by. It is refused in a rule written now; in one stored or in a file from before this
   * check it is a warning, as such a rule must still load.
   */
  visibleId(id: string, path: Path): void {
    const found = unseenCharacter(id);
    if (found === null) return;
    const code = `U+${found.toString(16).toUpperCase().padStart(4, '0')}`;
    const problem = `${JSON.stringify(id)} holds a control or invisible character (${code}); use letters, digits, spaces and punctuation`;
    if (this.ctx.legacy === 'refuse') this.fail(path, problem);
    this.warnings.push(`${fieldName(path)}: ${problem}; the rule runs with it as it is`);
  }

  variables(raw: unknown, path: Path): Record<string, Template> {
    const doc = this.object(raw, path);
    const out: Record<string, Template> = {};
    for (const [key, value] of Object.entries(doc)) {
      // `__proto__` set on `out` would replace its prototype, not add the variable.
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key) || key === 'trigger' || key === '__proto__')
        this.fail([...path, key], 'is not a usable variable name');
      out[key] = this.template(value, [...path, key]);
    }
    return out;
  }

  // ------------------------------------------------------------------ actions

  /** Parses a list of actions into `this.lists` and returns its index. */
  actionList(raw: unknown, path: Path, required: boolean, depth: number): number {
    if (depth > MAX_NESTING) this.fail(path, `is nested more than ${MAX_NESTING} levels deep`);
    const index = this.lists.length;
    this.lists.push([]);
    this.listPaths.push(fieldName(path));
    const items = this.list(raw, path, required);
    this.lists[index] = items.map((a, i) => this.action(a, Array.isArray(raw) ? [...path, i] : path, depth));
    return index;
  }

  action(raw: unknown, path: Path, depth: number): Action {
    const doc = this.object(raw, path);
    const control = CONTROL_ACTIONS.find(
      (key) => key !== 'notify' && key !== 'scene' && doc[key] !== undefined && doc.action === undefined,
    );
    const name = typeof doc.action === 'string' ? doc.action : control;
    if (!name)
      this.fail(
        [...path, 'action'],
        `is required: a thing's action (turn_on, lock, …) or one of ${CONTROL_ACTIONS.join(', ')}`,
      );
    switch (name) {
      case 'delay':
        this.known(doc, path, ['action', 'delay']);
        return { type: 'delay', ms: this.duration(doc.delay, [...path, 'delay']) };
      case 'wait_for_trigger': {
        this.known(doc, path, ['action', 'wait_for_trigger', 'timeout', 'continue_on_timeout']);
        const triggers = this.list(doc.wait_for_trigger, [...path, 'wait_for_trigger'], true).map((t, i) =>
          this.trigger(t, [...path, 'wait_for_trigger', i], String(i)),
        );
        for (const [i, t] of triggers.entries()) {
          if (t.type === 'webhook' || t.type === 'mqtt' || t.type === 'time' || t.type === 'cron' || t.type === 'sun') {
            this.fail(
              [...path, 'wait_for_trigger', i, 'trigger'],
              `a wait cannot use a ${t.type} trigger; use state, numeric_state, zone or event`,
            );
          }
        }
        const continueOnTimeout = doc.continue_on_timeout ?? true;
        if (typeof continueOnTimeout !== 'boolean')
          this.fail([...path, 'continue_on_timeout'], 'must be true or false');
        return {
          type: 'wait',
          triggers,
          timeoutMs: doc.timeout === undefined ? null : this.duration(doc.timeout, [...path, 'timeout']),
          continueOnTimeout,
        };
      }
      case 'choose': {
        this.known(doc, path, ['action', 'choose', 'default']);
        const options = this.list(doc.choose, [...path, 'choose'], true).map((o, i) => {
          const p = [...path, 'choose', i];
          const option = this.object(o, p);
          this.known(option, p, ['conditions', 'sequence', 'actions']);
          const key = option.sequence !== undefined ? 'sequence' : 'actions';
          return {
            conditions: this.conditions(option.conditions, [...p, 'conditions'], depth + 1),
            list: this.actionList(option[key], [...p, key], true, depth + 1),
          };
        });
        return {
          type: 'choose',
          options,
          otherwise:
            doc.default === undefined ? null : this.actionList(doc.default, [...path, 'default'], false, depth + 1),
        };
      }
      case 'if':
        this.known(doc, path, ['action', 'if', 'then', 'else']);
        return {
          type: 'if',
          conditions: this.conditions(doc.if, [...path, 'if'], depth + 1),
          whenTrue: this.actionList(doc.then, [...path, 'then'], true, depth + 1),
          otherwise: doc.else === undefined ? null : this.actionList(doc.else, [...path, 'else'], false, depth + 1),
        };
      case 'repeat': {
        this.known(doc, path, ['action', 'repeat']);
        const p = [...path, 'repeat'];
        const spec = this.object(doc.repeat, p);
        this.known(spec, p, ['count', 'while', 'until', 'sequence']);
        const count = this.number(spec, 'count', p);
        if (count !== undefined && (!Number.isInteger(count) || count < 0 || count > 10_000))
          this.fail([...p, 'count'], 'must be a whole number from 0 to 10000');
        const loops = [count !== undefined, spec.while !== undefined, spec.until !== undefined].filter(Boolean).length;
        if (loops !== 1) this.fail([...p, 'count'], 'give exactly one of count, while or until');
        return {
          type: 'repeat',
          count,
          while: spec.while === undefined ? undefined : this.conditions(spec.while, [...p, 'while'], depth + 1),
          until: spec.until === undefined ? undefined : this.conditions(spec.until, [...p, 'until'], depth + 1),
          list: this.actionList(spec.sequence, [...p, 'sequence'], true, depth + 1),
        };
      }
      case 'notify': {
        this.known(doc, path, ['action', 'message', 'title', 'webhook']);
        if (doc.message === undefined) this.fail([...path, 'message'], 'is required');
        const webhook = doc.webhook === undefined ? null : this.string(doc, 'webhook', path);
        if (webhook !== null && !/^https?:\/\/[^\s]+$/.test(webhook))
          this.fail([...path, 'webhook'], 'must be an http:// or https:// URL');
        return {
          type: 'notify',
          message: this.template(doc.message, [...path, 'message']),
          title: doc.title === undefined ? null : this.template(doc.title, [...path, 'title']),
          webhook,
        };
      }
      case 'stop': {
        this.known(doc, path, ['action', 'stop', 'error']);
        const reason = doc.stop ?? '';
        if (typeof reason !== 'string') this.fail([...path, 'stop'], 'must be text');
        if (doc.error !== undefined && typeof doc.error !== 'boolean')
          this.fail([...path, 'error'], 'must be true or false');
        return { type: 'stop', reason, error: doc.error === true };
      }
      case 'variables':
        this.known(doc, path, ['action', 'variables']);
        return { type: 'variables', variables: this.variables(doc.variables, [...path, 'variables']) };
      case 'scene':
        this.known(doc, path, ['action', 'scene']);
        return { type: 'scene', entries: this.scene(doc.scene, [...path, 'scene']) };
      default:
        return this.thingAction(name, doc, path);
    }
  }

  thingAction(name: string, doc: Raw, path: Path): Action {
    this.known(doc, path, ['action', 'thing', 'things', 'target', 'data', 'input', 'continue_on_error']);
    let things: string[];
    if (doc.thing !== undefined) things = [this.thingId(doc, 'thing', path).id];
    else if (doc.things !== undefined) {
      const list = this.list(doc.things, [...path, 'things'], true);
      things = list.map((_, i) => this.thingId(list as unknown as Raw, String(i), [...path, 'things']).id);
    } else {
      this.fail([...path, 'thing'], `is required: the thing to ${name} (or things: a list)`);
    }
    const inputKey = doc.input !== undefined ? 'input' : 'data';
    const input =
      doc[inputKey] === undefined
        ? null
        : this.template(this.object(doc[inputKey], [...path, inputKey]), [...path, inputKey]);
    for (const [i, id] of things.entries()) {
      const thing = this.ctx.thing(id) as Thing;
      const resolved = resolveAction(thing, name);
      const where = doc.thing !== undefined ? [...path, 'action'] : [...path, 'things', i];
      if (!resolved) {
        const known = Object.keys(thing.actions).join(', ') || 'none';
        this.fail(
          doc.thing !== undefined ? [...path, 'action'] : where,
          `unknown action ${JSON.stringify(name)} on ${id} (actions: ${known})`,
        );
      }
      // Literal inputs are checked now; inputs with {{ }} parts can only be checked when they are filled in.
      if (input === null || templateIsLiteral(input)) {
        const value = input === null ? {} : (input as { value: unknown }).value;
        const error = validate(resolved.spec.input ?? { type: 'object', properties: {} }, value, inputKey);
        if (error) this.fail([...path, inputKey], `${error} (for ${id}.${resolved.key})`);
      }
    }
    const continueOnError = doc.continue_on_error ?? false;
    if (typeof continueOnError !== 'boolean') this.fail([...path, 'continue_on_error'], 'must be true or false');
    return { type: 'thing', action: name, things, input, continueOnError };
  }

  scene(raw: unknown, path: Path): Array<{ thing: string; action: string; input: Record<string, unknown> }> {
    const doc = this.object(raw, path);
    if (Object.keys(doc).length === 0) this.fail(path, 'must set at least one thing');
    const entries: Array<{ thing: string; action: string; input: Record<string, unknown> }> = [];
    for (const id of Object.keys(doc)) {
      const thing = this.thingId({ [id]: id }, id, path);
      const desired = this.object(doc[id], [...path, id]);
      const result = sceneCommands(thing, desired);
      if (typeof result === 'string') this.fail([...path, id], result);
      for (const command of result) entries.push({ thing: id, ...command });
    }
    return entries;
  }
}
