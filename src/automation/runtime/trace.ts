import type { TriggerData } from '../model.ts';
import type { CommandRecord } from './world.ts';

export type TraceStatus =
  | 'running'
  | 'waiting'
  | 'finished'
  | 'stopped'
  | 'error'
  | 'timeout'
  | 'cancelled'
  | 'skipped'
  | 'condition_failed';

export interface ConditionResult {
  /** Where the condition is in the rule: `conditions[0]`, `actions[1].if[0]`. */
  path: string;
  condition: string;
  result: boolean;
  detail?: string;
}

export interface TraceStep {
  path: string;
  action: string;
  at: number;
  finishedAt: number | null;
  status: 'running' | 'ok' | 'error' | 'waiting' | 'timeout' | 'stopped';
  detail?: string;
  error?: string;
  /** Commands the step sent, each with its final status once the device confirms or it fails. */
  commands?: CommandRecord[];
  /** Conditions a choose/if/repeat step evaluated. */
  conditions?: ConditionResult[];
}

/**
 * The record of one run: the trigger (with the id of the event that caused it), each condition's
 * result and each step, linked by cause from the device's confirmation back to the trigger.
 */
export interface Trace {
  id: string;
  householdId: string;
  rule: string;
  ruleVersion: string;
  status: TraceStatus;
  /**
   * When the run started. For a trigger that waited its turn in a queued rule's queue, that is
   * when its turn came (`queuedAt` is when it came in); for one dropped before its turn (the rule
   * changed), when it was dropped, as for a `for:` countdown the rule's change ended (its
   * trigger's `ts` is when the countdown began).
   */
  startedAt: number;
  /** When the trigger came in and was queued (mode: queued); only on runs that waited their turn. */
  queuedAt?: number;
  finishedAt: number | null;
  trigger: TriggerData;
  conditions: ConditionResult[];
  steps: TraceStep[];
  error: string | null;
  /** True when the run was a replay or dry run and sent nothing. */
  dryRun: boolean;
  /**
   * Steps left out of `steps` after its first `after` (see boundSteps); absent when none were.
   * A trace stored before there was a bound has none, and every step.
   */
  omittedSteps?: { after: number; count: number };
}

/**
 * Steps a trace shows at most, the first and last half of them: a repeat of 10,000 rounds was a
 * 3 MB trace, and a rule keeps 100 of them. The steps in between are counted (omittedSteps).
 */
export const TRACE_STEPS = 100;

/**
 * The steps a trace shows within TRACE_STEPS, and how many were left out, or null when it has no
 * more than that. A trace already bounded (a run resumed after a restart) keeps its first steps
 * and adds to the count. The step objects are the trace's own, not copies: a command confirmed
 * later still updates the step that shows it.
 */
export function boundSteps(trace: Trace): Pick<Trace, 'steps' | 'omittedSteps'> | null {
  const { steps } = trace;
  const count = steps.length - TRACE_STEPS;
  if (count <= 0) return null;
  const after = trace.omittedSteps?.after ?? TRACE_STEPS / 2;
  const tail = TRACE_STEPS - after;
  return {
    steps: [...steps.slice(0, after), ...steps.slice(-tail)],
    omittedSteps: { after, count: (trace.omittedSteps?.count ?? 0) + count },
  };
}

export const FINAL_TRACE: ReadonlySet<TraceStatus> = new Set([
  'finished',
  'stopped',
  'error',
  'timeout',
  'cancelled',
  'skipped',
  'condition_failed',
]);
