import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ChurnMap, ChurnSet } from '../../core/churn-map.ts';
import type { HubEvent, StateChanged } from '../../core/events.ts';
import { newId as randomId } from '../../core/ids.ts';
import type { StoredTimer } from '../../store/store.ts';
import type { ExpressionScope } from '../expression/index.ts';
import type { Action, Condition, Rule, Trigger, TriggerData } from '../model.ts';
import { renderTemplate } from '../parse/template.ts';
import { redactText } from '../redact.ts';
import { checkCondition } from './conditions.ts';
import {
  boundSteps,
  type ConditionResult,
  FINAL_TRACE,
  type Trace,
  type TraceStatus,
  type TraceStep,
} from './trace.ts';
import type { TriggerDataOf } from './trigger-fields.ts';
import {
  isScheduled,
  isStateLike,
  matchEvent,
  matchStateChange,
  nextScheduled,
  scheduledData,
  stillHolds,
} from './triggers.ts';
import type { AutomationWorld, CommandOrder, CommandRecord } from './world.ts';

/**
 * What an MQTT message or a webhook call hands its run, kind by kind (the `type` tells which), so
 * neither can bring a field its kind does not list in TRIGGER_FIELDS.
 */
export type ExternalTriggerData = {
  [K in 'mqtt' | 'webhook']: Omit<TriggerDataOf<K>, 'cause'> & { type: K };
}['mqtt' | 'webhook'];

/**
 * Why a rule's countdowns, queued triggers and runs end when the rule is replaced, switched off
 * or deleted: the word their traces give (`cancelled`) and this reason.
 */
const RULE_CHANGED = 'the rule was changed or removed';
/** The same, for a timer a restart finds its rule changed or gone for. */
const RULE_CHANGED_WHILE_DOWN = `${RULE_CHANGED} while the hub was down`;

/** The owner name durable timers are stored under. */
export const TIMER_OWNER = 'automations';
/** A wait without a timeout is stored with this deadline: the latest time a Date can hold. */
const NO_DEADLINE = 8.64e15;
/** A `while`/`until` loop stops after this many rounds, so a rule cannot spin the hub forever. */
const MAX_LOOP = 10_000;
/**
 * Time a run steps without a break before it lets the hub's other work in and goes on in a later
 * turn: a repeat of 10,000 rounds (or repeats nested) otherwise held the event loop for seconds,
 * and MQTT, timers and the API with it.
 */
const STEPS_TURN_MS = 5;
/** How deep runs may start one inside another in one turn before the next goes on in a later turn. */
export const MAX_NESTED_RUNS = 16;

/**
 * Loop protection across rules (see chainOf). A run of rule X is not started when the chain of
 * runs whose effects led to its trigger already holds X this many times: X may come back once
 * (A's command makes B act, whose command makes A act again), a second return is a loop. With a
 * rule triggered by every command event, each run's command brings three events (pending, sent,
 * then confirmed, failed or expired), so every link of a loop triples the runs: two returns
 * already mean a few hundred runs from one command, which is why it is not more.
 */
export const LOOP_RETURNS = 2;
/**
 * A run that waited this long or more between its trigger and its command (a delay, a wait) set
 * the pace itself, as rules that take turns on purpose do (a light on for ten minutes, off for
 * ten): the chain starts afresh from it. Not a window of wall time: the time a device takes (a
 * command that expires after 30 s, a blind that closes in a minute) is no pause of the rules, and
 * a loop through expiring commands, tripling at each round, grew without end under a window.
 */
export const LOOP_PAUSE_MS = 10_000;
/** At most one warning a minute per rule while its loops are being stopped (see loopStopped). */
const LOOP_WARNING_INTERVAL_MS = 60_000;
/** Links of a chain kept, the oldest dropped first: a loop shows within the last few. */
const MAX_CHAIN_LINKS = 64;
/** Chains remembered (by the id of the event that triggered runs), the oldest forgotten first. */
const MAX_CHAINS_KEPT = 10_000;

/** The runs whose effects led to an event, by rule, oldest first; empty for a device's report, a person's command, a schedule. */
type Chain = readonly string[];
const NO_CHAIN: Chain = [];

/** What is kept of an event that triggered runs and was itself an effect of runs. */
interface ChainEntry {
  chain: Chain;
  /** When it triggered them: a run's command much later than this was a pause (LOOP_PAUSE_MS). */
  firedAt: number;
}

/** Where a run is in its rule: a stack of action lists, each with the next index to run. */
interface Frame {
  list: number;
  index: number;
  /** Set when the list is a repeat's body: where the repeat action is, and which round this is. */
  loop?: { list: number; index: number; iteration: number };
}

/** A run's state as stored with its timer, so it can go on after a restart. */
interface RunState {
  runId: string;
  traceId: string;
  householdId: string;
  rule: string;
  version: string;
  trigger: TriggerData;
  variables: Record<string, unknown>;
  stack: Frame[];
}

/** The rule a trace belongs to: a loaded one, or what a stored timer says of one that changed or went. */
type TraceOwner = Pick<Rule, 'householdId' | 'id' | 'version'>;

/** What a step leads to: the next step, or the status its run ends with. */
type StepOutcome = 'next' | TraceStatus;

/** One command of a thing or scene action, before it is dispatched. */
interface ThingOrder {
  thing: string;
  action: string;
  input?: unknown;
}

/**
 * What a stored run was doing: a delay, a wait, or (`step`) a step that does not finish at once
 * and was stored as it began (see storeBeforeStep); a restart takes that step again.
 */
type Waiting = { kind: 'delay' } | { kind: 'wait'; list: number; index: number } | { kind: 'step' };

interface Run {
  state: RunState;
  trace: Trace;
  rule: Rule;
  cancelled: boolean;
  /**
   * Whether the run's state was ever stored as a timer (it waited, or was stored as a step began,
   * see storeBeforeStep), so its end deletes that row.
   */
  stored: boolean;
  /**
   * Whether someone was told the run would happen: it was fired from outside while its caller
   * waits for it to be stored (a webhook's answer, see fireExternal), or it was a stored queued
   * trigger. Such a run is stored before a step that does not finish at once (see storeBeforeStep).
   */
  acknowledged: boolean;
  /** Ends the current delay or wait early (cancel, restart, unload); false means "do not go on". */
  interrupt: ((goOn: boolean) => void) | null;
}

/** A `for:` counting down: its trigger matched, and the run starts if it holds until `due`. */
interface PendingFor {
  timerId: string;
  data: TriggerData;
  due: number;
  /** Its row's write, which the row's deletion must follow (a pool of connections may reorder them). */
  saved: Promise<void> | undefined;
  disarm: () => void;
}

/** A loaded rule and everything live about it. */
interface RuleState {
  rule: Rule;
  running: ChurnSet<Run>;
  /**
   * Triggers waiting their turn (mode: queued), each with the trace begun when it fired and the
   * stored timer row that keeps it across a restart (null where the world keeps no timers).
   */
  queue: Array<QueuedTrigger>;
  pending: Map<string, PendingFor>;
  disarm: Array<() => void>;
  /** When a loop stopped at this rule was last warned of in the log (see loopStopped). */
  loopWarnedAt: number;
}

/** A trigger a queued rule holds for later (see enqueue). */
interface QueuedTrigger {
  data: TriggerData;
  trace: Trace;
  /** Its stored row, or null where the world keeps no timers. */
  timerId: string | null;
  /** The row's write, which its deletion must follow (a pool of connections may reorder them). */
  saved: Promise<void> | undefined;
}

interface Waiter {
  run: Run;
  triggers: Trigger[];
  resolve: (data: TriggerData | null) => void;
}

export interface RuntimeOptions {
  world: AutomationWorld;
  dryRun?: boolean;
  /** Where `notify` actions without their own `webhook:` are posted; none when absent. */
  notifyWebhook?: string;
  /** Called when a run ends (finished, failed, skipped…), after its trace is saved. */
  onRunEnd?: (trace: Trace) => void;
  /**
   * Asked before each step a run takes (each action, and each action of each round of a repeat):
   * a reason ends the run there, stopped, with the reason as its error. A replay's bound on the
   * steps it runs (see replayRules); live runs take every step.
   */
  beforeStep?: () => string | null;
  /**
   * Keeps every step of a run's trace. Otherwise a trace is cut down to TRACE_STEPS as it is saved
   * (see boundSteps), as a live hub's are: a replay lists every command from its runs' steps, and
   * bounds the traces it answers with itself.
   */
  everyStep?: boolean;
}

/**
 * Runs rules: matches events and schedules to triggers, checks conditions, honours modes, steps
 * through actions and records every run as a trace. Pending `for:` waits, delays and waits are
 * stored as timers, so a restart resumes them. The same class serves the live hub and replay;
 * only the world it is given differs.
 */
