import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { GroupCommit } from '../store/group-commit.ts';
import type { AuditActor, AuditQuery, AuditRecord, Store } from '../store/store.ts';
import { passIdOf } from './permissions.ts';
import type { Principal } from './tokens.ts';

/** The interfaces a request can come through, as the audit trail names them. */
export type AuditInterface = 'http' | 'stream' | 'mqtt' | 'owntracks' | 'viss' | 'ocpp' | 'automation' | 'internal';

export type AuditEntry = Omit<AuditRecord, 'id' | 'ts' | 'thing' | 'action' | 'reason' | 'commandId'> &
  Partial<Pick<AuditRecord, 'thing' | 'action' | 'reason' | 'commandId'>>;

/** How the audit trail names whoever holds a token: the user, the guest pass, or the token itself. */
export function actorOf(principal: Principal): AuditActor {
  const passId = passIdOf(principal);
  if (passId !== null) return { kind: 'pass', id: passId, name: principal.name };
  if (principal.userId) return { kind: 'user', id: principal.userId, name: principal.name };
  return { kind: 'token', id: principal.tokenId, name: principal.name };
}

/**
 * The longest an audit line waits before its transaction starts. Lines are group-committed in
 * arrival order (a line per command would otherwise cost a commit each, several times the line
 * itself), but not through the history writer's longer batches: a refusal is on record within
 * this bound (plus the write) even if the hub stops a moment later.
 */
export const AUDIT_WRITE_WINDOW_MS = 50;

/** Who did what, through which interface, to which thing, with what result. */
export class AuditTrail {
  private readonly writes: GroupCommit<AuditRecord>;

  constructor(private readonly options: { store: Store; clock: Clock; log: Logger }) {
    this.writes = new GroupCommit<AuditRecord>({
      clock: options.clock,
      writeBatch: (lines) => options.store.appendAuditBatch(lines),
      writeOne: (line) => options.store.appendAudit(line),
      onError: (error, line) => options.log.error('could not write an audit line', { error, line }),
    });
  }

  record(entry: AuditEntry): void {
    const now = this.options.clock.now();
    const line: AuditRecord = {
      id: newId(now, 'aud_'),
      ts: now,
      thing: null,
      action: null,
      reason: null,
      commandId: null,
      ...entry,
    };
    this.writes.write(line.id, line, AUDIT_WRITE_WINDOW_MS);
  }

  /** Waits until every line recorded so far is stored. */
  async flush(): Promise<void> {
    await this.writes.flush();
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    return this.options.store.listAudit(query);
  }
}
