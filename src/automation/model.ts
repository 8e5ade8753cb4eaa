import type { Expr } from './expression/index.ts';
import type { CronSchedule } from './time/cron.ts';
import type { SunEvent } from './time/sun.ts';

/**
 * A rule after validation: every thing, property and action checked, every duration in ms, every
 * expression parsed. The raw document it came from is kept as `source` so the API can give it back.
 */
export interface Rule {
  id: string;
  householdId: string;
  name: string;
  description: string;
  enabled: boolean;
  mode: RunMode;
  /** Most runs at once (parallel) or waiting (queued). */
  max: number;
  triggers: Trigger[];
  conditions: Condition[];
  /** Every action list of the rule; list 0 is the top level. Composite actions point at lists by index. */
  lists: Action[][];
  /** Each list's field path (`actions`, `actions[2].then`), for traces. */
  listPaths: string[];
  variables: Record<string, Template>;
  origin: RuleOrigin;
  /**
   * Fields the rule holds that were ignored when it was loaded (see RuleContext.legacy), each as
   * `field: what`; empty for a rule without any.
   */
  warnings: string[];
  /** The document as written (YAML or JSON), for the API and for editing. */
  source: Record<string, unknown>;
  /** Changes when the rule changes, so a stored timer from an older version is dropped, not run. */
  version: string;
}

export type RunMode = 'single' | 'restart' | 'queued' | 'parallel';

export type RuleOrigin = { kind: 'api' } | { kind: 'file'; file: string } | { kind: 'draft' };

interface TriggerBase {
  /** Readable by conditions (`condition: trigger`) and actions (`trigger.id`); defaults to the index. */
  id: string;
}

export type Trigger = TriggerBase &
  (
    | { type: 'state'; thing: string; property: string; from?: unknown[]; to?: unknown[]; forMs: number }
    | { type: 'numeric_state'; thing: string; property: string; above?: number; below?: number; forMs: number }
    | { type: 'zone'; thing: string; zone: string; event: 'enter' | 'leave' }
    | { type: 'time'; at: number[]; weekdays?: number[] }
    | { type: 'cron'; pattern: string; schedule: CronSchedule }
    | { type: 'sun'; event: SunEvent; offsetMs: number }
    | { type: 'event'; eventType: string; thing?: string; data?: Record<string, unknown> }
    | { type: 'mqtt'; topic: string; payload?: string }
    | { type: 'webhook'; webhookId: string }
  );

export type TriggerType = Trigger['type'];

export type Condition =
  | { type: 'and' | 'or' | 'not'; conditions: Condition[] }
  | { type: 'state'; thing: string; property: string; state: unknown[] }
  | { type: 'numeric_state'; thing: string; property: string; above?: number; below?: number }
  | { type: 'time'; after?: number; before?: number; weekdays?: number[] }
  | { type: 'sun'; after?: { event: SunEvent; offsetMs: number }; before?: { event: SunEvent; offsetMs: number } }
  | { type: 'zone'; thing: string; zone: string }
  | { type: 'expression'; expression: Expr; text: string }
  | { type: 'trigger'; ids: string[] };

export type Action =
  | { type: 'thing'; action: string; things: string[]; input: Template | null; continueOnError: boolean }
  | { type: 'scene'; entries: Array<{ thing: string; action: string; input: Record<string, unknown> }> }
  | { type: 'delay'; ms: number }
  | { type: 'wait'; triggers: Trigger[]; timeoutMs: number | null; continueOnTimeout: boolean }
  | { type: 'choose'; options: Array<{ conditions: Condition[]; list: number }>; otherwise: number | null }
  | { type: 'if'; conditions: Condition[]; whenTrue: number; otherwise: number | null }
  | { type: 'repeat'; count?: number; while?: Condition[]; until?: Condition[]; list: number }
  | { type: 'notify'; message: Template; title: Template | null; webhook: string | null }
  | { type: 'stop'; reason: string; error: boolean }
  | { type: 'variables'; variables: Record<string, Template> };

/** A value with `{{ expression }}` parts, filled in from the run's variables when the action runs. */
export type Template =
  | { kind: 'literal'; value: unknown }
  | { kind: 'expression'; expr: Expr; source: string }
  | { kind: 'text'; parts: Array<string | { expr: Expr; source: string }> }
  | { kind: 'object'; entries: Array<[string, Template]> }
  | { kind: 'array'; items: Template[] };

/** What the trigger hands the run: the `trigger` variable, and the id of the event that caused it. */
export interface TriggerData {
  id: string;
  type: TriggerType;
  /** The id of the event behind the trigger (a state change, a command event…) or a synthetic one. */
  cause: string;
  ts: number;
  thing?: string;
  property?: string;
  from?: unknown;
  to?: unknown;
  zone?: string;
  event?: string;
  topic?: string;
  payload?: string;
  payload_json?: unknown;
  data?: Record<string, unknown>;
  description: string;
}