export class AutomationRuntime {
  private readonly world: AutomationWorld;
  private readonly rules = new Map<string, Map<string, RuleState>>();
  /** State-like triggers by household, then thing: a state change looks at only its own rules. */
  private readonly byThing = new Map<string, Map<string, Array<{ state: RuleState; trigger: Trigger }>>>();
  private readonly eventTriggers = new Map<string, Array<{ state: RuleState; trigger: Trigger }>>();
  private readonly waiters = new Set<Waiter>();
  /** Command id → the trace step that sent it, until the command reaches a final status. */
  private readonly commandSteps = new ChurnMap<string, { run: Run; record: CommandRecord }>();
  /** Command updates that arrived before dispatch returned the id (a fast device). */
  private readonly early = new ChurnMap<string, HubEvent & { type: 'command' }>();
  private readonly householdReaders = new Map<string, Required<Pick<ExpressionScope, 'state' | 'now' | 'timeZone'>>>();
  /** Every run not yet ended, across rules: `busy` looks at these, not at every loaded rule. */
  private readonly inFlight = new ChurnSet<Run>();
  private readonly newId: (now: number, prefix: string) => string;
  private stopped = false;
  /** Runs being stepped in this call stack, one inside another's end or command (see proceed). */
  private depth = 0;
  /**
   * While a rule is fired from outside (see fireExternal), the timer rows its runs write: a
   * webhook's caller is answered once they are stored. Null otherwise: a state change's runs
   * collect nothing, and nothing waits for their rows.
   */
  private storing: Array<Promise<void>> | null = null;
  /** Ended runs' timer rows waiting for their commands to be stored; a stop lets them go first. */
  private readonly forgetting = new Set<Promise<unknown>>();
  /**
   * The chain that led to each event that triggered runs and was itself an effect of a run, by
   * the event's id: a run's commands carry that id as their cause, so their events find the chain
   * here (see chainOf). Events with no chain behind them (a device's report) are not kept, so a
   * rule driven by reports adds nothing. Bounded: the oldest go first (MAX_CHAINS_KEPT).
   */
  private readonly chains = new Map<string, ChainEntry>();
  /**
   * The last rule command sent to each thing, by household then thing: a state change of that
   * thing while the command is open (in commandSteps) is taken as its effect (see stateChain).
   */
  private readonly commanded = new Map<string, Map<string, string>>();

  constructor(private readonly options: RuntimeOptions) {
    this.world = options.world;
    this.newId = options.world.newId ? options.world.newId.bind(options.world) : randomId;
  }

  /**
   * Stores a timer, when the world keeps timers across restarts; after `first` settles, when given
   * (the write is still counted at once by a caller collecting rows, see fireExternal).
   */
  private saveTimer(timer: StoredTimer, first?: Promise<unknown>): Promise<void> | undefined {
    const timers = this.world.timers;
    if (!timers) return undefined;
    const saved = first ? first.then(() => timers.save(timer)) : timers.save(timer);
    if (this.storing) this.storing.push(saved);
    return saved;
  }

  private deleteTimer(id: string): void {
    const deleted = this.world.timers?.delete(id);
    if (deleted) this.track(deleted);
  }

  /** Deletes an ended run's timer row once the commands it sent are stored (see endRun). */
  private forgetRun(runId: string): void {
    const stored = this.world.commandsStored?.();
    if (!stored) {
      this.deleteTimer(runId);
      return;
    }
    const deleted = stored.then(() => this.world.timers?.delete(runId));
    this.forgetting.add(deleted);
    const forgotten = () => this.forgetting.delete(deleted);
    deleted.then(forgotten, forgotten);
    this.track(deleted);
  }

  // ---------------------------------------------------------------- rules

  /** Loads or replaces a rule. A replaced rule's runs are cancelled and its timers dropped. */
  async load(rule: Rule): Promise<void> {
    await this.unload(rule.householdId, rule.id);
    let household = this.rules.get(rule.householdId);
    if (!household) {
      household = new Map();
      this.rules.set(rule.householdId, household);
    }
    const state: RuleState = {
      rule,
      running: new ChurnSet(),
      queue: [],
      pending: new Map(),
      disarm: [],
      loopWarnedAt: Number.NEGATIVE_INFINITY,
    };
    household.set(rule.id, state);
    if (rule.enabled) this.arm(state);
  }

  async unload(householdId: string, ruleId: string): Promise<void> {
    const state = this.rules.get(householdId)?.get(ruleId);
    if (!state) return;
    this.rules.get(householdId)?.delete(ruleId);
    this.disarm(state);
    // A countdown that was going and will not end in a run says so in a trace of its own, as a
    // queued trigger does: the user saw its trigger come, and its row must not fire after a restart.
    const counting = [...state.pending.values()];
    state.pending.clear();
    for (const pending of counting) {
      pending.disarm();
      this.countdownCancelled(state.rule, pending.data, pending.due, RULE_CHANGED);
      await this.forgetPending(pending);
    }
    // A trigger that was accepted and will not run says so in a trace of its own.
    const dropped = state.queue;
    state.queue = [];
    for (const queued of dropped) {
      this.queuedCancelled(queued.trace, RULE_CHANGED);
      if (queued.timerId) await this.forgetQueued(queued);
    }
    for (const run of state.running) this.cancel(run, RULE_CHANGED);
  }

  /** Ends a `for:` countdown that will not end in a run, in a trace of its own. */
  private countdownCancelled(rule: TraceOwner, data: TriggerData, due: number, reason: string): void {
    const trace = this.newTrace(rule, data);
    trace.error = `${reason} before its trigger had held for ${formatMs(due - data.ts)} (for:)`;
    this.end(trace, 'cancelled');
  }

  /** Ends a queued trigger whose turn will not come; its trace starts now, when it left the queue. */
  private queuedCancelled(trace: Trace, reason: string): void {
    leftQueue(trace, this.world.clock.now());
    trace.error = `${reason} before its turn (mode: queued)`;
    this.end(trace, 'cancelled');
  }

  /**
   * Arms a loaded rule's triggers afresh, as when the household's location moved and its sun
   * triggers come at other times: its runs, `for:` waits and queue go on untouched.
   */
  rearm(householdId: string, ruleId: string): void {
    const state = this.rules.get(householdId)?.get(ruleId);
    if (!state) return;
    this.disarm(state);
    if (state.rule.enabled) this.arm(state);
  }

  get(householdId: string, ruleId: string): Rule | undefined {
    return this.rules.get(householdId)?.get(ruleId)?.rule;
  }

  list(householdId: string): Rule[] {
    return [...(this.rules.get(householdId)?.values() ?? [])].map((s) => s.rule);
  }

  /** Runs in flight for a rule (for the API and tests). */
  runningCount(householdId: string, ruleId: string): number {
    return this.rules.get(householdId)?.get(ruleId)?.running.size ?? 0;
  }

  private arm(state: RuleState): void {
    const { rule } = state;
    for (const trigger of rule.triggers) {
      if (isStateLike(trigger)) {
        let things = this.byThing.get(rule.householdId);
        if (!things) {
          things = new Map();
          this.byThing.set(rule.householdId, things);
        }
        const entries = things.get(trigger.thing) ?? [];
        entries.push({ state, trigger });
        things.set(trigger.thing, entries);
        state.disarm.push(() => {
          const list = things.get(trigger.thing);
          if (list)
            things.set(
              trigger.thing,
              list.filter((e) => e.state !== state),
            );
        });
      } else if (trigger.type === 'event') {
        const list = this.eventTriggers.get(rule.householdId) ?? [];
        list.push({ state, trigger });
        this.eventTriggers.set(rule.householdId, list);
        state.disarm.push(() => {
          this.eventTriggers.set(
            rule.householdId,
            (this.eventTriggers.get(rule.householdId) ?? []).filter((e) => e.state !== state),
          );
        });
      } else if (isScheduled(trigger)) {
        this.schedule(state, trigger);
      }
    }
  }

  private disarm(state: RuleState): void {
    for (const undo of state.disarm.splice(0)) undo();
  }

  /** Arms a time, cron or sun trigger for its next occurrence, and again after each. */
  private schedule(state: RuleState, trigger: Trigger): void {
    const { clock } = this.world;
    let cancel = () => {};
    const armFrom = (after: number) => {
      const { householdId } = state.rule;
      const due = nextScheduled(trigger, after, this.world.location(householdId), this.world.timeZone(householdId));
      if (!Number.isFinite(due)) return;
      cancel = clock.setTimeout(() => {
        // Arm the next occurrence first, so a run that throws cannot stop the schedule.
        armFrom(due);
        if (this.stopped || !state.rule.enabled) return;
        const data = scheduledData(trigger, due, '', this.world.timeZone(householdId));
        data.cause = this.announce(state.rule, data, {});
        this.fire(state, data);
      }, due - clock.now());
    };
    armFrom(clock.now());
    state.disarm.push(() => cancel());
  }

  // ---------------------------------------------------------------- inputs

