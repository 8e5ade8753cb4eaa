import { useEffect } from 'react';
import type { Thing } from '../api/types.ts';
import { useSession } from './context.ts';

/** Said on a control while the hub is asked what this person may do with a thing new to the page. */
const CHECKING = 'checking what you may do with it…';

/**
 * What this person may run on a thing, as the hub said (GET /api/session): a function from an
 * action's name to why they may not, or null when they may. The hub decides; nothing of its rules
 * is repeated here. A thing the answer does not cover yet (it appeared since) asks the hub again.
 */
export function useMayRun(thing: Thing): (action: string | undefined) => string | null {
  const { me, refreshMe } = useSession();
  const answers = me?.actions;
  const known = !answers || Object.hasOwn(answers, thing.id);
  useEffect(() => {
    if (!known) refreshMe();
  }, [known, refreshMe]);
  return (action) => {
    if (!answers || action === undefined) return null;
    const answer = answers[thing.id]?.[action];
    if (answer === undefined) return CHECKING;
    return answer === true ? null : answer;
  };
}

/** A refusal as the dashboard words it, next to the control and in its tooltip. */
export const refusedWords = (why: string) => `Not available to you: ${why}`;

/**
 * A control's `disabled` and tooltip: out of use when this person may not run its action (`refused`,
 * the hub's reason, said in the tooltip) or for a reason of the control's own (`otherwise`: the
 * device is offline, the action is missing).
 */
export function usable(refused: string | null, otherwise = false): { disabled: boolean; title?: string } {
  return refused === null ? { disabled: otherwise } : { disabled: true, title: refusedWords(refused) };
}
