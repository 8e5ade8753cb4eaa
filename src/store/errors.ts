/**
 * SQLite's codes for a row it will never take: a constraint it breaks, a value of the wrong type,
 * too large, or a parameter out of range. better-sqlite3 raises them with `code` set (extended
 * codes such as SQLITE_CONSTRAINT_NOTNULL included), and the writer thread passes it on
 * (SqliteWriteError).
 */
const SQLITE_REFUSALS = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)(_|$)/;

/**
 * PostgreSQL's SQLSTATE classes for the same: 22 data exception (a value out of range, a NUL in
 * text, bad JSON), 23 integrity constraint violation, 54 program limit exceeded (a row or an
 * array too large).
 */
const POSTGRES_REFUSALS = /^(22|23|54)[0-9A-Z]{3}$/;

/**
 * Whether a write failed because the store refused its data: written again, it fails again, at
 * any time. Anything else (the server down or restarting, a lost connection, SQLite busy with
 * another connection's lock, a full disk, an I/O error, the writer thread gone) passes, and the
 * same write can succeed later. An error without a code is one of those: connection errors from
 * pg and node carry none, or one that is not an SQLSTATE (ECONNREFUSED).
 */
export function isRefusedByStore(error: unknown): boolean {
  if (isUnstorableValue(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return SQLITE_REFUSALS.test(code) || POSTGRES_REFUSALS.test(code);
}

/**
 * A value no store can hold, whatever its state: JSON has no BigInt and no cycles (JSON.stringify
 * throws these TypeErrors, in either store, before anything is sent), and a structured clone
 * cannot copy a function or a symbol to the SQLite writer thread (DataCloneError). They carry no
 * code, and were taken for an unreachable store: retried at every flush until the backlog's cap.
 */
function isUnstorableValue(error: unknown): boolean {
  if (error instanceof TypeError) return /BigInt|circular structure/i.test(error.message);
  return (error as { name?: unknown } | null)?.name === 'DataCloneError';
}
