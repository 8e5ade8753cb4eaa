import type { Clock } from '../core/clock.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
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
 * Who did what, through which interface, to which thing, with what result. Each line is written
 * straight to the store in arrival order (not through the batched history writer), so a refusal
 * is on record even if the hub stops a moment later.
 */
export class AuditTrail {
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(private readonly options: { store: Store; clock: Clock; log: Logger }) {}

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
    this.lastWrite = this.lastWrite
      .then(() => this.options.store.appendAudit(line))
      .catch((error: unknown) => this.options.log.error('could not write an audit line', { error, line }));
  }

  /** Waits until every line recorded so far is stored. */
  async flush(): Promise<void> {
    await this.lastWrite;
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    return this.options.store.listAudit(query);
  }
}
