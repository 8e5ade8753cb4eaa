import { existsSync } from 'node:fs';
import type { Broker } from './brokers.ts';
import { startNodeRed } from './node-red.ts';
import { type ManagedProcess, ROOT, startProcess, tsNode } from './processes.ts';
import { RULE } from './rule.ts';

/** Something that runs the benchmark's rule between the broker's report and command topics. */
export interface RuleRunner {
  name: string;
  /** The processes whose CPU is charged to the rule (not the broker's, not the load generator's). */
  pids: number[];
  /** Where the runner's answers arrive, and how they are matched to reports (see roundTrip). */
  answerTopic: string;
  correlate: 'seq' | 'order';
  /** The device confirmation sent back for each answer (RULE.fanConfirmation for every runner of the rule). */
  confirm?: { topic: string; payload: string };
  /** Replaces the system with a fresh one after an overloaded trial; absent when it recovers by itself. */
  reset?(): Promise<void>;
  stop(): Promise<void>;
}

/** A runner that could not be started, with the reason to print instead of a number. */
export interface NotMeasured {
  notMeasured: string;
}

export function isNotMeasured(x: unknown): x is NotMeasured {
  return typeof x === 'object' && x !== null && 'notMeasured' in x;
}

/** The floor: no rule at all, the broker relays the report itself to the subscriber. */
export function brokerFloor(broker: Broker): RuleRunner {
  return {
    name: `${broker.kind} relay (floor)`,
    pids: broker.process ? [broker.process.pid] : [],
    answerTopic: RULE.reportFilter,
    correlate: 'seq',
    stop: async () => {},
  };
}

export async function idealRelay(broker: Broker): Promise<RuleRunner> {
  const { command, args } = tsNode('ideal-relay.ts', [
    broker.url,
    RULE.reportFilter,
    RULE.commandTopic,
    String(RULE.threshold),
  ]);
  const proc: ManagedProcess = await startProcess({ name: 'ideal relay', command, args, ready: /ideal relay ready/ });
  return processRunner('ideal relay', proc);
}

export async function nodeRed(broker: Broker): Promise<RuleRunner | NotMeasured> {
  try {
    const proc = await startNodeRed(broker.url, {
      reportFilter: RULE.reportFilter,
      commandTopic: RULE.commandTopic,
      threshold: RULE.threshold,
    });
    return processRunner('Node-RED 4', proc);
  } catch (error) {
    return { notMeasured: `Node-RED could not be started: ${(error as Error).message.split('\n')[0]}` };
  }
}

function processRunner(name: string, proc: ManagedProcess): RuleRunner {
  return {
    name,
    pids: [proc.pid],
    answerTopic: RULE.commandTopic,
    correlate: 'seq',
    confirm: RULE.fanConfirmation,
    stop: () => proc.stop(),
  };
}

/** True once the automation engine exists in the source tree; until then Triad's figure is not measured. */
export function automationEnginePresent(): boolean {
  return existsSync(`${ROOT}src/automation/index.ts`);
}
