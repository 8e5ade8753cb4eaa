import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RouteModule } from '../api/server.ts';
import { badRequest, conflict, HubError, notFound } from '../core/errors.ts';
import type { HubEvent } from '../core/events.ts';
import type { HubServices, Subsystem } from '../core/hub.ts';
import { KeyedSerial } from '../core/serial.ts';
import { householdTimeZone, SITE_THING, siteTariffZone } from '../core/wall-time.ts';
import type { StoredTimer, StoredTrace } from '../store/store.ts';
import {
  type CatalogueContext,
  type FileProblem,
  fileProblem,
  type RuleEntry,
  rulesFromFile,
  validateRule,
} from './live/catalogue.ts';
import { registerAutomationRoutes } from './live/routes.ts';
import { liveWorld, locationFromSettings, type RetentionPolicy } from './live/world.ts';
import type { Rule, RuleOrigin } from './model.ts';
import { describeProblem, RuleError } from './parse/errors.ts';
import { locate, readRulesYaml, type YamlRule } from './parse/yaml.ts';
import { restoreSecrets, summarise } from './redact.ts';
import { noteClamped, type ReplayResult, recordedRange, replayRules, storeSource } from './replay.ts';
import { AutomationRuntime, TIMER_OWNER } from './runtime/runtime.ts';
import type { Trace } from './runtime/trace.ts';
import type { GeoPoint } from './time/sun.ts';

export interface AutomationEngineOptions {
  /** Folder of YAML rule files; default `<data>/automations`. */
  folder?: string;
  /** Watch the folder and reload changed files; default true. */
  watch?: boolean;
  /** How long the folder must be quiet before a changed file is read; default 300 ms. */
  reloadDebounceMs?: number;
  retention?: Partial<RetentionPolicy>;
  /** Where `notify` actions without their own `webhook:` are posted, if anywhere. */
  notifyWebhook?: string;
  webhookTimeoutMs?: number;
}

const DEFAULT_RETENTION: RetentionPolicy = { perRule: 100, maxAgeMs: 30 * 86_400_000 };

/**
 * How long traces are kept, in the largest whole unit that says it: "30 days", "12 hours",
 * "90 minutes". In days alone, a retention under a day read "none older than 0 days".
 */
