import Database from 'better-sqlite3';

/** A retained message as the broker keeps it: its topic, payload and QoS. */
export interface RetainedMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  /**
   * For a discovery config, the device account that published it (see EmbeddedBroker.announcer),
   * or '' for the hub's trusted side; absent when not known (kept before it was).
   */
  account?: string;
}

/** How often changed retained messages are written (a crash loses at most this much of them). */
export const RETAINED_FLUSH_MS = 1000;

/**
 * The embedded broker's retained messages, kept in a SQLite file of their own beside the hub's
 * data, as Mosquitto keeps them in mosquitto.db. Without it a restart of the hub was a restart of
 * the broker with none of them: devices that announced themselves once by a retained Home
 * Assistant discovery config (as many do, and as `mosquitto_pub -r` does) were forgotten, and
 * their reports ignored, until they announced themselves again.
 *
 * Changes are held and written together every RETAINED_FLUSH_MS, the latest per topic: devices
 * that retain every state report (most Zigbee2MQTT setups) would otherwise cost a write each.
 * A file of its own, not the hub's store: this is the broker's state, whatever store the hub
 * uses (PostgreSQL too), and it is only ever read at start-up.
 */
export class RetainedStore {
  private readonly db: Database.Database;
  /** Topics changed since the last write: the message, or null for one cleared. */
  private pending = new Map<string, RetainedMessage | null>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly put: Database.Statement;
  private readonly clear: Database.Statement;

  constructor(
    file: string,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.db = new Database(file);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, account TEXT)',
      );
      // A file written before the account was kept: its messages load without one.
      const columns = this.db.prepare('PRAGMA table_info(retained)').all() as Array<{ name: string }>;
      if (!columns.some((column) => column.name === 'account'))
        this.db.exec('ALTER TABLE retained ADD COLUMN account TEXT');
      this.put = this.db.prepare(
        'INSERT INTO retained (topic, payload, qos, account) VALUES (?, ?, ?, ?) ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos, account = excluded.account',
      );
      this.clear = this.db.prepare('DELETE FROM retained WHERE topic = ?');
    } catch (error) {
      // Not a SQLite file, say: the caller hears of it, and no handle is left open.
      this.db.close();
      throw error;
    }
  }

  /** Every retained message kept, for the broker to start with. */
  load(): RetainedMessage[] {
    const rows = this.db.prepare('SELECT topic, payload, qos, account FROM retained ORDER BY topic').all() as Array<{
      topic: string;
      payload: Buffer;
      qos: number;
      account: string | null;
    }>;
    return rows.map((row) => ({
      topic: row.topic,
      payload: row.payload,
      qos: row.qos === 1 || row.qos === 2 ? row.qos : 0,
      ...(row.account === null ? {} : { account: row.account }),
    }));
  }

  /** Notes a retained message (an empty payload clears the topic, as MQTT says), written soon. */
  record(topic: string, payload: Buffer, qos: number, account?: string): void {
    if (this.closed) return;
    // A copy: the broker's buffer may be a view of a socket chunk that is reused.
    this.pending.set(
      topic,
      payload.length === 0
        ? null
        : {
            topic,
            payload: Buffer.from(payload),
            qos: qos === 1 || qos === 2 ? qos : 0,
            ...(account === undefined ? {} : { account }),
          },
    );
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), RETAINED_FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes what changed, now, in one transaction. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0 || !this.db.open) return;
    const changes = this.pending;
    this.pending = new Map();
    try {
      this.db.transaction(() => {
        for (const [topic, message] of changes) {
          if (message) this.put.run(topic, message.payload, message.qos, message.account ?? null);
          else this.clear.run(topic);
        }
      })();
    } catch (error) {
      // A full disk, say: the broker goes on with what it holds in memory; the next change retries.
      for (const [topic, message] of changes) if (!this.pending.has(topic)) this.pending.set(topic, message);
      this.onError(error);
    }
  }

  /** Writes what is left and closes the file. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }
}