  /** Feeds one hub event: state changes, commands (for traces) and event triggers. */
  handle(event: HubEvent): void {
    if (this.stopped) return;
    // Waiting runs hear the event before it starts any: a run it starts can reach its own
    // `wait_for_trigger` within this call (its steps before the wait finish at once), and that
    // wait is for a later event, not the one that started the run.
    for (const waiter of this.waiters) {
      if (waiter.run.state.householdId !== event.householdId) continue;
      for (const trigger of waiter.triggers) {
        const data = event.type === 'state' ? matchStateChange(trigger, event) : matchEvent(trigger, event);
        if (data) {
          waiter.resolve(data);
          break;
        }
      }
    }
    if (event.type === 'command') this.commandUpdated(event);
    if (event.type === 'state') this.stateChanged(event);
    const listeners = this.eventTriggers.get(event.householdId);
    if (listeners?.length) {
      // A rule is not triggered by what its own runs announced: its run and trigger events, and
      // its commands' events (each run's command brings several, after the run has ended, and
      // each would start a run that sends another command, without end).
      const own = ownRule(event);
      let chain: Chain | undefined;
      for (const { state, trigger } of [...listeners]) {
        if (own === state.rule.id) continue;
        const data = matchEvent(trigger, event);
        if (!data) continue;
        chain ??= this.chainOf(event);
        this.fire(state, data, chain);
      }
    }
  }

  /**
   * The chain of runs whose effects led to an event (see LOOP_RETURNS), read from its cause. A
   * rule's command is issued with its run's trigger's cause (commandOrder), so its events lead,
   * through `chains`, to the chain that led to that run, to which the run is added. A run's end
   * or notification carries its trigger's cause too: the chain passes through it without adding
   * the run, since rules that start each other by their ends are sequences a user sets up on
   * purpose (with delays, at any pace), and modes already stop those that finish at once. Any
   * other event is a chain's continuation only if its cause is an event a chain reached.
   */
  private chainOf(event: HubEvent): Chain {
    const cause = event.cause;
    if (event.type === 'command') {
      const { issuedBy, cause: trigger, createdAt } = event.command;
      if (!issuedBy.startsWith('rule:')) return NO_CHAIN;
      return this.extendChain(trigger, issuedBy.slice(5), createdAt);
    }
    if (event.type === 'state') return this.stateChain(event);
    return (cause && this.chains.get(cause)?.chain) || NO_CHAIN;
  }

  /**
   * A state change's chain. A device's report names no command (its cause is the report's own,
   * usually none), and the command it confirms is concluded only after the change is announced;
   * so a change of a thing while a rule's command to it is still open is taken as that command's
   * effect. A report that happens to come then (a person at the switch) is counted with the
   * command: that can only stop a chain whose rules do trigger each other through that thing.
   */
  private stateChain(change: StateChanged): Chain {
    const caused = change.cause ? this.chains.get(change.cause) : undefined;
    if (caused) return caused.chain;
    const commandId = this.commanded.get(change.householdId)?.get(change.thing);
    const open = commandId === undefined ? undefined : this.commandSteps.get(commandId);
    if (!open) return NO_CHAIN;
    const { run, record } = open;
    // When the command went out: its step began then (a step sends its commands at once).
    const sentAt = run.trace.steps.findLast((step) => step.commands?.includes(record))?.at ?? change.ts;
    return this.extendChain(run.state.trigger.cause, run.rule.id, sentAt);
  }

  /**
   * The chain of a run's effect: the chain that led to the run's trigger (kept under the
   * trigger's cause), with the run added; only the run when it paused before acting.
   */
  private extendChain(trigger: string | null | undefined, rule: string, actedAt: number): Chain {
    const before = trigger ? this.chains.get(trigger) : undefined;
    if (!before || actedAt - before.firedAt >= LOOP_PAUSE_MS) return [rule];
    const { chain } = before;
    return [...chain.slice(Math.max(0, chain.length - (MAX_CHAIN_LINKS - 1))), rule];
  }

  private stateChanged(change: StateChanged): void {
    const entries = this.byThing.get(change.householdId)?.get(change.thing);
    if (!entries?.length) return;
    let chain: Chain | undefined;
    for (const { state, trigger } of [...entries]) {
      if (trigger.type !== 'zone' && 'property' in trigger && trigger.property !== change.property) continue;
      const pending = state.pending.get(trigger.id);
      if (pending && !stillHolds(trigger, pending.data, change.to)) this.dropPending(state, trigger.id);
      const data = matchStateChange(trigger, change);
      if (!data) continue;
      const forMs = 'forMs' in trigger ? trigger.forMs : 0;
      if (forMs > 0) {
        if (!state.pending.has(trigger.id)) this.startPending(state, trigger, data, change.ts + forMs);
      } else {
        chain ??= this.stateChain(change);
        this.fire(state, data, chain);
      }
    }
  }

  /**
   * Fires a rule from outside (MQTT message, webhook call). The trigger is announced first (see
   * announce) with `details`, a summary of what came in; its event is the run's cause. Null when
   * the rule is not there to fire; otherwise a promise that settles once what a restart would
   * resume of the run is stored (its timer row when it waits, its queued row when it queues, its
   * row written as it begins a step that does not finish at once, see storeBeforeStep), for a
   * caller who is told the trigger was accepted. The rows are written as they always are;
   * only the caller waits for them. `skipped` is the reason (as its trace gives it) when the
   * rule's mode dropped the run (already running, queue full); a run whose conditions failed was
   * still triggered and judged, and is not skipped.
   */
  fireExternal(
    householdId: string,
    ruleId: string,
    data: ExternalTriggerData,
    details: Record<string, unknown> = {},
  ): { stored: Promise<void>; skipped: string | null } | null {
    const state = this.rules.get(householdId)?.get(ruleId);
    if (!state?.rule.enabled || this.stopped) return null;
    const outer = this.storing;
    const storing: Array<Promise<void>> = [];
    this.storing = storing;
    let skipped: string | null;
    try {
      skipped = this.fire(state, { ...data, cause: this.announce(state.rule, data, details) });
    } finally {
      this.storing = outer;
      outer?.push(...storing);
    }
    return {
      stored: storing.length ? Promise.all(storing).then(() => undefined) : Promise.resolve(),
      skipped,
    };
  }

  /**
   * Records a trigger that no hub event stands behind (a webhook call, an MQTT message, a time,
   * cron or sun trigger) as an `automation.triggered` event, and returns its id: the run's cause,
   * so a trace leads back to an event in `GET /api/events` as a state trigger's leads to its state
   * change. `details` must already be bounded and free of secrets. A dry run publishes nothing,
   * so its cause is an id of its own.
   */
  private announce(rule: Rule, data: Omit<TriggerData, 'cause'>, details: Record<string, unknown>): string {
    if (this.options.dryRun) return this.newId(data.ts, 'trg_');
    const id = this.newId(data.ts, 'evt_');
    this.world.publish({
      type: 'automation.triggered',
      id,
      householdId: rule.householdId,
      ts: data.ts,
      cause: null,
      data: { rule: rule.id, trigger: data.id, kind: data.type, description: data.description, ...details },
    });
    return id;
  }

  // ---------------------------------------------------------------- for:

  private startPending(state: RuleState, trigger: Trigger, data: TriggerData, due: number): void {
    const timerId = this.newId(this.world.clock.now(), 'tmr_');
    const pending: PendingFor = { timerId, data, due, saved: undefined, disarm: () => {} };
    state.pending.set(trigger.id, pending);
    const saved = this.saveTimer({
      id: timerId,
      householdId: state.rule.householdId,
      owner: TIMER_OWNER,
      due,
      payload: {
        kind: 'for',
        rule: state.rule.id,
        version: state.rule.version,
        trigger: trigger.id,
        data: { ...data },
      },
    });
    pending.saved = saved;
    if (saved) this.track(saved);
    this.armPending(state, trigger, pending, due);
  }

  /** Deletes a countdown's row, after its write. */
  private forgetPending(pending: PendingFor): Promise<void> {
    return this.deleteAfterSave(pending.timerId, pending.saved);
  }

  private armPending(state: RuleState, trigger: Trigger, pending: PendingFor, due: number): void {
    const { clock } = this.world;
    const elapse = () => {
      if (state.pending.get(trigger.id) !== pending) return;
      state.pending.delete(trigger.id);
      void this.forgetPending(pending);
      this.fire(state, {
        ...pending.data,
        description: `${pending.data.description} for ${formatMs(due - pending.data.ts)}`,
      });
    };
    // A deadline that passed while the hub was down fires now, not at the clock's next tick.
    if (due <= clock.now()) {
      elapse();
      return;
    }
    pending.disarm = clock.setTimeout(elapse, due - clock.now());
  }

  private dropPending(state: RuleState, triggerId: string): void {
    const pending = state.pending.get(triggerId);
    if (!pending) return;
    pending.disarm();
    state.pending.delete(triggerId);
    void this.forgetPending(pending);
  }

