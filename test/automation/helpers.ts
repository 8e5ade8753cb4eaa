import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import YAML from 'yaml';
import type { Adapter, AdapterContext } from '../../src/adapters/adapter.ts';
import { runReplayCommand } from '../../src/automation/cli.ts';
import { AutomationEngine, type AutomationEngineOptions, type Trace } from '../../src/automation/index.ts';
import type { Clock, VirtualClock } from '../../src/core/clock.ts';
import type { Command, HubEvent } from '../../src/core/events.ts';
import { Hub, type HubServices, type StoreChoice, type Subsystem } from '../../src/core/hub.ts';
import { createLogger, type Logger } from '../../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../../src/model/thing.ts';
import { tempDir } from '../helpers/hub-process.ts';

export const HOME = 'home';

/**
 * A small home on the other side of an adapter, for tests that need exact control of values on the
 * virtual clock (the demo sensor wanders on its own): a sensor, a fan and a dimmable light that
 * confirm their commands 10 ms later, and a person whose zone tests can move.
 */
export class TestHome implements Adapter, Subsystem {
  readonly name = 'test-home';
  ctx!: AdapterContext;
  readonly sent: Command[] = [];

  async start(target: AdapterContext | HubServices): Promise<void> {
    if ('addAdapter' in target) {
      // Used as a subsystem: registers itself as an adapter before the engine starts.
      await target.addAdapter(this);
      return;
    }
    this.ctx = target;
    const base = { householdId: HOME, kind: 'device' as const, adapter: this.name };
    await this.ctx.upsertThing({
      ...base,
      id: 'living-room-sensor',
      name: 'Living room sensor',
      properties: vocabularyProperties(['sensor.temperature', 'sensor.humidity']),
      actions: {},
    });
    await this.ctx.upsertThing({
      ...base,
      id: 'living-room-fan',
      name: 'Living room fan',
      properties: vocabularyProperties(['switch.on']),
      actions: vocabularyActions('switch'),
    });
    await this.ctx.upsertThing({
      ...base,
      id: 'hall-light',
      name: 'Hall light',
      properties: vocabularyProperties(['light.on', 'light.brightness']),
      actions: vocabularyActions('light'),
    });
    await this.ctx.upsertThing({
      ...base,
      id: 'anna',
      kind: 'person',
      name: 'Anna',
      properties: vocabularyProperties(['presence.zone']),
      actions: {},
    });
  }

  async stop(): Promise<void> {}

  async execute(command: Command): Promise<void> {
    this.sent.push(command);
    const capability = command.thing === 'hall-light' ? 'light' : 'switch';
    const on =
      command.action === 'turn_on' ||
      (command.action === 'toggle' && this.ctx.getValue(HOME, command.thing, `${capability}.on`) !== true);
    const reports = [{ property: `${capability}.on`, value: on as unknown }];
    const brightness = (command.input as { brightness?: unknown }).brightness;
    if (brightness !== undefined) reports.push({ property: 'light.brightness', value: brightness });
    this.ctx.clock.setTimeout(() => {
      this.ctx.ingest(reports.map((r) => ({ householdId: HOME, thing: command.thing, ...r, source: this.name })));
    }, 10);
  }
}

