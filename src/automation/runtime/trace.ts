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
   * changed), when it was dropped.
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
