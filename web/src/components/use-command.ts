import { useState } from 'react';
import type { Command, Thing } from '../api/types.ts';
import { useLive, useSession } from '../live/context.ts';
import { isFinal } from '../live/live-hub.ts';

export interface CommandState {
  /** True from the click until the device confirms, fails or the command expires. */
  pending: boolean;
  /** Why the last command did not happen, in words; null when it did or is still under way. */
  error: string | null;
  command: Command | undefined;
  run(action: string, input?: Record<string, unknown>): void;
}

/** Sends a thing's actions and follows the latest one to its end. */
export function useCommand(thing: Thing): CommandState {
  const { live } = useSession();
  const { commands } = useLive();
  const [commandId, setCommandId] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);
  const command = commandId ? commands.get(commandId) : undefined;

  const run = (action: string, input: Record<string, unknown> = {}) => {
    setSending(true);
    setSendError(null);
    live
      .act(thing.id, action, input)
      .then((id) => setCommandId(id))
      .catch((error: unknown) => {
        setCommandId(null);
        setSendError(error instanceof Error ? error.message : String(error));
      })
      .finally(() => setSending(false));
  };

  return {
    pending: sending || (command !== undefined && !isFinal(command.status)),
    error: sendError ?? commandError(thing, command),
    command,
    run,
  };
}

function commandError(thing: Thing, command: Command | undefined): string | null {
  if (command?.status === 'failed') return command.error ?? `${thing.name} reported a failure`;
  if (command?.status === 'expired') return command.error ?? `${thing.name} did not confirm in time`;
  return null;
}
