import { type VissError, vissErrors } from '../adapters/viss/errors.ts';
import type { DataPoint, SignalSource } from '../adapters/viss/session.ts';
import { type SignalTree, type SignalValue, toWire } from '../adapters/viss/tree.ts';
import type { Principal } from '../auth/tokens.ts';
import type { Bus } from '../core/bus.ts';
import type { CommandService } from '../core/commands.ts';
import { HubError } from '../core/errors.ts';
import type { TwinRegistry } from '../core/twin.ts';
import { commandFor, lockSetRefusal } from './actions.ts';
import { signalForPath } from './signals.ts';

export interface TwinSignalSourceOptions {
  twins: TwinRegistry;
  bus: Bus;
  commands: CommandService;
  householdId: string;
  vehicle: string;
  tree: SignalTree;
  /** Who the commands a client's `set`s become are issued by (the token's user). */
  issuedBy: string;
  /** The caller, so permissions and the audit trail apply to VISS clients as to the API's. */
  principal?: Principal;
  /** Why the caller may do nothing right now (a guest pass outside its window), or null. */
  refusal?: () => string | null;
}

/**
 * A Triad vehicle as a VISS server sees it: reads come from the twin, `set`s become commands (so
 * the safety rules and the command lifecycle apply to VISS clients as to everyone else).
 */
export class TwinSignalSource implements SignalSource {
  readonly tree: SignalTree;

  constructor(private readonly options: TwinSignalSourceOptions) {
    this.tree = options.tree;
  }

  refusal(): VissError | null {
    const why = this.options.refusal?.() ?? null;
    return why === null ? null : vissErrors.refused(why);
  }

  read(path: string): DataPoint | undefined {
    const signal = signalForPath(path);
    const twin = this.options.twins.get(this.options.householdId, this.options.vehicle);
    const current = signal ? twin?.state.get(signal.property) : undefined;
    if (!signal || !current) return undefined;
    const value = signal.toVss ? signal.toVss(current.value) : (current.value as SignalValue);
    return { value: toWire(value), ts: current.ts };
  }

  async write(path: string, value: SignalValue): Promise<VissError | null> {
    const lockRefusal = lockSetRefusal(path);
    if (lockRefusal) return vissErrors.refused(lockRefusal);
    const command = commandFor(path, value);
    if (!command) return vissErrors.refused(`${path} cannot be set to ${JSON.stringify(value)} remotely`);
    try {
      await this.options.commands.dispatch({
        householdId: this.options.householdId,
        thing: this.options.vehicle,
        action: command.action,
        input: command.input,
        issuedBy: this.options.issuedBy,
        principal: this.options.principal,
        via: 'viss',
      });
      return null;
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      if (error.status === 404) return vissErrors.unknownPath(path);
      if (error.status === 400) return { number: 400, reason: 'invalid_data', description: error.message };
      return vissErrors.refused(error.message);
    }
  }

  watch(listener: (path: string) => void): () => void {
    const { householdId, vehicle } = this.options;
    return this.options.bus.subscribe((event) => {
      if (event.type !== 'state' || event.householdId !== householdId || event.thing !== vehicle) return;
      const twin = this.options.twins.get(householdId, vehicle);
      const path = twin?.thing.properties[event.property]?.binding;
      if (path) listener(path);
    });
  }
}
