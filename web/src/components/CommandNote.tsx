import type { Thing } from '../api/types.ts';
import { refusedWords } from '../live/may-run.ts';
import type { CommandState } from './use-command.ts';

/**
 * Says a command is under way or why it failed, or, for a control this person may not use
 * (`refused`, the hub's reason), why it is out of use. The live region is always in the page, so
 * screen readers announce the change when its text appears.
 */
export function CommandNote({ thing, state, refused }: { thing: Thing; state: CommandState; refused?: string | null }) {
  return (
    <div className="command-note" aria-live="polite">
      {state.pending ? (
        <span className="pending" role="status">
          Waiting for {thing.name} to confirm…
        </span>
      ) : state.error ? (
        <span className="error" role="alert">
          {actionWords(state.action ?? undefined)} failed: {state.error}
        </span>
      ) : refused ? (
        <span className="refused">{refusedWords(refused)}</span>
      ) : null}
    </div>
  );
}

function actionWords(action: string | undefined): string {
  if (!action) return 'The command';
  const words = action.replace(/[._]/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}