  // ---------------------------------------------------------------- runs

  /**
   * Null once the run started, queued or had its conditions fail; the reason when its mode
   * skipped it, or a loop was stopped here. `chain`: the runs whose effects led to the trigger.
   */
  private fire(state: RuleState, data: TriggerData, chain: Chain = NO_CHAIN): string | null {
    if (this.stopped || !state.rule.enabled) return null;
    const { rule } = state;
    const trace = this.newTrace(rule, data);
    if (chain.length > 0) {
      if (returnsTo(chain, rule.id) >= LOOP_RETURNS) return this.loopStopped(state, trace, chain);
      this.rememberChain(data.cause, chain);
    }
    const env = this.conditionEnv(rule.householdId, { trigger: data }, data);
    trace.conditions = rule.conditions.map((condition, i) => ({
      path: `conditions[${i}]`,
      condition: condition.type,
      ...checkCondition(condition, env),
    }));
    if (!trace.conditions.every((c) => c.result)) {
      this.end(trace, 'condition_failed');
      return null;
    }
    const busy = state.running.size;
    switch (rule.mode) {
      case 'single':
        if (busy > 0) {
          trace.error = 'already running (mode: single)';
          this.end(trace, 'skipped');
          return trace.error;
        }
        break;
      case 'restart':
        for (const run of state.running) this.cancel(run, 'restarted by a new trigger (mode: restart)');
        break;
      case 'queued':
        // Behind any trigger already waiting (one held from before a restart, see resume).
        if (busy > 0 || state.queue.length > 0) {
          if (busy + state.queue.length >= rule.max) {
            trace.error = `queue is full (mode: queued, max: ${rule.max})`;
            this.end(trace, 'skipped');
            return trace.error;
          }
          this.enqueue(state, data, trace);
          return null;
        }
        break;
      case 'parallel':
        if (busy >= rule.max) {
          trace.error = `${busy} runs already (mode: parallel, max: ${rule.max})`;
          this.end(trace, 'skipped');
          return trace.error;
        }
        break;
    }
    this.start(state, data, trace);
    return null;
  }

  /**
   * A chain of runs came back to this rule too often (see LOOP_RETURNS): the run does not start,
   * its trace says why, and the log says so once while the loop goes on (its other branches
   * are stopped here too, each with its trace).
   */
  private loopStopped(state: RuleState, trace: Trace, chain: Chain): string {
    const { rule } = state;
    const path = [...chain, rule.id].join(' → ');
    trace.error = `not started: a loop of rules triggering each other through what their runs did (${path}); rule ${JSON.stringify(rule.id)} would run a ${ordinal(LOOP_RETURNS + 1)} time in that chain`;
    this.end(trace, 'skipped');
    const now = this.world.clock.now();
    if (now - state.loopWarnedAt >= LOOP_WARNING_INTERVAL_MS) {
      state.loopWarnedAt = now;
      this.world.log.warn('automation loop stopped', { rule: rule.id, chain: path, trace: trace.id });
    }
    return trace.error;
  }

  /** Keeps the chain that led to an event that triggered a run, for the events that run causes. */
  private rememberChain(eventId: string, chain: Chain): void {
    if (!eventId || this.chains.has(eventId)) return;
    if (this.chains.size >= MAX_CHAINS_KEPT) {
      const oldest = this.chains.keys().next().value;
      if (oldest !== undefined) this.chains.delete(oldest);
    }
    this.chains.set(eventId, { chain, firedAt: this.world.clock.now() });
  }

  /**
   * Puts a trigger in its rule's queue and stores it, as a timer row of its own: a trigger that was
   * accepted (a webhook answered "fired") must not vanish with a restart or a crash. The row is
   * deleted when its turn comes (see start); from there the run is stored as any acknowledged run
   * is, under its own run id: before it waits, or as it begins a step that does not finish at once
   * (see storeBeforeStep).
   */
  private enqueue(state: RuleState, data: TriggerData, trace: Trace, stored?: StoredTimer): void {
    const now = this.world.clock.now();
    const timerId = stored?.id ?? (this.world.timers ? this.newId(now, 'tmr_') : null);
    const queued: QueuedTrigger = { data, trace, timerId, saved: undefined };
    state.queue.push(queued);
    if (!timerId || stored) return;
    const saved = this.saveTimer({
      id: timerId,
      householdId: state.rule.householdId,
      owner: TIMER_OWNER,
      // When it was queued: queued triggers are taken up in this order after a restart.
      due: now,
      payload: {
        kind: 'queued',
        rule: state.rule.id,
        version: state.rule.version,
        data: { ...data },
        traceId: trace.id,
      },
    });
    queued.saved = saved;
    if (saved) this.track(saved);
  }

  /** Deletes a queued trigger's row, after its write. */
  private forgetQueued(queued: QueuedTrigger): Promise<void> {
    return queued.timerId ? this.deleteAfterSave(queued.timerId, queued.saved) : Promise.resolve();
  }

  /** Deletes a timer row once its write (`saved`) settled: a pool of connections may reorder them. */
  private deleteAfterSave(id: string, saved: Promise<void> | undefined): Promise<void> {
    const deleted = (saved ?? Promise.resolve()).catch(() => undefined).then(() => this.world.timers?.delete(id));
    this.track(deleted);
    return deleted;
  }

  /**
   * Starts a run. A queued trigger's row goes as its turn comes: from here it is a run like any
   * other (stored when it waits), and a restart does not send again what it already sent.
   */
  private start(state: RuleState, data: TriggerData, trace: Trace, queued: QueuedTrigger | null = null): void {
    const { rule } = state;
    if (queued) leftQueue(trace, this.world.clock.now());
    const variables: Record<string, unknown> = { trigger: data };
    const scope = this.scope(rule.householdId, variables);
    for (const [name, template] of Object.entries(rule.variables)) variables[name] = renderTemplate(template, scope);
    const run: Run = {
      rule,
      trace,
      cancelled: false,
      stored: false,
      // Fired from outside with a caller waiting for its rows (fireExternal), or a queued trigger
      // that was stored (and so maybe acknowledged) until this turn came: its row goes just below.
      acknowledged: this.storing !== null || Boolean(queued?.timerId),
      interrupt: null,
      state: {
        runId: this.newId(this.world.clock.now(), 'run_'),
        traceId: trace.id,
        householdId: rule.householdId,
        rule: rule.id,
        version: rule.version,
        trigger: data,
        variables,
        stack: [{ list: 0, index: 0 }],
      },
    };
    state.running.add(run);
    this.inFlight.add(run);
    // Before the run's own row can be written (its first wait): the deletion goes first.
    if (queued) void this.forgetQueued(queued);
    if (scope.refused?.length) {
      // The rule's own `variables:` could not be made: the run ends before its first step.
      trace.error = `variables: ${[...new Set(scope.refused)].join('; ')}`;
      this.endRun(state, run, 'error');
      return;
    }
    this.execute(state, run, null);
  }

  private cancel(run: Run, reason: string): void {
    // A run whose end is being announced has its trace written already (see endRun).
    if (run.cancelled || FINAL_TRACE.has(run.trace.status)) return;
    run.cancelled = true;
    run.trace.error = reason;
    run.interrupt?.(false);
  }

  /**
   * Runs a run from where it stands. Steps that finish at once (most: a command is sent before
   * dispatch returns) are taken in this turn, so a run that never waits ends before the next
   * report is handled and a busy rule's mode judges only runs that really are still going.
   */
  private execute(state: RuleState, run: Run, resumed: { waiting: Waiting; due: number } | null): void {
    run.trace.status = 'running';
    if (resumed) this.track(this.resumeRun(state, run, resumed));
    else this.proceed(state, run, 'finished');
  }

  /** A run resumed after a restart: waits out what it was waiting for, then goes on. */
  private async resumeRun(state: RuleState, run: Run, resumed: { waiting: Waiting; due: number }): Promise<void> {
    let status: TraceStatus = 'finished';
    if (resumed.waiting.kind === 'step') {
      // Stored as a step began that did not finish at once (a notification being posted): the hub
      // stopped before it was known to be done, so it is taken again, from the row's stack.
      const interrupted = run.trace.steps.findLast((s) => s.status === 'running');
      if (interrupted) done(interrupted, this.world.clock, 'stopped', 'interrupted by a restart; taken again');
      this.proceed(state, run, status);
      return;
    }
    try {
      const step = run.trace.steps.findLast((s) => s.status === 'waiting');
      const goOn = await this.resumeWaiting(run, resumed.waiting, resumed.due, step);
      if (!goOn) status = run.cancelled ? 'cancelled' : 'timeout';
    } catch (error) {
      this.runFailed(state, run, error);
      return;
    }
    this.proceed(state, run, status);
  }