export interface TestHub {
  hub: Hub;
  engine: AutomationEngine;
  home: TestHome | null;
  events: HubEvent[];
  dataDir: string;
  api(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  set(thing: string, property: string, value: unknown, ts?: number): void;
  ruleCommands(rule: string): Command[];
}

export async function startTestHub(options: {
  dataDir?: string;
  clock?: Clock;
  demo?: boolean;
  engine?: AutomationEngineOptions;
  /** Where the hub logs; silent by default. */
  log?: Logger;
  /** More of Triad (people, energy…), started before the engine as createTriad orders them. */
  subsystems?: Subsystem[];
  /** The store the hub keeps its data in: SQLite in dataDir by default. */
  store?: StoreChoice;
}): Promise<TestHub> {
  const dataDir = options.dataDir ?? (await tempDir('triad-auto-'));
  const hub = new Hub({
    dataDir,
    http: { port: 0, host: '127.0.0.1' },
    // Tests connect plain MQTT clients (a watcher on `#`, a publisher) without device accounts.
    mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
    demo: options.demo ?? false,
    clock: options.clock,
    commandTimeoutMs: 60_000,
    log: options.log ?? createLogger({ level: 'silent' }),
    store: options.store,
  });
  const home = options.demo ? null : new TestHome();
  if (home) hub.use(home);
  for (const subsystem of options.subsystems ?? []) hub.use(subsystem);
  const engine = new AutomationEngine({ watch: false, ...options.engine });
  hub.use(engine);
  const events: HubEvent[] = [];
  hub.bus.subscribe((event) => events.push(event));
  await hub.start();
  return {
    hub,
    engine,
    home,
    events,
    dataDir,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      const token = init.token === undefined ? hub.ownerToken : init.token;
      if (token) headers.set('authorization', `Bearer ${token}`);
      if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(hub.httpUrl + path, { ...init, headers });
    },
    set(thing, property, value, ts) {
      hub.core.ingest([{ householdId: HOME, thing, property, value, ts, source: 'test' }]);
    },
    ruleCommands(rule) {
      const seen = new Map<string, Command>();
      for (const e of events)
        if (e.type === 'command' && e.command.issuedBy === `rule:${rule}`) seen.set(e.command.id, e.command);
      return [...seen.values()];
    },
  };
}

export const FAN_RULE_YAML = `id: fan-when-hot
name: Fan on when the living room is hot
mode: single
triggers:
  - trigger: numeric_state
    thing: living-room-sensor
    property: sensor.temperature
    above: 25
    for: 10m
conditions:
  - condition: state
    thing: household
    property: presence.anyone_home
    state: true
actions:
  - action: turn_on
    thing: living-room-fan
`;

export const MIN = 60_000;

/** Advances the virtual clock in steps, so store and MQTT I/O started on the way keeps up with it. */
export async function advance(clock: VirtualClock, ms: number, step = 1000): Promise<void> {
  for (let done = 0; done < ms; done += step) await clock.advance(Math.min(step, ms - done));
}

/** Creates a rule (an object, or YAML text as a JSON string) over the API; throws unless 201. */
export async function postRule(t: TestHub, rule: Record<string, unknown> | string): Promise<void> {
  const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
  if (response.status !== 201) throw new Error(`POST /api/automations: ${response.status} ${await response.text()}`);
}

/** A rule's traces over the API, oldest first. */
export async function tracesOf(t: TestHub, rule: string): Promise<Trace[]> {
  const response = await t.api(`/api/automations/${rule}/traces`);
  if (response.status !== 200) throw new Error(`traces of ${rule}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as Trace[]).reverse();
}

/** Runs `triad replay` in process with its output and progress captured, for the CLI's tests. */
export async function replayCaptured(
  args: Parameters<typeof runReplayCommand>[0],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  err.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await runReplayCommand({ out, progress: err, ...args });
  return { code, stdout, stderr };
}

/** A rule the tests write in a file: the fan on when the living room's humidity goes over 60 %. */
export const HUMID_RULE = {
  id: 'fan-when-humid',
  name: 'Fan when humid',
  triggers: [{ trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60 }],
  actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
};

/** Humidity down and up across 60 %: one crossing, so one run of a rule that is loaded. */
export async function crossSixty(t: TestHub, clock: VirtualClock): Promise<void> {
  t.set('living-room-sensor', 'sensor.humidity', 40);
  t.set('living-room-sensor', 'sensor.humidity', 70);
  await advance(clock, 1000, 100);
}

/**
 * Writes a rule file into the hub's rules folder (a document as YAML, or text as it is) and has
 * the engine read it, as its watcher would.
 */
export async function writeRuleFile(t: TestHub, name: string, rule: Record<string, unknown> | string): Promise<void> {
  const folder = join(t.dataDir, 'automations');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, name), typeof rule === 'string' ? rule : YAML.stringify(rule));
  await t.engine.reloadFile(name);
}
