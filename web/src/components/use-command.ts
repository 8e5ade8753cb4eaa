import { useState } from 'react';
import type { Command, Thing } from '../api/types.ts';
import { useLive, useSession } from '../live/context.ts';
import { isFinal } from '../live/live-hub.ts';
import { useMayRun } from '../live/may-run.ts';

export interface CommandState {
  /** True from the click until the device confirms, fails or the command expires. */
  pending: boolean;
  /** Why the last command did not happen, in words; null when it did or is still under way. */
  error: string | null;
  command: Command | undefined;
  /** The last action asked for, even when the hub refused it before it became a command. */
  action: string | null;
  run(action: string, input?: Record<string, unknown>): void;
  /** Why this person may not run an action on the thing, as the hub says; null when they may. */
  refusal(action: string | undefined): string | null;
}

/** Sends a thing's actions and follows the latest one to its end. */
export function useCommand(thing: Thing): CommandState {
  const { live } = useSession();
  const { commands } = useLive();
  const [commandId, setCommandId] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);
  const [action, setAction] = useState<string | null>(null);
  const command = commandId ? commands.get(commandId) : undefined;
  const refusal = useMayRun(thing);

  const run = (name: string, input: Record<string, unknown> = {}) => {
    setSending(true);
    setSendError(null);
    setAction(name);
    live
      .act(thing.id, name, input)
      .then((id) => setCommandId(id))
      .catch((error: unknown) => {
        // A refusal (403: not allowed for this role or pass) or a bad input: the hub's own words.
        setCommandId(null);
        setSendError(error instanceof Error ? error.message : String(error));
      })
      .finally(() => setSending(false));
  };

  return {
    pending: sending || (command !== undefined && !isFinal(command.status)),
    error: sendError ?? commandError(thing, command),
    command,
    action: command?.action ?? action,
    run,
    refusal,
  };
}

function commandError(thing: Thing, command: Command | undefined): string | null {
  if (command?.status === 'failed') return command.error ?? `${thing.name} reported a failure`;
  if (command?.status === 'expired') return command.error ?? `${thing.name} did not confirm in time`;
  return null;
}