  /**
   * Takes the run's steps in order while each finishes at once; the first that waits (a delay, a
   * wait, a webhook, a world that answers later) carries the run on when it settles.
   */
  private proceed(state: RuleState, run: Run, from: TraceStatus): void {
    if (this.depth >= MAX_NESTED_RUNS) {
      // A run started by another's end (an `automation.run` trigger), and so on: the chain goes
      // on in a later turn rather than deeper in this one's stack.
      setImmediate(() => {
        try {
          this.proceed(state, run, from);
        } catch (error) {
          this.taskFailed(error);
        }
      });
      return;
    }
    // Counted until the run's end is announced: what its end starts runs inside this call.
    this.depth++;
    try {
      let status: TraceStatus | null;
      try {
        status = this.stepAlong(state, run, from);
      } catch (error) {
        this.runFailed(state, run, error);
        return;
      }
      if (status !== null) this.endRun(state, run, status);
    } finally {
      this.depth--;
    }
  }

  /** Steps the run until it ends (its status) or a step waits (null: that step carries it on). */
  private stepAlong(state: RuleState, run: Run, from: TraceStatus): TraceStatus | null {
    const { rule } = run;
    let status = from;
    const turnStarted = performance.now();
    let taken = 0;
    while (status === 'finished' && run.state.stack.length > 0) {
      if (run.cancelled) return 'cancelled';
      const frame = run.state.stack[run.state.stack.length - 1];
      const list = rule.lists[frame.list];
      if (frame.index >= list.length) {
        run.state.stack.pop();
        if (frame.loop) {
          const error = this.nextRound(run, frame.loop);
          if (error) {
            run.trace.error = error;
            status = 'error';
          }
        }
        continue;
      }
      const refused = this.options.beforeStep?.() ?? null;
      if (refused !== null) {
        run.trace.error = refused;
        return 'stopped';
      }
      const index = frame.index++;
      const outcome = this.step(run, list[index], `${rule.listPaths[frame.list]}[${index}]`, frame.list, index);
      if (outcome instanceof Promise) {
        this.track(this.afterStep(state, run, outcome));
        return null;
      }
      if (outcome !== 'next') status = outcome;
      else if (++taken % 64 === 0 && performance.now() - turnStarted >= STEPS_TURN_MS) {
        // Still running (busy) while it lets the rest in; it goes on from the next step.
        this.track(this.afterStep(state, run, nextTurn<StepOutcome>('next')));
        return null;
      }
    }
    return run.cancelled ? 'cancelled' : status;
  }

  /** Goes on once a step that waited has settled. */
  private async afterStep(state: RuleState, run: Run, outcome: Promise<StepOutcome>): Promise<void> {
    let next: StepOutcome;
    try {
      next = await outcome;
    } catch (error) {
      this.runFailed(state, run, error);
      return;
    }
    this.proceed(state, run, next === 'next' ? 'finished' : next);
  }

  private runFailed(state: RuleState, run: Run, error: unknown): void {
    run.trace.error = error instanceof Error ? error.message : String(error);
    this.world.log.error('rule run failed', { rule: run.rule.id, error });
    this.endRun(state, run, 'error');
  }

  private endRun(state: RuleState, run: Run, status: TraceStatus): void {
    const { rule, trace } = run;
    try {
      // Announced while the run still counts as running: when rules start each other by their
      // ends (A's starts B, B's starts A), B's end finds A busy and mode single skips, rather
      // than A starting again inside this call, and B again, without end. (So anything its end
      // starts counts it as running, in every mode.) Stopping the hub only suspends a run: its
      // stored timer and trace stay as they are for the restart.
      if (!this.stopped) this.end(trace, status);
    } finally {
      // Even if announcing failed: a run left counted would keep a single rule "busy" for good.
      state.running.delete(run);
      this.inFlight.delete(run);
    }
    if (this.stopped) return;
    // A run that never waited has no timer row: no DELETE for it. One that did keeps its row until
    // the commands it sent are stored: a rule's command is stored a moment after it is dispatched,
    // and one not sent yet by then (a car out of reach, the second message of an action) would be
    // lost to a crash in between, with neither its row nor the run's left to send it again.
    if (run.stored) this.forgetRun(run.state.runId);
    // The next queued trigger starts when this run ends (mode: queued).
    const next = state.queue.shift();
    if (next && this.rules.get(rule.householdId)?.get(rule.id) === state)
      this.start(state, next.data, next.trace, next);
  }

  /** Decides whether a repeat goes round again; pushes the next round's frame if so. */
  private nextRound(run: Run, loop: NonNullable<Frame['loop']>): string | null {
    const action = run.rule.lists[loop.list][loop.index];
    if (action.type !== 'repeat') return null;
    const round = loop.iteration + 1;
    let again: boolean;
    if (action.count !== undefined) again = round < action.count;
    else if (action.while) again = this.conditionsHold(run, action.while).every((c) => c.result);
    else again = !this.conditionsHold(run, action.until ?? []).every((c) => c.result);
    if (!again) return null;
    // Only a round more than the limit is an error: `count: 10000`, which the parser allows, is done.
    if (round >= MAX_LOOP) return `repeat stopped after ${MAX_LOOP} rounds`;
    run.state.variables.repeat = { index: round + 1, first: false };
    run.state.stack.push({ list: action.list, index: 0, loop: { ...loop, iteration: round } });
    return null;
  }

  private conditionsHold(run: Run, conditions: Condition[], path = ''): ConditionResult[] {
    const env = this.conditionEnv(run.state.householdId, run.state.variables, run.state.trigger);
    return conditions.map((c, i) => ({ path: `${path}[${i}]`, condition: c.type, ...checkCondition(c, env) }));
  }

  /**
   * Runs one action. Returns 'next' to go on, or the status the run ends with; a promise of
   * either when the action waits for something.
   */
  private step(
    run: Run,
    action: Action,
    path: string,
    list: number,
    index: number,
  ): StepOutcome | Promise<StepOutcome> {
    const { clock } = this.world;
    const step: TraceStep = {
      path,
      action: action.type === 'thing' ? action.action : action.type,
      at: clock.now(),
      finishedAt: null,
      status: 'running',
    };
    run.trace.steps.push(step);
    const scope = this.scope(run.state.householdId, run.state.variables);
    switch (action.type) {
      case 'thing':
      case 'scene': {
        // Only an input with `{{ }}` parts can lack a value: a literal one allocates nothing here.
        const missing: string[] | undefined =
          action.type === 'thing' && action.input !== null && action.input.kind !== 'literal' ? [] : undefined;
        const orders =
          action.type === 'thing'
            ? action.things.map((thing) => ({
                thing,
                action: action.action,
                input: action.input ? renderTemplate(action.input, scope, missing) : {},
              }))
            : action.entries;
        if (missing?.length) step.detail = withMissing(undefined, missing);
        if (scope.refused?.length) return failStep(run, step, clock, scope.refused);
        step.commands = [];
        const failures: string[] = [];
        for (let i = 0; i < orders.length; i++) {
          const order = this.commandOrder(run, orders[i]);
          let answer: CommandRecord | Promise<CommandRecord>;
          try {
            answer = this.world.dispatch(order);
          } catch (error) {
            this.refused(step, order, error, failures);
            continue;
          }
          if (answer instanceof Promise) return this.sendLater(run, step, action, orders, i, answer, failures);
          this.sent(run, step, answer);
        }
        return this.commandsSent(run, step, action, failures);
      }
      case 'delay':
      case 'wait':
        return this.waitStep(run, step, action, list, index);
      case 'choose': {
        step.conditions = [];
        for (const [i, option] of action.options.entries()) {
          const results = this.conditionsHold(run, option.conditions, `${path}.choose[${i}].conditions`);
          step.conditions.push(...results);
          if (results.every((r) => r.result)) {
            run.state.stack.push({ list: option.list, index: 0 });
            done(step, clock, 'ok', `option ${i}`);
            return 'next';
          }
        }
        if (action.otherwise !== null) run.state.stack.push({ list: action.otherwise, index: 0 });
        done(step, clock, 'ok', action.otherwise !== null ? 'default' : 'no option matched');
        return 'next';
      }
      case 'if': {
        step.conditions = this.conditionsHold(run, action.conditions, `${path}.if`);
        const ok = step.conditions.every((r) => r.result);
        const branch = ok ? action.whenTrue : action.otherwise;
        if (branch !== null) run.state.stack.push({ list: branch, index: 0 });
        done(step, clock, 'ok', ok ? 'then' : 'else');
        return 'next';
      }
      case 'repeat': {
        let first = true;
        if (action.count !== undefined) first = action.count > 0;
        else if (action.while) {
          step.conditions = this.conditionsHold(run, action.while, `${path}.repeat.while`);
          first = step.conditions.every((c) => c.result);
        }
        if (first) {
          run.state.variables.repeat = { index: 1, first: true };
          run.state.stack.push({ list: action.list, index: 0, loop: { list, index, iteration: 0 } });
        }
        done(step, clock, 'ok', first ? 'started' : 'no rounds');
        return 'next';
      }
      case 'notify': {
        const missing: string[] = [];
        const message = String(renderTemplate(action.message, scope, missing) ?? '');
        const title = action.title ? String(renderTemplate(action.title, scope, missing) ?? '') : null;
        if (scope.refused?.length) return failStep(run, step, clock, scope.refused);
        const now = clock.now();
        const data = { rule: run.rule.id, trace: run.trace.id, title, message };
        this.world.publish({
          type: 'automation.notify',
          id: this.newId(now, 'evt_'),
          householdId: run.state.householdId,
          ts: now,
          cause: run.state.trigger.cause,
          data,
        });
        const webhook = action.webhook ?? this.options.notifyWebhook ?? null;
        // The trace shows the message as sent, and which of its values were missing.
        const detail = withMissing(message, missing) ?? message;
        if (webhook) {
          const stored = this.storeBeforeStep(run, list, index);
          const body = { ...data, ts: new Date(now).toISOString() };
          return this.notifyWebhook(run, step, webhook, body, detail, stored);
        }
        done(step, clock, 'ok', detail);
        return 'next';
      }
      case 'stop':
        done(step, clock, 'stopped', action.reason);
        if (action.error) run.trace.error = action.reason || 'stopped with an error';
        return action.error ? 'error' : 'stopped';
      case 'variables': {
        const missing: string[] = [];
        for (const [name, template] of Object.entries(action.variables))
          run.state.variables[name] = renderTemplate(template, scope, missing);
        if (scope.refused?.length) return failStep(run, step, clock, scope.refused);
        done(step, clock, 'ok', missing.length ? withMissing(undefined, missing) : undefined);
        return 'next';
      }
    }
  }

