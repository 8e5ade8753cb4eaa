import type { Store } from '../../store/store.ts';

/**
 * The last OCPP transaction id the hub handed out, kept for the hub as a whole rather than with
 * each charge point: a charge point removed takes its stored ids with it, and a hub restarted
 * after that (its clock set back or not) went on from the ids of the charge points left, handing
 * out again ids the removed one had had. Registered again, that charge point still sends the late
 * StopTransaction and MeterValues of its old transactions, which then land on a new one.
 */
export interface TransactionIdMark {
  /** The last id stored; 0 when none was. Read once, at start. */
  read(): Promise<number>;
  /** Stores the last id handed out; resolves once it is stored. */
  write(last: number): Promise<void>;
}

/**
 * Who owns the one row the mark is kept in. It is kept beside the timers, as other small records
 * that must outlive a restart are (presence's report times): it is never due, and only this reads it.
 */
const OWNER = 'ocpp-transaction-ids';

/** The mark kept in the store's timers table, under the hub's first household (every hub has it). */
export function storedTransactionIdMark(
  store: Pick<Store, 'saveTimer' | 'listTimers'>,
  householdId: string,
): TransactionIdMark {
  return {
    async read() {
      const ids = (await store.listTimers(OWNER)).map((row) => row.payload.lastTransactionId);
      return Math.max(0, ...ids.filter((id): id is number => Number.isSafeInteger(id)));
    },
    write(last) {
      return store.saveTimer({ id: OWNER, householdId, owner: OWNER, due: 0, payload: { lastTransactionId: last } });
    },
  };
}
