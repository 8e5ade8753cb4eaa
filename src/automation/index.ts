export { runReplayCommand } from './cli.ts';
export { AutomationEngine, type AutomationEngineOptions } from './engine.ts';
export type { Action, Condition, Rule, Trigger, TriggerData } from './model.ts';
export { RuleError } from './parse/errors.ts';
export { parseRule } from './parse/rule.ts';
export { benchmarkReplay, type ReplayResult, type ReplayRun, replayRules } from './replay.ts';
export type { Trace } from './runtime/trace.ts';