  /** A delay or a wait: the run is stored with its deadline, then goes on when it is due. */
  private async waitStep(
    run: Run,
    step: TraceStep,
    action: Extract<Action, { type: 'delay' | 'wait' }>,
    list: number,
    index: number,
  ): Promise<StepOutcome> {
    const { clock } = this.world;
    if (action.type === 'delay') {
      const due = clock.now() + action.ms;
      step.status = 'waiting';
      step.detail = `until ${new Date(due).toISOString()}`;
      const goOn = await this.suspend(run, { kind: 'delay' }, due);
      if (!goOn) {
        done(step, clock, 'stopped');
        return run.cancelled ? 'cancelled' : 'stopped';
      }
      done(step, clock, 'ok');
      return 'next';
    }
    const due = action.timeoutMs === null ? NO_DEADLINE : clock.now() + action.timeoutMs;
    step.status = 'waiting';
    const goOn = await this.resumeWaiting(run, { kind: 'wait', list, index }, due, step, true);
    return goOn ? 'next' : run.cancelled ? 'cancelled' : 'timeout';
  }

  /**
   * Stores an acknowledged run that has not been stored yet as it begins a step that does not
   * finish at once (a notification posted to a webhook), with its stack at that step: a crash
   * before the run reaches its first delay or wait would otherwise lose a run its caller was told
   * had fired. The row is counted for that caller at once (see fireExternal), so a webhook's answer
   * waits for this write, not for the step. The run's later rows (its delay) overwrite this one;
   * its end deletes it. Undefined when there is nothing to store.
   */
  private storeBeforeStep(run: Run, list: number, index: number): Promise<void> | undefined {
    if (!run.acknowledged || run.stored || !this.world.timers) return undefined;
    const saved = structuredClone(run.state);
    const top = saved.stack[saved.stack.length - 1];
    // The step's frame is on top (a step that waits pushes none): it is taken again after a restart.
    if (top?.list !== list) return undefined;
    top.index = index;
    run.stored = true;
    const written = this.saveTimer(
      {
        id: run.state.runId,
        householdId: run.state.householdId,
        owner: TIMER_OWNER,
        // Due at once: a restart takes the step again (after the overdue grace, as a passed delay).
        due: this.world.clock.now(),
        payload: {
          kind: 'run',
          rule: run.state.rule,
          version: run.state.version,
          run: saved,
          waiting: { kind: 'step' } satisfies Waiting,
        },
      },
      // As a delay's row: the commands sent before the step are stored before a row that resumes
      // past them.
      this.world.commandsStored?.(),
    );
    this.saveTrace(run.trace);
    return written;
  }

  /**
   * Posts a notification. `stored`, the run's row when it was stored as this step began (see
   * storeBeforeStep), is written before the post goes out. Why first rather than alongside: the
   * webhook's caller waits for the row, never for the receiver (which may take the whole
   * webhookTimeoutMs, 5 s by default, or not answer at all), and one local write is all the post
   * is held for; in exchange the run's later writes of the same row (its delay, the deletion at
   * its end) always follow this one, which a pool of connections would not promise if they ran
   * side by side, and a row that cannot be written fails the run before anything is sent, as a
   * delay's does. A crash after the row and before the receiver's answer sends the notification
   * again at the restart: twice rather than never, as a step after a delay is taken again.
   */
  private async notifyWebhook(
    run: Run,
    step: TraceStep,
    webhook: string,
    body: Record<string, unknown>,
    message: string,
    stored: Promise<void> | undefined,
  ): Promise<StepOutcome> {
    const { clock } = this.world;
    if (stored) await stored;
    try {
      await this.world.postWebhook(webhook, body);
    } catch (error) {
      // The trace is read by every member of the household: a password in the URL is not shown.
      step.error = redactText(`webhook ${webhook}: ${error instanceof Error ? error.message : String(error)}`);
      run.trace.error = step.error;
      done(step, clock, 'error');
      return 'error';
    }
    done(step, clock, 'ok', message);
    return 'next';
  }

  private commandOrder(run: Run, order: ThingOrder): CommandOrder {
    return {
      householdId: run.state.householdId,
      thing: order.thing,
      action: order.action,
      input: (order.input ?? {}) as Record<string, unknown>,
      issuedBy: `rule:${run.rule.id}`,
      cause: run.state.trigger.cause,
    };
  }

  private sent(run: Run, step: TraceStep, record: CommandRecord): void {
    step.commands?.push(record);
    if (!record.id) return;
    this.watchCommand(run, record);
    // The thing's next change, while this command is open, is taken as its effect (stateChain).
    let things = this.commanded.get(run.state.householdId);
    if (!things) {
      things = new Map();
      this.commanded.set(run.state.householdId, things);
    }
    things.set(record.thing, record.id);
  }

  private refused(step: TraceStep, order: CommandOrder, error: unknown, failures: string[]): void {
    const message = error instanceof Error ? error.message : String(error);
    failures.push(`${order.thing}: ${message}`);
    step.commands?.push({
      id: null,
      thing: order.thing,
      action: order.action,
      input: order.input,
      status: 'refused',
      error: message,
    });
  }

  /** The rest of a step's commands, for a world whose dispatch answers later. */
  private async sendLater(
    run: Run,
    step: TraceStep,
    action: Action,
    orders: ThingOrder[],
    from: number,
    first: Promise<CommandRecord>,
    failures: string[],
  ): Promise<StepOutcome> {
    for (let i = from; i < orders.length; i++) {
      const order = this.commandOrder(run, orders[i]);
      try {
        this.sent(run, step, await (i === from ? first : this.world.dispatch(order)));
      } catch (error) {
        this.refused(step, order, error, failures);
      }
    }
    return this.commandsSent(run, step, action, failures);
  }

  private commandsSent(run: Run, step: TraceStep, action: Action, failures: string[]): StepOutcome {
    const { clock } = this.world;
    if (failures.length) {
      step.error = failures.join('; ');
      done(step, clock, 'error');
      if (action.type === 'thing' && action.continueOnError) return 'next';
      run.trace.error = step.error;
      return 'error';
    }
    done(step, clock, 'ok');
    return 'next';
  }