export function retentionAge(ms: number): string {
  const units: Array<[string, number]> = [
    ['day', 86_400_000],
    ['hour', 3_600_000],
    ['minute', 60_000],
    ['second', 1000],
  ];
  for (const [name, size] of units) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${name}${ms === size ? '' : 's'}`;
  }
  const seconds = Math.round(ms / 1000);
  return seconds >= 1 ? `${seconds} second${seconds === 1 ? '' : 's'}` : `${ms} ms`;
}

/**
 * Triad's automation engine as a hub subsystem: rules from `<data>/automations/*.yaml` and the
 * API, run by an AutomationRuntime against the live hub, with traces in the store and timers
 * that survive restarts.
 */
export class AutomationEngine implements Subsystem {
  readonly name = 'automations';
  readonly routes: RouteModule;
  private hub: HubServices | null = null;
  private runtime: AutomationRuntime | null = null;
  private readonly entries = new Map<string, Map<string, RuleEntry>>();
  /** Which rule ids each file holds, and the problem with its latest text, if any. */
  private readonly files = new Map<string, { ids: string[]; problem: FileProblem | null }>();
  /**
   * The problem last logged for each file that is not applied. A file with a problem is read
   * again whenever things change (see queueRejudge), some twenty times as discovery catches up
   * at a start: the same problem is logged once, a different one again, and after the file
   * applied, the next problem is news again.
   */
  private readonly loggedFileProblems = new Map<string, string>();
  private readonly locations = new Map<string, GeoPoint | null>();
  /**
   * Each household's tariff time zone as last read from its `site` thing (null: none, so the
   * hub's own), read once rather than at each schedule or time condition (see timeZone).
   */
  private readonly tariffZones = new Map<string, string | null>();
  private readonly mqttSubscriptions = new Map<string, Array<Promise<() => Promise<void>>>>();
  private readonly debounces = new Map<string, () => void>();
  /** The API's creates, edits and deletes of rules, one at a time per household (see create). */
  private readonly edits = new KeyedSerial();
  private watcher: FSWatcher | null = null;
  private unsubscribe: (() => void) | null = null;
  private retryQueued = false;
  /** The judging queued last (see queueRejudge), and the location read last (see locationChanged). */
  private judging: Promise<void> = Promise.resolve();
  private locationWork: Promise<void> = Promise.resolve();
  /**
   * Rules from files switched on or off over the API, by household then rule id: the switch wins
   * over the file's `enabled:`, and is stored (see FILE_SWITCH_PREFIX) so it outlives a reload of
   * the file and a restart. It goes with its rule: once no file holds the rule (see
   * dropOrphanSwitches), a rule of that id written later starts as its file says.
   */
  private readonly fileSwitches = new Map<string, Map<string, boolean>>();
  /** The file each switch's rule was in when it was set (the row's `file`), by household then rule id. */
  private readonly switchFiles = new Map<string, Map<string, string>>();
  /** Whether the rules folder has been read at start: till then no switch is judged orphaned. */
  private filesRead = false;
  /** Households whose rules are judged again at the end of this turn (see queueRejudge). */
  private readonly rejudgeQueued = new Set<string>();
  /** Stored timers of rules not loadable at start (a thing not discovered yet); resumed once they are. */
  private unresumed: StoredTimer[] = [];
  /** Cancels the resumption of timers that came due while the hub was down (see OVERDUE_GRACE_MS). */
  private cancelOverdue: (() => void) | null = null;
  private folder = '';

  constructor(private readonly options: AutomationEngineOptions = {}) {
    this.routes = (app) => registerAutomationRoutes(app, this);
  }

  private get services(): HubServices {
    if (!this.hub) throw new Error('the automation engine has not started');
    return this.hub;
  }

  private get run(): AutomationRuntime {
    if (!this.runtime) throw new Error('the automation engine has not started');
    return this.runtime;
  }

  private get context(): CatalogueContext {
    const hub = this.services;
    return {
      thing: (householdId, id) => hub.twins.get(householdId, id)?.thing,
      hasLocation: (householdId) => (this.locations.get(householdId) ?? null) !== null,
    };
  }

  /** How many traces each rule keeps, and for how long: the defaults with the options over them. */
  private get retention(): RetentionPolicy {
    return { ...DEFAULT_RETENTION, ...this.options.retention };
  }

  async start(hub: HubServices): Promise<void> {
    this.hub = hub;
    this.folder = this.options.folder ?? join(hub.dataDir, 'automations');
    await this.refreshLocations();
    this.runtime = new AutomationRuntime({
      world: liveWorld(hub, {
        retention: this.retention,
        locations: this.locations,
        timeZone: (householdId) => this.timeZone(householdId),
        webhookTimeoutMs: this.options.webhookTimeoutMs ?? 5000,
      }),
      notifyWebhook: this.options.notifyWebhook,
    });
    this.unsubscribe = hub.bus.subscribe((event) => this.onEvent(event));

    for (const stored of await hub.store.listRules()) {
      if (stored.id.startsWith(FILE_SWITCH_PREFIX)) {
        const enabled = stored.body.enabled;
        if (typeof enabled === 'boolean') {
          const id = stored.id.slice(FILE_SWITCH_PREFIX.length);
          this.switchesOf(stored.householdId).set(id, enabled);
          if (typeof stored.body.file === 'string') this.filesOf(stored.householdId).set(id, stored.body.file);
        }
        continue;
      }
      this.setEntry(this.entryFor(stored.householdId, stored.body, { kind: 'api' }));
    }
    await mkdir(this.folder, { recursive: true });
    for (const name of (await readdir(this.folder)).sort()) {
      if (isRuleFile(name)) await this.reloadFile(name);
    }
    // A switch whose rule left its file (or the file went) while the hub was down goes too.
    this.filesRead = true;
    await this.dropOrphanSwitches(hub.householdId);
    for (const household of this.entries.values()) {
      for (const entry of household.values()) if (entry.rule) await this.activate(entry.rule);
    }
    const timers = await hub.store.listTimers(TIMER_OWNER);
    const waiting = (t: StoredTimer) => {
      const rule = (t.payload as { rule?: unknown }).rule;
      return typeof rule === 'string' && this.entry(t.householdId, rule)?.rule === null;
    };
    this.unresumed = timers.filter(waiting);
    const ready = timers.filter((t) => !waiting(t));
    // A timer due within the grace is taken as overdue too: fired a moment after start, its
    // commands met a broker no device had reconnected to yet, just as an overdue one's did.
    const graceEnds = hub.clock.now() + OVERDUE_GRACE_MS;
    await this.run.resume(
      ready.filter((t) => t.due > graceEnds && (t.payload as { kind?: unknown }).kind !== 'queued'),
    );
    // What came due while the hub was down fires a little after start, once most devices have had
    // time to reconnect (MQTT.js and Zigbee2MQTT retry within a few seconds; a device slower than
    // OVERDUE_GRACE_MS still misses it): fired at once, its commands went out to a broker no device
    // was on yet (the embedded one starts with the hub) and expired unheard. A `for:` is judged
    // then against the state the twin has, reports since the start included.
    // Triggers a queued rule held are put back in their queues now, so a trigger that comes in
    // the meantime waits behind them; they start with the overdue timers.
    const isQueued = (t: StoredTimer) => (t.payload as { kind?: unknown }).kind === 'queued';
    const held = ready.filter(isQueued);
    await this.run.resume(held, { holdQueued: true });
    const overdue = ready.filter((t) => t.due <= graceEnds && !isQueued(t));
    if (overdue.length || held.length) {
      this.cancelOverdue = hub.clock.setTimeout(() => {
        this.cancelOverdue = null;
        this.run
          .resume(overdue)
          .then(() => this.run.startHeldQueues())
          .catch((error: unknown) => hub.log.error('could not resume timers', { error }));
      }, OVERDUE_GRACE_MS);
    }
    if (this.options.watch !== false) this.watchFolder();
  }

  async stop(): Promise<void> {
    this.cancelOverdue?.();
    this.cancelOverdue = null;
    this.watcher?.close();
    this.watcher = null;
    for (const cancel of this.debounces.values()) cancel();
    this.debounces.clear();
    this.unsubscribe?.();
    await this.runtime?.stop();
    const unsubscribes = [...this.mqttSubscriptions.values()].flat();
    this.mqttSubscriptions.clear();
    await Promise.allSettled(unsubscribes.map(async (p) => (await p)()));
  }

  // ---------------------------------------------------------------- events

  private onEvent(event: HubEvent): void {
    this.runtime?.handle(event);
    if (event.type === 'thing.added' || event.type === 'thing.updated' || event.type === 'thing.removed')
      this.queueRejudge(event.householdId);
    if (event.type === 'household.updated') this.locationChanged(event.householdId);
    if (
      (event.type === 'thing.added' || event.type === 'thing.updated' || event.type === 'thing.removed') &&
      event.thing === SITE_THING
    )
      this.timeZoneChanged(event.householdId);
  }

  /**
   * The household's time zone: its tariff's, kept on its `site` thing, else the hub's own (see
   * householdTimeZone), as its charge plans and the session answer have it.
   */
  private timeZone(householdId: string): string {
    let zone = this.tariffZones.get(householdId);
    if (zone === undefined) {
      zone = siteTariffZone(this.services.twins.get(householdId, SITE_THING)?.thing);
      this.tariffZones.set(householdId, zone);
    }
    return householdTimeZone(zone);
  }

  /**
   * The household's site changed (its tariff was saved, say): if its time zone is another now,
   * its `at:` and cron triggers are armed again on the new clocks, as sun triggers are when the
   * location moves. Runs, `for:` waits and queues go on untouched.
   */
  private timeZoneChanged(householdId: string): void {
    const previous = this.tariffZones.get(householdId);
    const next = siteTariffZone(this.services.twins.get(householdId, SITE_THING)?.thing);
    if (previous === next) return;
    this.tariffZones.set(householdId, next);
    // Nothing was armed on a zone never asked for.
    if (previous === undefined || !this.runtime) return;
    for (const rule of this.runtime.list(householdId)) {
      if (rule.triggers.some((trigger) => trigger.type === 'time' || trigger.type === 'cron'))
        this.runtime.rearm(householdId, rule.id);
    }
  }

  /**
   * The household's settings changed (`PUT /api/household`): its location is read again, and if
   * it moved, its sun triggers are armed at the new times and its rules judged again, so one
   * that was invalid only for want of a location is loaded. No restart, no saving a rule.
   */
  private locationChanged(householdId: string): void {
    this.locationWork = this.locationWork
      .then(async () => {
        const household = await this.services.store.getHousehold(householdId);
        const next = household ? locationFromSettings(household.settings) : null;
        const previous = this.locations.get(householdId) ?? null;
        if (previous?.latitude === next?.latitude && previous?.longitude === next?.longitude) return;
        this.locations.set(householdId, next);
        for (const rule of this.run.list(householdId)) {
          if (rule.triggers.some((trigger) => trigger.type === 'sun')) this.run.rearm(householdId, rule.id);
        }
        this.queueRejudge(householdId);
      })
      .catch((error: unknown) => this.services.log.error("could not read the household's location", { error }));
  }

  /** Resolves once the changes heard so far (things, the household's location) are judged. */
  async settled(): Promise<void> {
    await this.locationWork;
    await this.judging;
  }

  /**
   * Once a household's things change, its rules are judged again: a rule whose thing was removed
   * is unloaded and shown invalid with the problem (a file's rule also under its file's problems),
   * and a rule waiting for a thing that was not there (yet, or again) is loaded once it is. Rules
   * still valid are left alone, their runs going on.
   */
  private queueRejudge(householdId: string): void {
    this.rejudgeQueued.add(householdId);
    if (this.retryQueued) return;
    this.retryQueued = true;
    this.judging = Promise.resolve()
      .then(async () => {
        this.retryQueued = false;
        const households = [...this.rejudgeQueued];
        this.rejudgeQueued.clear();
        for (const householdId of households) await this.rejudge(householdId);
        for (const [file, state] of this.files) if (state.problem) await this.reloadFile(file);
      })
      .catch((error: unknown) => this.services.log.error('could not judge rules again', { error }));
  }

  private async rejudge(householdId: string): Promise<void> {
    const household = this.entries.get(householdId);
    if (!household) return;
    const broken = new Map<string, Array<{ entry: RuleEntry; error: RuleError }>>();
    for (const entry of [...household.values()]) {
      if (entry.rule) {
        try {
          validateRule(entry.source, householdId, entry.origin, this.context);
        } catch (error) {
          if (!(error instanceof RuleError)) throw error;
          if (entry.origin.kind === 'file') {
            const list = broken.get(entry.origin.file) ?? [];
            list.push({ entry, error });
            broken.set(entry.origin.file, list);
            continue;
          }
          this.setEntry({ ...entry, rule: null, problem: error.problem });
          await this.deactivate(householdId, entry.id);
          this.services.log.warn('rule no longer valid; unloaded', { rule: entry.id, problem: error.message });
        }
      } else if (entry.origin.kind !== 'file') {
        const retried = this.entryFor(householdId, entry.source, entry.origin);
        if (retried.rule) {
          this.setEntry(retried);
          await this.activate(retried.rule);
        }
      }
    }
    // A file's rule that lost its thing: unloaded and invalid, its file reported with the line.
    // The file is read again once things change, and its rules come back when it applies again.
    for (const [file, list] of broken) {
      const docs = await readFile(join(this.folder, file), 'utf8')
        .then((text) => readRulesYaml(text, file))
        .catch(() => []);
      let first: RuleError | null = null;
      for (const { entry, error } of list) {
        const doc = docs.find((d) => (d.raw as { id?: unknown } | null)?.id === entry.id);
        const located = doc ? locate(error, doc, file) : new RuleError({ ...error.problem, file });
        const problem = located instanceof RuleError ? located.problem : { ...error.problem, file };
        first ??= new RuleError(problem);
        this.setEntry({ ...entry, rule: null, problem });
        await this.deactivate(householdId, entry.id);
        this.services.log.warn('rule no longer valid; unloaded', {
          rule: entry.id,
          file,
          problem: describeProblem(problem),
        });
      }
      const state = this.files.get(file);
      if (state && first) this.files.set(file, { ...state, problem: fileProblem(file, first) });
    }
  }

  // ---------------------------------------------------------------- catalogue

  private entryFor(householdId: string, source: Record<string, unknown>, origin: RuleEntry['origin']): RuleEntry {
    const id = typeof source.id === 'string' ? source.id : '';
    try {
      const rule = validateRule(source, householdId, origin, this.context);
      return { householdId, id: rule.id, origin, source: rule.source, rule, problem: null };
    } catch (error) {
      if (!(error instanceof RuleError)) throw error;
      return { householdId, id, origin, source, rule: null, problem: error.problem };
    }
  }

  private setEntry(entry: RuleEntry): void {
    let household = this.entries.get(entry.householdId);
    if (!household) {
      household = new Map();
      this.entries.set(entry.householdId, household);
    }
    household.set(entry.id, entry);
  }

  private entry(householdId: string, id: string): RuleEntry | undefined {
    return this.entries.get(householdId)?.get(id);
  }

  /** Loads a rule into the runtime (unless the same version is already loaded) and its MQTT topics. */
  private async activate(rule: Rule): Promise<void> {
    const loaded = this.run.get(rule.householdId, rule.id);
    if (loaded && loaded.version === rule.version && loaded.enabled === rule.enabled) return;
    await this.run.load(rule);
    await this.syncMqtt(rule);
    // A rule stored or written before a check was added loads without what it now refuses.
    if (rule.warnings.length) {
      this.services.log.warn('rule loaded without fields that mean nothing here; remove them', {
        rule: rule.id,
        ...(rule.origin.kind === 'file' ? { file: rule.origin.file } : {}),
        warnings: rule.warnings,
      });
    }
    const mine = this.unresumed.filter(
      (t) => t.householdId === rule.householdId && (t.payload as { rule?: unknown }).rule === rule.id,
    );
    if (mine.length) {
      this.unresumed = this.unresumed.filter((t) => !mine.includes(t));
      await this.run.resume(mine);
    }
  }

  private async deactivate(householdId: string, id: string): Promise<void> {
    await this.run.unload(householdId, id);
    await this.dropMqtt(householdId, id);
  }

  private async syncMqtt(rule: Rule): Promise<void> {
    await this.dropMqtt(rule.householdId, rule.id);
    if (!rule.enabled) return;
    const subscriptions: Array<Promise<() => Promise<void>>> = [];
    for (const trigger of rule.triggers) {
      if (trigger.type !== 'mqtt') continue;
      subscriptions.push(
        // The household's own topics only: another household's devices publish under households/<id>/.
        this.services.mqttFor(rule.householdId).subscribe(trigger.topic, (topic, payload, meta) => {
          // A retained message is old news replayed by the broker, not something that just happened.
          if (meta.retain) return;
          const text = payload.toString('utf8');
          if (trigger.payload !== undefined && trigger.payload !== text) return;
          const now = this.services.clock.now();
          const json = parseJson(text);
          // Nobody waits for its rows: a row that cannot be written is logged where it is written.
          this.run
            .fireExternal(
              rule.householdId,
              rule.id,
              {
                id: trigger.id,
                type: 'mqtt',
                ts: now,
                topic,
                payload: text,
                payload_json: json,
                description: `MQTT message on ${topic}`,
              },
              { topic: summarise(topic), payload: summarise(json ?? text) },
            )
            ?.stored.catch(() => {});
        }),
      );
    }
    this.mqttSubscriptions.set(mqttKey(rule.householdId, rule.id), subscriptions);
    await Promise.all(subscriptions);
  }

  private async dropMqtt(householdId: string, id: string): Promise<void> {
    const key = mqttKey(householdId, id);
    const subscriptions = this.mqttSubscriptions.get(key);
    this.mqttSubscriptions.delete(key);
    await Promise.all((subscriptions ?? []).map(async (p) => (await p)()));
  }

  private async refreshLocations(): Promise<void> {
    for (const household of await this.services.store.listHouseholds()) {
      this.locations.set(household.id, locationFromSettings(household.settings));
    }
  }

  // ---------------------------------------------------------------- files

  private watchFolder(): void {
    try {
      this.watcher = watch(this.folder, (_event, name) => {
        if (typeof name !== 'string' || !isRuleFile(name)) return;
        this.debounces.get(name)?.();
        // Editors write a file in several steps; read it once it has been quiet for a moment.
        const cancel = this.services.clock.setTimeout(() => {
          this.debounces.delete(name);
          void this.reloadFile(name).catch((error: unknown) =>
            this.services.log.error('could not reload rules file', { file: name, error }),
          );
        }, this.options.reloadDebounceMs ?? 300);
        this.debounces.set(name, cancel);
      });
      this.watcher.on('error', (error) =>
        this.services.log.warn('rules folder watch failed', { folder: this.folder, error }),
      );
    } catch (error) {
      this.services.log.warn('cannot watch the rules folder; changes need a restart', { folder: this.folder, error });
    }
  }

  /**
   * Reads one rules file and applies it whole: its rules replace the file's previous ones, or,
   * when any rule in it is wrong, the previous ones keep running and the problem is reported.
   */
  async reloadFile(name: string): Promise<void> {
    const hub = this.services;
    const file = basename(name);
    const householdId = hub.householdId;
    const previous = this.files.get(file);
    let text: string | null;
    try {
      text = await readFile(join(this.folder, file), 'utf8');
    } catch {
      text = null;
    }
    if (text === null) {
      for (const id of previous?.ids ?? []) {
        this.entries.get(householdId)?.delete(id);
        await this.deactivate(householdId, id);
      }
      this.files.delete(file);
      this.loggedFileProblems.delete(file);
      // A file deleted is its rules deleted: a file of that name written later starts afresh.
      await rm(this.appliedPath(file), { force: true });
      await this.dropOrphanSwitches(householdId);
      return;
    }
    let rules: Rule[];
    try {
      rules = this.fileRules(text, file, householdId);
    } catch (error) {
      const problem = fileProblem(file, error);
      // The previous rules are those of the text that applied last, which is kept (see
      // appliedPath): at a start nothing of this file is loaded yet, and a typo made while the hub
      // was down must not switch off the alarm after a power cut. Applied again, the rules already
      // running are left as they are (same version), and one unloaded when its thing went comes
      // back with it.
      let ids = previous?.ids ?? [];
      const applied = await readFile(this.appliedPath(file), 'utf8').catch(() => undefined);
      let last: Rule[] | null = null;
      try {
        if (applied !== undefined && applied !== text) last = this.fileRules(applied, file, householdId);
      } catch {
        // It does not apply now either (a thing not discovered yet): the file is read again, and
        // this tried again, whenever things change (see queueRejudge).
      }
      if (last) ids = await this.applyFileRules(last, previous?.ids ?? []);
      this.files.set(file, { ids, problem });
      if (this.loggedFileProblems.get(file) !== problem.message) {
        this.loggedFileProblems.set(file, problem.message);
        // Said as it is: a file that never applied (or whose last good text does not apply yet)
        // has no rules running, and the user must not count on them.
        const running = ids.length > 0 ? 'its previous rules keep running' : 'none of its rules run';
        hub.log.warn(`rules file not applied; ${running}`, { file, problem: problem.message });
      }
      return;
    }
    // Kept before its rules run, as an API rule is stored first: the text a restart falls back on.
    await this.rememberAppliedText(file, text);
    const ids = await this.applyFileRules(rules, previous?.ids ?? []);
    this.files.set(file, { ids, problem: null });
    this.loggedFileProblems.delete(file);
    await this.dropOrphanSwitches(householdId);
    hub.log.info('rules file loaded', { file, rules: ids.length });
  }

  /** A rules file's rules, or the problem that keeps the text from applying. */
  private fileRules(text: string, file: string, householdId: string): Rule[] {
    const rules = rulesFromFile(text, file, householdId, this.context);
    for (const rule of rules) {
      const owner = this.entry(householdId, rule.id);
      if (owner && !(owner.origin.kind === 'file' && owner.origin.file === file)) {
        const where = owner.origin.kind === 'file' ? `file ${owner.origin.file}` : 'the API';
        const line = readRulesYaml(text, file)
          .find((d) => (d.raw as { id?: unknown })?.id === rule.id)
          ?.lineOf(['id']);
        throw new RuleError({
          file,
          line,
          field: 'id',
          path: ['id'],
          message: `rule id ${JSON.stringify(rule.id)} is already used by a rule from ${where}`,
        });
      }
    }
    return rules;
  }

  /** Puts a file's rules in place of the ones it held before (`previousIds`); returns their ids. */
  private async applyFileRules(rules: Rule[], previousIds: string[]): Promise<string[]> {
    const householdId = this.services.householdId;
    const ids = rules.map((r) => r.id);
    for (const id of previousIds) {
      if (ids.includes(id)) continue;
      this.entries.get(householdId)?.delete(id);
      await this.deactivate(householdId, id);
    }
    for (const read of rules) {
      // A switch set over the API wins over the file's `enabled:`, through every reload.
      const rule = this.switched(read);
      this.setEntry({ householdId, id: rule.id, origin: rule.origin, source: rule.source, rule, problem: null });
      if (this.runtime) await this.activate(rule);
    }
    return ids;
  }

  /**
   * Where the text a rules file had when it last applied is kept: `.applied/<file>` in the rules
   * folder, which the hub does not read as rules (a name starting with a dot), nor watch (a folder).
   */
  private appliedPath(file: string): string {
    return join(this.folder, APPLIED_FOLDER, file);
  }

  /** Keeps the text of a rules file that applied (see appliedPath), unless it is kept already. */
  private async rememberAppliedText(file: string, text: string): Promise<void> {
    const path = this.appliedPath(file);
    if ((await readFile(path, 'utf8').catch(() => null)) === text) return;
    await mkdir(join(this.folder, APPLIED_FOLDER), { recursive: true });
    // Written aside and renamed over, so a crash mid-write leaves the previous text whole; a
    // draft of its own, as two reloads of one file (the watcher's, a re-judging's) may overlap.
    const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.draft`;
    await writeFile(draft, text);
    await rename(draft, path);
  }

  // ---------------------------------------------------------------- API operations

  list(householdId: string): RuleEntry[] {
    return [...(this.entries.get(householdId)?.values() ?? [])].sort((a, b) => a.id.localeCompare(b.id));
  }

  get(householdId: string, id: string): RuleEntry {
    const entry = this.entry(householdId, id);
    if (!entry) throw notFound(`automation ${JSON.stringify(id)}`);
    return entry;
  }

  /**
   * The problems of the rules files a household sees. The files are the hub's own household's
   * (their rules are loaded into it, see reloadFile): another household sees none of them, nor
   * the rule ids and lines they name.
   */
  fileProblems(householdId: string = this.services.householdId): FileProblem[] {
    if (householdId !== this.services.householdId) return [];
    return [...this.files.values()].flatMap((f) => (f.problem ? [f.problem] : []));
  }

  running(householdId: string, id: string): number {
    return this.run.runningCount(householdId, id);
  }

  /** Parses an API body: a rule object, or YAML/JSON text of one. */
  parseBody(body: unknown): unknown {
    return this.readBody(body).raw;
  }

  /** An API body's rule document, and for text the document to find a field's line in. */
  private readBody(body: unknown): { raw: unknown; doc: YamlRule | null } {
    if (typeof body !== 'string') return { raw: body, doc: null };
    const docs = readRulesYaml(body);
    if (docs.length !== 1) throw new RuleError({ field: '', message: 'the text must hold exactly one rule' });
    return { raw: docs[0].raw, doc: docs[0] };
  }

  /**
   * Validates a rule sent over the API; a problem in YAML text names its line and column. A rule
   * written now is held to every check (`legacy: 'refuse'`); a stored one only switched on or off
   * is judged as it loads.
   */
  private validateBody(
    raw: unknown,
    doc: YamlRule | null,
    householdId: string,
    origin: RuleOrigin,
    legacy: 'refuse' | 'ignore' = 'refuse',
  ): Rule {
    try {
      return validateRule(raw, householdId, origin, this.context, legacy);
    } catch (error) {
      throw doc ? locate(error, doc) : error;
    }
  }

  /**
   * Creates a rule sent over the API. The check that its id is free and the save run one create
   * (or edit) of the household at a time: parallel creates of one id all passed the check before
   * any was saved, and each later one overwrote the first's rule, all answered 201.
   */
  create(householdId: string, body: unknown): Promise<RuleEntry> {
    return this.edits.run(householdId, () => this.createNow(householdId, body));
  }

  private async createNow(householdId: string, body: unknown): Promise<RuleEntry> {
    await this.refreshLocations();
    const { raw, doc } = this.readBody(body);
    const rule = this.validateBody(raw, doc, householdId, { kind: 'api' });
    if (this.entry(householdId, rule.id))
      throw conflict(`an automation with id ${JSON.stringify(rule.id)} already exists`);
    // A switch left by a file's rule of that id, gone from its file since, is not this rule's.
    if (this.fileSwitches.get(householdId)?.delete(rule.id)) {
      this.switchFiles.get(householdId)?.delete(rule.id);
      await this.services.store.deleteRule(householdId, FILE_SWITCH_PREFIX + rule.id);
    }
    return this.save(rule, null);
  }

  /** Replaces (or switches on or off) a rule, one edit of the household at a time, as create. */
  replace(householdId: string, id: string, body: unknown): Promise<RuleEntry> {
    return this.edits.run(householdId, () => this.replaceNow(householdId, id, body));
  }

  private async replaceNow(householdId: string, id: string, body: unknown): Promise<RuleEntry> {
    const found = this.get(householdId, id);
    if (found.origin.kind === 'file') return this.switchFileRule(found, body);
    const existing = found;
    await this.refreshLocations();
    const { raw, doc: text } = this.readBody(body);
    const doc =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : null;
    // `{"enabled": false}` alone switches a rule on or off without restating it.
    const switchOnly = doc !== null && Object.keys(doc).length === 1 && 'enabled' in doc;
    // A rule read back (its webhook's password shown as ***) keeps the stored password when sent again.
    const merged = restoreSecrets(
      switchOnly ? { ...existing.source, enabled: doc.enabled } : doc ? { id, ...doc } : raw,
      existing.source,
    );
    if (doc && doc.id !== undefined && doc.id !== id)
      throw new RuleError({ field: 'id', path: ['id'], message: `must be ${JSON.stringify(id)}, the id in the URL` });
    // A restated rule's fields are where the text says; a switch alone judges the stored rule's.
    const rule = switchOnly
      ? this.validateBody(merged, null, householdId, { kind: 'api' }, 'ignore')
      : this.validateBody(merged, text, householdId, { kind: 'api' });
    return this.save(rule, existing);
  }

  async setEnabled(householdId: string, id: string, enabled: boolean): Promise<RuleEntry> {
    return this.replace(householdId, id, { enabled });
  }

  /** The switch set over the API on a rule from a file, or null when the file's `enabled:` holds. */
  fileSwitch(householdId: string, id: string): boolean | null {
    return this.fileSwitches.get(householdId)?.get(id) ?? null;
  }

  private switchesOf(householdId: string): Map<string, boolean> {
    let switches = this.fileSwitches.get(householdId);
    if (!switches) {
      switches = new Map();
      this.fileSwitches.set(householdId, switches);
    }
    return switches;
  }

  private filesOf(householdId: string): Map<string, string> {
    let files = this.switchFiles.get(householdId);
    if (!files) {
      files = new Map();
      this.switchFiles.set(householdId, files);
    }
    return files;
  }

  /**
   * Drops the switches (and their stored rows) of file rules that are gone: removed from their
   * file, or their file deleted. A file added later with a rule of that id is a new rule, and
   * starts as its file says, not switched off by a switch set months ago on another. A switch is
   * kept while its rule is in some file, or while its file is there but cannot be applied (a typo
   * being fixed, a thing not discovered yet): its rules are not known to be gone.
   */
  private async dropOrphanSwitches(householdId: string): Promise<void> {
    if (!this.filesRead) return;
    const switches = this.fileSwitches.get(householdId);
    if (!switches?.size) return;
    const held = new Set([...this.files.values()].flatMap((f) => f.ids));
    for (const id of [...switches.keys()]) {
      if (held.has(id)) continue;
      const file = this.switchFiles.get(householdId)?.get(id);
      if (file !== undefined && this.files.get(file)?.problem) continue;
      // Stored first, as it was set: a switch forgotten here but still stored would come back at a restart.
      await this.services.store.deleteRule(householdId, FILE_SWITCH_PREFIX + id);
      switches.delete(id);
      this.switchFiles.get(householdId)?.delete(id);
      this.services.log.info('switch of a rule no longer in any file dropped', { rule: id, file });
    }
  }

  /** A rule read from a file, with the API's switch over its `enabled:`, if one is set. */
  private switched(rule: Rule): Rule {
    const enabled = this.fileSwitch(rule.householdId, rule.id);
    return enabled === null || enabled === rule.enabled ? rule : { ...rule, enabled };
  }

  /**
   * `{"enabled": bool}` on a rule from a file: the file is left as it is, and the switch is stored
   * (a row of its own beside the API's rules, see FILE_SWITCH_PREFIX), so it holds through reloads
   * of the file and restarts. Switching back to what the file says removes it. Anything else sent
   * for a file's rule is refused: the file is where it is edited.
   */
  private async switchFileRule(entry: RuleEntry, body: unknown): Promise<RuleEntry> {
    if (entry.origin.kind !== 'file') throw new Error('not a rule from a file');
    let raw: unknown = null;
    try {
      raw = this.readBody(body).raw;
    } catch {
      // Text that is no rule at all is refused below like any other edit.
    }
    const doc =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : null;
    if (!doc || Object.keys(doc).length !== 1 || !('enabled' in doc)) throw definedInFile(entry);
    const enabled = doc.enabled;
    if (typeof enabled !== 'boolean')
      throw new RuleError({ field: 'enabled', path: ['enabled'], message: 'must be true or false' });
    const { householdId, id } = entry;
    const key = FILE_SWITCH_PREFIX + id;
    const store = this.services.store;
    // Stored first, like a rule: a switch that is in force but not stored would be undone by a restart.
    if (enabled === (entry.source.enabled !== false)) {
      await store.deleteRule(householdId, key);
      this.fileSwitches.get(householdId)?.delete(id);
      this.switchFiles.get(householdId)?.delete(id);
    } else {
      const now = this.services.clock.now();
      await store.saveRule({
        householdId,
        id: key,
        body: { rule: id, file: entry.origin.file, enabled },
        createdAt: now,
        updatedAt: now,
      });
      this.switchesOf(householdId).set(id, enabled);
      this.filesOf(householdId).set(id, entry.origin.file);
    }
    const current = this.entry(householdId, id) ?? entry;
    if (!current.rule) return current;
    const rule = { ...current.rule, enabled };
    const switchedEntry = { ...current, rule };
    this.setEntry(switchedEntry);
    await this.activate(rule);
    return switchedEntry;
  }

  /** Deletes a rule, one edit of the household at a time, as create: not one a create is saving. */
  remove(householdId: string, id: string): Promise<void> {
    return this.edits.run(householdId, () => this.removeNow(householdId, id));
  }

  private async removeNow(householdId: string, id: string): Promise<void> {
    this.editable(householdId, id);
    await this.services.store.deleteRule(householdId, id);
    this.entries.get(householdId)?.delete(id);
    await this.deactivate(householdId, id);
  }

  private editable(householdId: string, id: string): RuleEntry {
    const entry = this.get(householdId, id);
    if (entry.origin.kind === 'file') throw definedInFile(entry);
    return entry;
  }

  private async save(rule: Rule, existing: RuleEntry | null): Promise<RuleEntry> {
    const now = this.services.clock.now();
    // Stored first: a rule that is running but not stored would vanish at the next restart.
    await this.services.store.saveRule({
      householdId: rule.householdId,
      id: rule.id,
      body: rule.source,
      createdAt: now,
      updatedAt: now,
    });
    const entry: RuleEntry = {
      householdId: rule.householdId,
      id: rule.id,
      origin: rule.origin,
      source: rule.source,
      rule,
      problem: null,
    };
    this.setEntry(entry);
    if (existing?.rule && existing.rule.version === rule.version) return entry;
    await this.activate(rule);
    return entry;
  }

  /**
   * A rule's traces, newest first: by default all that retention keeps, and never more. The store
   * prunes lazily (a busy rule's pruning waits for a batch; a quiet one's for a while), so it may
   * hold a few more for a moment: those are not listed, as they are already let go.
   */
  async traces(householdId: string, id: string, limit?: number): Promise<Trace[]> {
    this.get(householdId, id);
    return (await this.keptTraces(householdId, id, limit)).map((t) => t.body as unknown as Trace);
  }

  /** The traces of a rule retention keeps (the newest `perRule`, none too old), newest first. */
  private async keptTraces(householdId: string, id: string, limit?: number): Promise<StoredTrace[]> {
    // Traces are written in groups; the ones not written yet are part of the answer too.
    await this.runtime?.flushTraces();
    const { perRule, maxAgeMs } = this.retention;
    const oldest = this.services.clock.now() - maxAgeMs;
    const stored = await this.services.store.listTraces({
      householdId,
      rule: id,
      limit: Math.min(limit ?? perRule, perRule),
    });
    return stored.filter((t) => t.startedAt >= oldest);
  }

  /**
   * One run's trace, if retention keeps it: exactly the traces the list shows. One the store still
   * holds until its lazy pruning (see traces) is let go already, and not found here either. Reads
   * that one trace only: whether it is among the rule's newest `perRule` the store answers by
   * counting, in the list's order, the rule's traces before it.
   */
  async trace(householdId: string, id: string, traceId: string): Promise<Trace> {
    // An automation that is not there says so, as its list of traces does, rather than blaming
    // retention for a trace it never had.
    this.get(householdId, id);
    // As keptTraces: the traces not written yet count too.
    await this.runtime?.flushTraces();
    const { perRule, maxAgeMs } = this.retention;
    const oldest = this.services.clock.now() - maxAgeMs;
    const store = this.services.store;
    // getTrace reads the household's own traces only.
    const found = await store.getTrace(householdId, traceId);
    const kept =
      found !== null &&
      found.rule === id &&
      found.startedAt >= oldest &&
      (await store.isTraceListed({ householdId, rule: id, limit: perRule }, found))
        ? found
        : null;
    if (!kept) {
      // A busy rule's run event names a trace that retention may never have kept: say so, rather
      // than leave "not found" to look like a bad link.
      throw new HubError(
        404,
        'not_found',
        `trace ${JSON.stringify(traceId)} of automation ${JSON.stringify(id)} not found: each rule keeps only its newest ${perRule} traces, none older than ${retentionAge(maxAgeMs)}`,
      );
    }
    return kept.body as unknown as Trace;
  }

  /**
   * Fires every enabled rule of the household with a webhook trigger for this id. `stored` settles
   * once a restart would go on with what the runs started: the rows of those that wait or queue
   * (or begin with a step that does not finish at once, as a notification posted to a webhook:
   * stored as it begins, not waited for), and the commands of those that sent some (a car out of
   * reach has not had its command yet). The caller is told the trigger was accepted only then.
   * `fired` names the rules whose run started or queued (or was judged and had its conditions
   * fail); `skipped` those whose mode dropped the run (already running, queue full), with the
   * reason their trace gives.
   */
  webhook(
    householdId: string,
    webhookId: string,
    body: unknown,
  ): { fired: string[]; skipped: Array<{ rule: string; reason: string }>; stored: Promise<unknown> } {
    if (nestedDeeperThan(body, MAX_PAYLOAD_DEPTH))
      throw badRequest(`the body is nested more than ${MAX_PAYLOAD_DEPTH} deep`, 'body_too_deep');
    const fired: string[] = [];
    const skipped: Array<{ rule: string; reason: string }> = [];
    const rows: Array<Promise<void>> = [];
    const now = this.services.clock.now();
    for (const entry of this.list(householdId)) {
      for (const trigger of entry.rule?.triggers ?? []) {
        if (trigger.type !== 'webhook' || trigger.webhookId !== webhookId) continue;
        const data =
          body !== null && typeof body === 'object' && !Array.isArray(body)
            ? (body as Record<string, unknown>)
            : { body };
        const started = this.run.fireExternal(
          householdId,
          entry.id,
          { id: trigger.id, type: 'webhook', ts: now, data, description: `webhook ${webhookId}` },
          { payload: summarise(body) },
        );
        if (!started) continue;
        if (started.skipped !== null) {
          skipped.push({ rule: entry.id, reason: started.skipped });
          continue;
        }
        fired.push(entry.id);
        rows.push(started.stored);
      }
    }
    const stored = fired.length ? Promise.all([...rows, this.services.commands.flush()]) : Promise.resolve();
    return { fired, skipped, stored };
  }

  /** Replays a saved or draft rule over the household's recorded history, sending nothing. */
  async replay(householdId: string, body: unknown, from: number, requestedTo: number): Promise<ReplayResult> {
    const hub = this.services;
    let raw = body;
    let doc: YamlRule | null = null;
    // A saved rule is judged as it loads; a draft as it would be saved.
    let legacy: 'refuse' | 'ignore' = 'refuse';
    if (
      typeof body === 'string' &&
      /^[a-z0-9][a-z0-9._-]*$/.test(body.trim()) &&
      this.entry(householdId, body.trim())
    ) {
      raw = this.get(householdId, body.trim()).source;
      legacy = 'ignore';
    } else ({ raw, doc } = this.readBody(body));
    const rule = this.validateBody(raw, doc, householdId, { kind: 'draft' }, legacy);
    // Recorded history ends now: a `to` in the future is replayed up to now, and the answer says so.
    const range = recordedRange(from, requestedTo, hub.clock.now());
    if ('problem' in range) throw badRequest(range.problem);
    const to = range.to;
    await hub.history.flush();
    const result = await replayRules({
      rules: [rule],
      householdId,
      from,
      to,
      source: storeSource(hub.store, householdId, from, to),
      thing: (id) => hub.twins.get(householdId, id)?.thing,
      location: this.locations.get(householdId) ?? null,
      timeZone: this.timeZone(householdId),
      maxTriggers: REPLAY_MAX_TRIGGERS,
    });
    return noteClamped(result, range);
  }
}

/**
 * Triggers one replay asked of the API judges before it stops, truncated, where it got to: a
 * week of a rule on a one-minute cron is ~10,000. A rule on a one-minute cron over ten years
 * (five million runs) held the event loop for minutes and ran the hub out of memory.
 */
export const REPLAY_MAX_TRIGGERS = 50_000;

/** How long after start a timer that came due while the hub was down fires (see start). */
export const OVERDUE_GRACE_MS = 5000;

/**
 * The id prefix of the stored rows that hold a file's rule switched on or off over the API (see
 * switchFileRule): `file-switch:<rule id>`, which no rule's id can be (ids have no colon).
 */
export const FILE_SWITCH_PREFIX = 'file-switch:';

/** The folder, in the rules folder, that keeps each file's text as it last applied (see appliedPath). */
const APPLIED_FOLDER = '.applied';

function definedInFile(entry: RuleEntry): HubError {
  const file = entry.origin.kind === 'file' ? entry.origin.file : 'a file';
  return new HubError(
    409,
    'defined_in_file',
    `automation ${JSON.stringify(entry.id)} comes from ${file}; edit that file instead (only {"enabled": true|false} switches it here)`,
  );
}

function isRuleFile(name: string): boolean {
  return /\.ya?ml$/i.test(name) && !name.startsWith('.');
}

function mqttKey(householdId: string, id: string): string {
  return JSON.stringify([householdId, id]);
}

/**
 * How deep a webhook's body or an MQTT payload's JSON may nest: far past real devices' data. A
 * body sixty thousand deep (a quarter megabyte of brackets) overflowed the stack wherever it was
 * copied or written out: the call failed with a 500, or its run's trace was never stored.
 */
export const MAX_PAYLOAD_DEPTH = 100;

/**
 * Whether a parsed JSON value nests deeper than `limit`, found without recursion. Only lists and
 * objects are kept to look into, with their depths beside them: a flat body costs no allocation
 * per value.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const pending: object[] = [value];
  const depths: number[] = [0];
  while (pending.length > 0) {
    const item = pending.pop() as object;
    const depth = depths.pop() as number;
    if (depth >= limit) return true;
    for (const inner of Array.isArray(item) ? item : Object.values(item))
      if (inner !== null && typeof inner === 'object') {
        pending.push(inner);
        depths.push(depth + 1);
      }
  }
  return false;
}

/**
 * Whether JSON text nests lists and objects deeper than `limit`, counted from its brackets outside
 * quoted text. Asked of every MQTT payload before it is parsed: a sensor's short payload is judged
 * by its length alone, and a payload sixty thousand deep is refused at its 101st bracket rather
 * than parsed whole and walked. For text that is not JSON the answer is meaningless, but such text
 * is refused by JSON.parse anyway.
 */
function jsonTextDeeperThan(text: string, limit: number): boolean {
  // Each level takes an opening and a closing bracket.
  if (text.length < 2 * (limit + 1)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = closingQuote(text, i);
    else if (c === OPEN_OBJECT || c === OPEN_LIST) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_LIST) depth--;
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;

/** Where the quoted text opened at `open` ends (a quote after an even run of backslashes), or the text's end. */
function closingQuote(text: string, open: number): number {
  for (let at = text.indexOf('"', open + 1); at !== -1; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return text.length;
}

/** A payload's JSON, or null when it is not JSON or nests too deep to be handled (the text still is). */
export function parseJson(text: string): unknown {
  if (jsonTextDeeperThan(text, MAX_PAYLOAD_DEPTH)) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