  /**
   * Waits for a delay's deadline or a wait's trigger, durably: the run's state is stored with the
   * deadline first, so a restart picks it up. Resolves true to go on, false to end the run.
   */
  private async resumeWaiting(
    run: Run,
    waiting: Waiting,
    due: number,
    step: TraceStep | undefined,
    fresh = false,
  ): Promise<boolean> {
    if (waiting.kind === 'delay') {
      const goOn = await this.suspend(run, waiting, due);
      if (step) {
        step.status = goOn ? 'ok' : 'stopped';
        step.finishedAt = this.world.clock.now();
      }
      return goOn;
    }
    if (waiting.kind !== 'wait') return true;
    const action = run.rule.lists[waiting.list][waiting.index];
    if (action.type !== 'wait') return true;
    const waiter: Waiter = { run, triggers: action.triggers, resolve: () => {} };
    const result = new Promise<TriggerData | null>((resolve) => {
      // Wakes the run in the same turn as the event that matched, so it goes on at that event's
      // time and a replay sees it busy, rather than only when the promise chain gets round to it.
      waiter.resolve = (data) => {
        resolve(data);
        if (data) run.interrupt?.(true);
      };
    });
    this.waiters.add(waiter);
    const goOnPromise = this.suspend(run, waiting, due, result);
    const goOn = await goOnPromise;
    this.waiters.delete(waiter);
    const matched = await Promise.race([result, Promise.resolve(null)]);
    run.state.variables.wait = { trigger: matched, completed: matched !== null, timed_out: matched === null && goOn };
    if (step) {
      step.finishedAt = this.world.clock.now();
      if (!goOn) step.status = 'stopped';
      else if (matched) {
        step.status = 'ok';
        step.detail = `${fresh ? '' : 'resumed; '}${matched.description}`;
      } else {
        step.status = action.continueOnTimeout ? 'ok' : 'timeout';
        step.detail = 'timed out';
      }
    }
    if (!goOn) return false;
    return matched !== null || action.continueOnTimeout;
  }

  /**
   * Stores the run with its deadline, then waits for the deadline (or `early`, a wait's trigger).
   * A deadline already past (the hub was down) fires at once, exactly once.
   */
  private async suspend(run: Run, waiting: Waiting, due: number, early?: Promise<unknown>): Promise<boolean> {
    const { clock } = this.world;
    run.trace.status = 'waiting';
    // Checked first: the copy of the run's state is only worth making for a store that keeps it.
    if (this.world.timers) {
      run.stored = true;
      // The row says "go on after the wait": the commands sent before it must be stored first, or
      // a crash in their write window would resume the run past a command no row holds (one a car
      // out of reach has not had yet is then never sent).
      await this.saveTimer(
        {
          id: run.state.runId,
          householdId: run.state.householdId,
          owner: TIMER_OWNER,
          due,
          payload: {
            kind: 'run',
            rule: run.state.rule,
            version: run.state.version,
            run: structuredClone(run.state),
            waiting,
          },
        },
        this.world.commandsStored?.(),
      );
    }
    this.saveTrace(run.trace);
    if (run.cancelled) return false;
    const goOn = await new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (value: boolean) => {
        if (settled) return;
        settled = true;
        disarm();
        run.interrupt = null;
        // Mid-step again from this moment: `busy` must say so before the continuation runs.
        run.trace.status = 'running';
        resolve(value);
      };
      let disarm = () => {};
      run.interrupt = finish;
      if (due <= clock.now()) {
        finish(true);
        return;
      }
      if (due < NO_DEADLINE) disarm = clock.setTimeout(() => finish(true), due - clock.now());
      void early?.then((data) => {
        if (data) finish(true);
      });
    });
    run.trace.status = 'running';
    return goOn && !run.cancelled;
  }

  // ---------------------------------------------------------------- resume

  /**
   * Picks up stored timers after a start: pending `for:` waits whose condition still holds and
   * suspended runs. A deadline that passed while the hub was down fires now, once; timers of
   * rules that changed or went away are dropped.
   */
  async resume(timers: StoredTimer[], options: { holdQueued?: boolean } = {}): Promise<void> {
    // Queued triggers last, in the order they came: behind any run of their rule resumed here.
    const queued: Array<{ state: RuleState; timer: StoredTimer }> = [];
    for (const timer of timers) {
      const payload = timer.payload as { kind?: string; rule?: string; version?: string };
      const state = payload.rule ? this.rules.get(timer.householdId)?.get(payload.rule) : undefined;
      if (!state?.rule.enabled || !(await this.storedForThisVersion(state.rule, timer))) {
        await this.world.timers?.delete(timer.id);
        await this.timerCancelled(timer);
        continue;
      }
      if (payload.kind === 'for') {
        const { trigger: triggerId, data } = timer.payload as { trigger: string; data: TriggerData };
        const trigger = state.rule.triggers.find((t) => t.id === triggerId);
        const current =
          trigger && 'thing' in trigger && 'property' in trigger
            ? this.world.value(timer.householdId, trigger.thing, trigger.property)
            : undefined;
        if (!trigger || !stillHolds(trigger, data, current) || state.pending.has(triggerId)) {
          await this.world.timers?.delete(timer.id);
          continue;
        }
        const pending: PendingFor = { timerId: timer.id, data, due: timer.due, saved: undefined, disarm: () => {} };
        state.pending.set(triggerId, pending);
        this.armPending(state, trigger, pending, timer.due);
      } else if (payload.kind === 'run') {
        const { run: saved, waiting } = timer.payload as { run: RunState; waiting: Waiting };
        const trace =
          (await this.world.traces.load(timer.householdId, saved.traceId)) ??
          this.newTrace(state.rule, saved.trigger, saved.traceId);
        const run: Run = {
          rule: state.rule,
          trace,
          state: saved,
          cancelled: false,
          stored: true,
          acknowledged: false,
          interrupt: null,
        };
        state.running.add(run);
        this.inFlight.add(run);
        this.execute(state, run, { waiting, due: timer.due });
      } else if (payload.kind === 'queued') {
        queued.push({ state, timer });
      } else {
        await this.world.timers?.delete(timer.id);
      }
    }
    queued.sort((a, b) => a.timer.due - b.timer.due || (a.timer.id < b.timer.id ? -1 : 1));
    for (const { state, timer } of queued) {
      const { data, traceId } = timer.payload as { data: TriggerData; traceId?: string };
      const trace = this.newTrace(state.rule, data, traceId);
      // Until its turn, a queued trace's start is when it was queued (its row's `due`, see enqueue).
      trace.startedAt = timer.due;
      if (options.holdQueued || state.running.size > 0 || state.queue.length > 0)
        this.enqueue(state, data, trace, timer);
      else this.start(state, data, trace, { data, trace, timerId: timer.id, saved: undefined });
    }
  }

  /**
   * Whether a stored timer belongs to the rule as it is now: it carries the rule's version.
   *
   * Upgrade allowance, the only one: builds before canonical versions (see ruleVersion) stored the
   * hash of the rule's JSON in the order it was read, which a rules file or SQLite hands back
   * unchanged. A row with that hash of the same rule is the rule's too, and is written again at
   * once with the current version (the run it holds included, whose later rows copy it). Rows have
   * no age limit (a wait without timeout, a `for:` whose state holds, a queued trigger behind
   * them), so old-style rows last until the first start of a build with this code, or the next
   * one if that write failed; the allowance can go once no hub upgrades straight from a build
   * before it. An API rule in PostgreSQL stored runs, until its first restart, with a hash of its
   * keys in the order written, which JSONB does not keep: those ended at a restart before, and do.
   */
  private async storedForThisVersion(rule: Rule, timer: StoredTimer): Promise<boolean> {
    const payload = timer.payload as { version?: unknown; run?: { version?: unknown } };
    if (payload.version === rule.version) return true;
    const oldStyle = createHash('sha256').update(JSON.stringify(rule.source)).digest('hex').slice(0, 16);
    if (payload.version !== oldStyle) return false;
    payload.version = rule.version;
    if (payload.run) payload.run.version = rule.version;
    await this.world.timers
      ?.save(timer)
      .catch((error: unknown) => this.world.log.error('could not store a timer again', { timer: timer.id, error }));
    return true;
  }

  /**
   * Ends what a stored timer held when a restart finds its rule changed, switched off or gone: a
   * countdown, a queued trigger or a waiting run says so in its trace, as it does when the change
   * comes while the hub runs (see unload). Its row is deleted already.
   */
  private async timerCancelled(timer: StoredTimer): Promise<void> {
    const payload = timer.payload as { kind?: string; rule?: unknown; version?: unknown; data?: TriggerData };
    if (typeof payload.rule !== 'string') return;
    const owner = { householdId: timer.householdId, id: payload.rule, version: String(payload.version ?? '') };
    if (payload.kind === 'for' && payload.data) {
      this.countdownCancelled(owner, payload.data, timer.due, RULE_CHANGED_WHILE_DOWN);
    } else if (payload.kind === 'queued' && payload.data) {
      const { traceId } = timer.payload as { traceId?: string };
      const trace = this.newTrace(owner, payload.data, traceId);
      // Until its turn, a queued trace's start is when it was queued (its row's `due`, see enqueue).
      trace.startedAt = timer.due;
      this.queuedCancelled(trace, RULE_CHANGED_WHILE_DOWN);
    } else if (payload.kind === 'run') {
      const { run } = timer.payload as { run?: RunState };
      const trace = run ? await this.world.traces.load(timer.householdId, run.traceId) : null;
      if (!trace || FINAL_TRACE.has(trace.status)) return;
      const step = trace.steps.findLast((s) => s.status === 'waiting' || s.status === 'running');
      if (step) done(step, this.world.clock, 'stopped');
      trace.error = RULE_CHANGED_WHILE_DOWN;
      this.end(trace, 'cancelled');
    }
  }

  /**
   * Starts the first trigger of every queued rule that holds some and runs nothing: those held at
   * start (resume with holdQueued) once the hub gives devices time to reconnect.
   */
  startHeldQueues(): void {
    for (const household of this.rules.values()) {
      for (const state of household.values()) {
        if (state.running.size > 0 || !state.rule.enabled) continue;
        const next = state.queue.shift();
        if (next) this.start(state, next.data, next.trace, next);
      }
    }
  }

  // ---------------------------------------------------------------- traces

  private newTrace(rule: TraceOwner, data: TriggerData, id?: string): Trace {
    return {
      id: id ?? this.newId(this.world.clock.now(), 'trc_'),
      householdId: rule.householdId,
      rule: rule.id,
      ruleVersion: rule.version,
      status: 'running',
      startedAt: this.world.clock.now(),
      finishedAt: null,
      trigger: data,
      conditions: [],
      steps: [],
      error: null,
      dryRun: this.options.dryRun ?? false,
    };
  }

  private end(trace: Trace, status: TraceStatus): void {
    trace.status = status;
    trace.finishedAt = this.world.clock.now();
    this.saveTrace(trace);
    if (status !== 'condition_failed' && status !== 'skipped') {
      const now = this.world.clock.now();
      this.world.publish({
        type: 'automation.run',
        id: this.newId(now, 'evt_'),
        householdId: trace.householdId,
        ts: now,
        cause: trace.trigger.cause,
        data: { rule: trace.rule, trace: trace.id, status },
      });
    }
    this.options.onRunEnd?.(trace);
  }

  /**
   * Hands a trace to the trace store, which writes its copies in order (see TraceStore.save). A
   * run that goes on needs a snapshot; an ended run's trace changes only as its commands are
   * confirmed, which the pending write should catch, so it is handed over as it is.
   */
  private saveTrace(trace: Trace): void {
    if (!this.options.everyStep) {
      // In place: the run goes on from this trace, and its memory is what a long repeat grew.
      const shown = boundSteps(trace);
      if (shown) Object.assign(trace, shown);
    }
    const copy = this.world.traces.inMemory || FINAL_TRACE.has(trace.status) ? trace : structuredClone(trace);
    this.world.traces
      .save(copy)
      .catch((error: unknown) => this.world.log.error('could not save trace', { trace: trace.id, error }));
  }

  private watchCommand(run: Run, record: CommandRecord): void {
    if (!record.id) return;
    this.commandSteps.set(record.id, { run, record });
    const early = this.early.get(record.id);
    if (early) {
      this.early.delete(record.id);
      this.commandUpdated(early);
    }
  }

  /** Moves a command's status in its trace, so the trace ends with the device's confirmation. */
  private commandUpdated(event: HubEvent & { type: 'command' }): void {
    const { command } = event;
    const entry = this.commandSteps.get(command.id);
    if (!entry) {
      if (command.issuedBy.startsWith('rule:') && command.status !== 'pending') {
        if (this.early.size > 1000) this.early.clear();
        this.early.set(command.id, event);
      }
      return;
    }
    entry.record.status = command.status;
    entry.record.error = command.error ?? null;
    if (command.status === 'confirmed' || command.status === 'failed' || command.status === 'expired') {
      // The step's cause is the report that finished it only when that report was an event (it
      // changed a state). One that changed nothing (a light already off, told to turn off), a
      // failure without a report and an expiry carry the command's own cause: its rule's
      // trigger, which did not finish it.
      entry.record.finishedBy = event.cause !== command.cause ? (event.cause ?? null) : null;
      this.commandSteps.delete(command.id);
    }
    // A finished trace is saved again; a running one is saved when its run ends.
    if (FINAL_TRACE.has(entry.run.trace.status)) this.saveTrace(entry.run.trace);
  }

  // ---------------------------------------------------------------- helpers

  /**
   * A household's state reader and clock for expressions and conditions, made once: every run
   * asks for them, and new closures per run were a measurable part of a rule's cost.
   */
  private readers(householdId: string): Required<Pick<ExpressionScope, 'state' | 'now' | 'timeZone'>> {
    let readers = this.householdReaders.get(householdId);
    if (!readers) {
      const { world } = this;
      readers = {
        state: (thing, property) => world.value(householdId, thing, property),
        now: () => world.clock.now(),
        timeZone: () => world.timeZone(householdId),
      };
      this.householdReaders.set(householdId, readers);
    }
    return readers;
  }

  private scope(householdId: string, variables: Record<string, unknown>): ExpressionScope {
    const { state, now, timeZone } = this.readers(householdId);
    return { variables, state, now, timeZone, refused: [] };
  }

  private conditionEnv(householdId: string, variables: Record<string, unknown>, trigger: TriggerData | null) {
    const readers = this.readers(householdId);
    return {
      now: this.world.clock.now(),
      value: readers.state,
      location: this.world.location(householdId),
      timeZone: readers.timeZone,
      trigger,
      scope: this.scope(householdId, variables),
    };
  }

  /** Logs a background task's failure; `idle` and `busy` follow the runs themselves (inFlight). */
  private track(promise: Promise<unknown>): void {
    promise.catch(this.taskFailed);
  }

  /** Made once: a run is a task, and a closure per run was a measurable part of what it allocated. */
  private readonly taskFailed = (error: unknown) => this.world.log.error('automation task failed', { error });

  /** Resolves when every run that is not waiting on a timer or trigger has settled, and traces are saved. */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!this.busy) break;
    }
    await Promise.allSettled(this.forgetting);
    await this.world.traces.flush?.();
  }

  /** Writes every trace saved so far, for a reader of the store. */
  async flushTraces(): Promise<void> {
    await this.world.traces.flush?.();
  }

  /** Whether any run is mid-step (not waiting on a timer or trigger). */
  get busy(): boolean {
    for (const run of this.inFlight) if (run.trace.status === 'running') return true;
    return false;
  }

  /** Stops everything in memory. Stored timers stay, so the next start resumes them. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const household of this.rules.values()) {
      for (const state of household.values()) {
        this.disarm(state);
        for (const pending of state.pending.values()) pending.disarm();
        for (const run of state.running) {
          // Not `cancel`: the run is only suspended, its stored timer brings it back after a restart.
          run.cancelled = true;
          run.interrupt?.(false);
        }
      }
    }
    await this.world.traces.flush?.();
    // A row left behind would run the ended run's last steps again at the next start.
    await Promise.allSettled(this.forgetting);
    this.waiters.clear();
  }
}

/**
 * The rule whose run announced an event, for the events a rule must not be triggered by: its own
 * `automation.*` events (not a notification: a rule may act on what it notified) and its own
 * commands' `command` events.
 */
function ownRule(event: HubEvent): string | undefined {
  if (event.type === 'command') {
    const { issuedBy } = event.command;
    return issuedBy.startsWith('rule:') ? issuedBy.slice(5) : undefined;
  }
  if (!event.type.startsWith('automation.') || event.type === 'automation.notify') return undefined;
  const rule = (event as { data?: { rule?: unknown } }).data?.rule;
  return typeof rule === 'string' ? rule : undefined;
}

/** How many runs of a rule a chain holds. */
function returnsTo(chain: Chain, rule: string): number {
  let count = 0;
  for (const link of chain) if (link === rule) count++;
  return count;
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}

/**
 * A queued trigger's turn came (or it was dropped before it): the trace's `startedAt`, the time it
 * was queued until now, becomes `queuedAt`, and it starts now.
 */
function leftQueue(trace: Trace, now: number): void {
  trace.queuedAt ??= trace.startedAt;
  trace.startedAt = now;
}

/**
 * A step's detail with the `{{ … }}` that had no value when it ran (rendered as nothing), so a
 * trace explains an empty message or an input left out instead of showing it without a word.
 */
function withMissing(detail: string | undefined, missing: string[]): string | undefined {
  if (missing.length === 0) return detail;
  const shown = [...new Set(missing)].slice(0, 5).map((source) => {
    const text = source.length > 80 ? `${source.slice(0, 80)}…` : source;
    return `{{ ${text} }}`;
  });
  const more = new Set(missing).size > 5 ? ' and more' : '';
  const note = `no value for ${shown.join(', ')}${more}`;
  return detail === undefined ? note : `${detail} (${note})`;
}

/** A step whose values could not be made (a text over the bound): it and its run end in that error. */
function failStep(run: Run, step: TraceStep, clock: { now(): number }, reasons: string[]): 'error' {
  step.error = [...new Set(reasons)].join('; ');
  run.trace.error = step.error;
  done(step, clock, 'error');
  return 'error';
}

/** Ends a trace step with its status and, when there is one, what it did. */
function done(step: TraceStep, clock: { now(): number }, status: TraceStep['status'], detail?: string): void {
  step.status = status;
  step.finishedAt = clock.now();
  if (detail !== undefined) step.detail = detail;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}
