import { PLAIN_DECIMAL } from '../../core/decimal.ts';
import { badRequest, conflict } from '../../core/errors.ts';
import type { Command } from '../../core/events.ts';
import { parseIsoTime } from '../../core/iso-time.ts';
import { KeyedSerial } from '../../core/serial.ts';
import type { DataSchema } from '../../model/schema.ts';
import type { Thing } from '../../model/thing.ts';
import { vocabularyActions, vocabularyProperties } from '../../model/thing.ts';
import { CredentialCheck, hashPassword, parseBasicAuth } from '../../people/credentials.ts';
import type { Adapter, AdapterContext } from '../adapter.ts';
import { shownText } from '../mqtt/discovery.ts';
import { ChargerClock } from './charger-clock.ts';
import { OcppCallError, OcppRpc, type Payload } from './rpc.ts';
import type { TransactionIdMark } from './transaction-ids.ts';

/**
 * Triad as an OCPP 1.6J central system. Each registered charge point is a `charger` thing; its
 * BootNotification, StatusNotification, Start/StopTransaction and MeterValues become reports on
 * that thing, and the thing's start, stop and set_current_limit actions become
 * RemoteStartTransaction, RemoteStopTransaction and SetChargingProfile. One connector per charge
 * point (connector 1), which is what home chargers have. On a station with more sockets, the others
 * are held at 0 A (the fuse limit is shared out to connector 1 alone): their transactions are
 * answered (so the station does not ask again) and their status, readings and transactions are
 * logged and change nothing of connector 1's. Connector 0, the whole station, is read as the spec has it.
 */

export const OCPP_ADAPTER = 'ocpp';

/** Identities a charge point may have in its URL: OCPP's CiString plus what vendors use in practice. */
export const CHARGE_POINT_ID = /^[A-Za-z0-9._:+-]{1,48}$/;

/** The Basic-auth security profile (OCPP 1.6 security whitepaper, profile 1): 16 to 40 characters. */
const PASSWORD = /^[\x21-\x7e]{16,40}$/;

export const CHARGER_PROPERTIES = [
  'charging.connected',
  'charging.charging',
  'charging.power',
  'charging.current_limit',
  'charging.energy',
  'sensor.energy',
];

/** The OCPP connector status, kept as it is so a dashboard can show "SuspendedEV" and the like. */
const STATUS_SCHEMA: DataSchema = {
  type: 'string',
  enum: [
    'Available',
    'Preparing',
    'Charging',
    'SuspendedEVSE',
    'SuspendedEV',
    'Finishing',
    'Reserved',
    'Unavailable',
    'Faulted',
  ],
};

/** One sampled value of a MeterValue, as the schema lets it be (every field a string). */
type SampledValue = Record<string, string | undefined>;

/** The measurand a sampled value without one is (OCPP 1.6 section 7.31). */
const ENERGY_REGISTER = 'Energy.Active.Import.Register';
const POWER = 'Power.Active.Import';

/**
 * One MeterValue's reading of a measurand, in kilo-units (kWh, kW), null when it has none. A
 * sample without a phase is the total. Per-phase samples are parts of it: left aside when the
 * total is there too, added up when they are all the charge point sends (each phase once; the
 * neutral carries nothing of its own). Wh or W unless the sample says kWh or kW.
 */
function totalOf(samples: SampledValue[], measurand: string): number | null {
  let total: number | null = null;
  const phases = new Map<string, number>();
  for (const sample of samples) {
    // Only a reading as OCPP 1.6 writes it (SampledValue: a "Raw" plain decimal, no padding):
    // Number() took "" for 0 (the session then counted from zero again) and "0x3000" for 12288. A
    // value that is not one (SignedData, a blank, hex) is passed over; refusing the MeterValues
    // would only have the charge point send it again.
    if (!PLAIN_DECIMAL.test(sample.value ?? '') || (sample.measurand ?? ENERGY_REGISTER) !== measurand) continue;
    const value = Number(sample.value);
    const kilo = sample.unit?.startsWith('k') ? value : value / 1000;
    if (!sample.phase) total = kilo;
    // L1 and L1-N name the same phase (line to neutral); line to line (L1-L2) is no part of a sum.
    else if (/^L[123](-N)?$/.test(sample.phase)) phases.set(sample.phase.slice(0, 2), kilo);
  }
  if (total !== null || phases.size === 0) return total;
  return [...phases.values()].reduce((sum, kilo) => sum + kilo, 0);
}

/** Statuses in which a car is plugged in (OCPP 1.6 section 4.9). */
const PLUGGED = new Set(['Preparing', 'Charging', 'SuspendedEVSE', 'SuspendedEV', 'Finishing']);

/**
 * How long an unplug that came before its transaction's StopTransaction waits for it (see
 * StatusNotification); a charge point that never sends it is taken as unplugged after this.
 */
export const UNPLUG_WAIT_MS = 60_000;

export interface OcppMeta {
  chargePointId: string;
  passwordHash: string | null;
  /** What the charge point said about itself in its last BootNotification. */
  vendor?: string;
  model?: string;
  firmware?: string;
  serial?: string;
  /**
   * The running transaction, kept with the thing: a restarted hub must still be able to stop it
   * and limit its current, and the charge point will not tell its id again until its MeterValues.
   */
  transaction?: Transaction;
  /**
   * The transactions that are not the running one (ended ones, another socket's), newest last: a
   * restarted hub took their late MeterValues for a transaction to adopt as connector 1's running one.
   */
  otherTransactions?: number[];
  /**
   * The last transaction id the hub handed out, to this or any charge point: ids follow on from the
   * highest one stored, not from the clock, which a Raspberry Pi without a real-time clock sets back
   * at boot (and a repeated id lets an old transaction's late stop end the new one).
   */
  lastTransactionId?: number;
}

/** The highest transaction id OCPP 1.6 can carry (its transactionId is a signed 32-bit integer). */
const LAST_TRANSACTION_ID = 2 ** 31 - 1;

/** The transaction ids a charge point's stored meta names. */
function storedTransactionIds(meta: OcppMeta): number[] {
  const others = Array.isArray(meta.otherTransactions) ? meta.otherTransactions : [];
  const ids = [meta.lastTransactionId, meta.transaction?.id, ...others];
  return ids.filter((id): id is number => Number.isSafeInteger(id) && (id as number) > 0);
}

/** What a BootNotification tells about the charge point, by the name it is kept under. */
const BOOT_FIELDS = [
  ['vendor', 'chargePointVendor'],
  ['model', 'chargePointModel'],
  ['firmware', 'firmwareVersion'],
  ['serial', 'chargePointSerialNumber'],
] as const;

/** A socket as the central system needs it: text out, close; the route feeds text in. */
export interface OcppSocket {
  send(text: string): void;
  close(code: number, reason: string): void;
}

interface Session {
  chargePointId: string;
  thing: Thing;
  rpc: OcppRpc;
  socket: OcppSocket;
}

/**
 * A charge point's running transaction, so RemoteStop and profiles can name it and its energy can
 * be told from the meter's start. Kept per charge point, not per connection: a charge point that
 * reconnects goes on with the same transaction.
 */
interface Transaction {
  id: number;
  /** The meter at its start (Wh); null for a transaction taken up from its MeterValues. */
  meterStartWh: number | null;
}

/**
 * How many transactions that are not connector 1's running one (ended, or on another socket) are
 * remembered per charge point, to pass over their late messages: a few, since the charge point
 * sends what it queued of them soon after.
 */
const OTHER_TRANSACTIONS_KEPT = 8;

/** An unplug held back until its transaction's StopTransaction: when it happened, and its timer. */
interface HeldUnplug {
  householdId: string;
  thing: string;
  ts: number | undefined;
  cancel: () => void;
}

export interface OcppCentralSystemOptions {
  /** Heartbeat interval told to charge points in the BootNotification answer (seconds). */
  heartbeatSeconds?: number;
  /** How long a charge point has to answer a CALL. */
  callTimeoutMs?: number;
  /** Carries out the `plan` action (the planner lives in the energy service, not on the wire). */
  planCharge?: (householdId: string, charger: string, input: Record<string, unknown>) => Promise<void>;
  /**
   * Where the last transaction id handed out is kept for the whole hub. Without it, ids follow on
   * from the registered charge points' stored ones only, which forget a removed charge point's.
   */
  transactionIds?: TransactionIdMark;
}

/** The turn the hub-wide transaction id mark is written in; no charge point id has a space. */
const TRANSACTION_ID_MARK = 'the last transaction id';

export class OcppCentralSystem implements Adapter {
  readonly name = OCPP_ADAPTER;
  private ctx: AdapterContext | null = null;
  /** Charge point id → its thing, across households: the URL names no household. */
  private readonly registry = new Map<string, { householdId: string; thing: string }>();
  private readonly sessions = new Map<string, Session>();
  private readonly transactions = new Map<string, Transaction>();
  private readonly unplugs = new Map<string, HeldUnplug>();
  /** Transactions of each charge point that are not connector 1's running one, newest last. */
  private readonly otherTransactions = new Map<string, number[]>();
  /** Other connectors whose status has been warned of, by charge point (see StatusNotification). */
  private readonly otherConnectors = new Set<string>();
  /** Each charge point's clock, to put its timestamps on the hub's time line. */
  private readonly clocks = new Map<string, ChargerClock>();
  private readonly credentials = new CredentialCheck((id) => this.metaOf(id)?.passwordHash ?? undefined);
  /** The last transaction id handed out, across charge points (see OcppMeta.lastTransactionId). */
  private lastTransaction = 0;
  /**
   * Registrations, one at a time on the hub: a charge point id is unique across households (its
   * URL names none), and two registrations of one id at once both passed the check, each answered
   * 201, and only the one saved last could connect.
   */
  private readonly registrations = new KeyedSerial();
  /** Changes to a charge point's stored meta, one at a time per charge point: each builds on the last. */
  private readonly metaWrites = new KeyedSerial();

  constructor(private readonly options: OcppCentralSystemOptions = {}) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    const stored = (await this.options.transactionIds?.read()) ?? 0;
    this.lastTransaction = Math.max(this.lastTransaction, stored);
  }

  async stop(): Promise<void> {
    // An unplug still waiting for its StopTransaction is reported now, and its transaction taken
    // to have ended with it (as when the wait runs out): nothing holds the unplug across a restart.
    for (const chargePointId of [...this.unplugs.keys()]) await this.endWithUnplug(chargePointId);
    for (const session of this.sessions.values()) {
      session.rpc.close();
      session.socket.close(1001, 'the hub is stopping');
    }
    this.sessions.clear();
  }

  /** Makes a charge point known (from the things already stored, at start-up). */
  adopt(thing: Thing): void {
    const meta = ocppMeta(thing);
    if (!meta) return;
    this.registry.set(meta.chargePointId, { householdId: thing.householdId, thing: thing.id });
    // A transaction that ran when the hub stopped runs on: the charge point goes on charging.
    if (typeof meta.transaction?.id === 'number') this.transactions.set(meta.chargePointId, { ...meta.transaction });
    const others = Array.isArray(meta.otherTransactions)
      ? meta.otherTransactions.filter((id) => typeof id === 'number')
      : [];
    if (others.length > 0) this.otherTransactions.set(meta.chargePointId, others.slice(-OTHER_TRANSACTIONS_KEPT));
    this.lastTransaction = Math.max(this.lastTransaction, ...storedTransactionIds(meta));
  }

  /**
   * A transaction id never handed out before, as far as the store tells: the one after the last.
   * Taken at once, so two StartTransactions in flight never share one; stored with the charge
   * point's meta (keepTransaction) and as the hub's mark (keepLastTransactionId) before the charge
   * point hears it.
   */
  private newTransactionId(): number {
    // Only after two billion transactions: the oldest ids are long gone from every charge point.
    this.lastTransaction = this.lastTransaction >= LAST_TRANSACTION_ID ? 1 : this.lastTransaction + 1;
    return this.lastTransaction;
  }

  /**
   * Registers a charge point so it may connect. Without a password the charge point connects
   * unauthenticated (security profile 0, for a charger on a trusted network); with one it must
   * present it with HTTP Basic. Answers the thing and the password once.
   */
  async register(input: {
    householdId: string;
    chargePointId: string;
    name: string;
    thingId: string;
    password?: string;
  }): Promise<Thing> {
    const ctx = this.require();
    if (!CHARGE_POINT_ID.test(input.chargePointId)) {
      throw badRequest('chargePointId must be 1 to 48 letters, digits or . _ : + -');
    }
    if (input.password !== undefined && !PASSWORD.test(input.password)) {
      throw badRequest('password must be 16 to 40 printable ASCII characters (OCPP security profile 1)');
    }
    // Hashed before taking a turn, so registrations wait for one another's saves, not their hashes.
    const passwordHash = input.password === undefined ? null : await hashPassword(input.password);
    return this.registrations.run('charge points', async () => {
      if (this.registry.has(input.chargePointId))
        throw conflict(`charge point ${input.chargePointId} is already registered`);
      if (ctx.getThing(input.householdId, input.thingId)) throw conflict(`a thing ${input.thingId} already exists`);
      const meta: OcppMeta = { chargePointId: input.chargePointId, passwordHash };
      const thing = await ctx.upsertThing({
        id: input.thingId,
        householdId: input.householdId,
        kind: 'charger',
        name: input.name,
        adapter: OCPP_ADAPTER,
        properties: { ...vocabularyProperties(CHARGER_PROPERTIES), 'charging.status': { schema: STATUS_SCHEMA } },
        actions: vocabularyActions('charging', ['start', 'stop', 'set_current_limit', 'plan']),
        meta: { ocpp: meta },
      });
      this.adopt(thing);
      return thing;
    });
  }

  /** Forgets a charge point and drops its connection. */
  async unregister(householdId: string, thingId: string): Promise<void> {
    const ctx = this.require();
    const thing = ctx.getThing(householdId, thingId);
    const meta = thing ? ocppMeta(thing) : undefined;
    if (!meta) return;
    // Its stored ids go with it: the hub's mark keeps the last one (stored before this version
    // kept a mark, it may be in this charge point's meta alone).
    await this.keepLastTransactionId();
    // After any meta write under way, so that write cannot put the removed thing back.
    await this.metaWrites.run(meta.chargePointId, async () => {
      this.registry.delete(meta.chargePointId);
      this.transactions.delete(meta.chargePointId);
      this.otherTransactions.delete(meta.chargePointId);
      this.clocks.delete(meta.chargePointId);
      this.unplugs.get(meta.chargePointId)?.cancel();
      this.unplugs.delete(meta.chargePointId);
      this.credentials.forget(meta.chargePointId);
      const session = this.sessions.get(meta.chargePointId);
      session?.socket.close(1008, 'the charge point was removed');
      await ctx.removeThing(householdId, thingId);
    });
  }

  /**
   * Decides, before the WebSocket upgrade, whether a charge point may connect: it must be
   * registered, and present its password when it has one. Null when it may; otherwise the reason,
   * with the HTTP status to refuse the upgrade with.
   */
  async admit(
    chargePointId: string,
    authorization: string | undefined,
  ): Promise<{ status: number; reason: string } | null> {
    const entry = this.registry.get(chargePointId);
    const meta = this.metaOf(chargePointId);
    if (!entry || !meta) {
      // The same answer as a wrong password when credentials were offered: no hint who exists.
      return authorization
        ? { status: 401, reason: 'wrong charge point id or password' }
        : { status: 404, reason: `unknown charge point ${chargePointId}` };
    }
    if (meta.passwordHash === null) return null;
    const basic = parseBasicAuth(authorization);
    if (!basic || basic.username !== chargePointId || !(await this.credentials.check(basic.username, basic.password))) {
      return { status: 401, reason: 'wrong charge point id or password' };
    }
    return null;
  }

  /** Takes over an admitted connection; returns what to call with each text frame and on close. */
  connect(chargePointId: string, socket: OcppSocket): { receive(text: string): void; closed(): void } {
    const ctx = this.require();
    const entry = this.registry.get(chargePointId);
    const thing = entry ? ctx.getThing(entry.householdId, entry.thing) : undefined;
    if (!entry || !thing) {
      socket.close(1008, 'unknown charge point');
      return { receive: () => {}, closed: () => {} };
    }
    // A charge point that reconnects replaces its old socket (the old one is often half-dead).
    const previous = this.sessions.get(chargePointId);
    if (previous) {
      previous.rpc.close();
      previous.socket.close(1000, 'replaced by a new connection');
    }
    const log = ctx.log;
    const session: Session = {
      chargePointId,
      thing,
      socket,
      rpc: new OcppRpc({
        clock: ctx.clock,
        send: (text) => socket.send(text),
        handle: (action, payload) => this.handle(session, action, payload),
        timeoutMs: this.options.callTimeoutMs,
        onRefused: (reason) => log.info('OCPP frame refused', { chargePoint: chargePointId, reason }),
      }),
    };
    this.sessions.set(chargePointId, session);
    ctx.setAvailability(thing.householdId, thing.id, true);
    log.info('charge point connected', { chargePoint: chargePointId, thing: thing.id });
    return {
      receive: (text) => session.rpc.receive(text),
      closed: () => {
        session.rpc.close();
        if (this.sessions.get(chargePointId) !== session) return;
        this.sessions.delete(chargePointId);
        ctx.setAvailability(thing.householdId, thing.id, false);
        log.info('charge point disconnected', { chargePoint: chargePointId });
      },
    };
  }

  /** Whether the charge point behind a thing is connected now. */
  isConnected(thing: Thing): boolean {
    const meta = ocppMeta(thing);
    return meta !== undefined && this.sessions.has(meta.chargePointId);
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    if (command.action === 'plan') {
      // A plan needs no connection: the hub drives the charge point when its slots come.
      if (!this.options.planCharge) throw new Error('no charge planner is running');
      await this.options.planCharge(command.householdId, thing.id, command.input);
      return;
    }
    const session = this.sessionOf(thing);
    switch (command.action) {
      case 'start': {
        const answer = await session.rpc.call('RemoteStartTransaction', { connectorId: 1, idTag: 'triad' });
        if (answer.status !== 'Accepted') throw new Error(this.whyNotStarted(session));
        return;
      }
      case 'stop': {
        const transaction = this.transactions.get(session.chargePointId);
        if (!transaction) throw new Error('the charge point has no transaction to stop');
        const answer = await session.rpc.call('RemoteStopTransaction', { transactionId: transaction.id });
        if (answer.status !== 'Accepted') throw new Error('the charge point rejected the remote stop');
        return;
      }
      case 'set_current_limit': {
        const current = Number(command.input.current);
        await this.setCurrentLimit(session, current);
        return;
      }
      default:
        throw new Error(`OCPP charge points cannot ${command.action}`);
    }
  }

  /** ChangeAvailability for the whole charge point (connector 0); answers the charge point's status. */
  async changeAvailability(thing: Thing, operative: boolean): Promise<string> {
    const answer = await this.sessionOf(thing).rpc.call('ChangeAvailability', {
      connectorId: 0,
      type: operative ? 'Operative' : 'Inoperative',
    });
    return String(answer.status);
  }

  /** TriggerMessage: asks the charge point to send a message now (a fresh MeterValues, its status…). */
  async triggerMessage(thing: Thing, requestedMessage: string): Promise<string> {
    const answer = await this.sessionOf(thing).rpc.call('TriggerMessage', { requestedMessage, connectorId: 1 });
    return String(answer.status);
  }

  /**
   * Limits the current with SetChargingProfile: a TxProfile for the running transaction, or a
   * TxDefaultProfile that the next transaction starts with. 0 A pauses charging without ending the
   * session, so solar and smart charging keep one session across a cloud or an expensive hour.
   */
  private async setCurrentLimit(session: Session, current: number): Promise<void> {
    const limit = Math.round(current * 10) / 10;
    const transaction = this.transactions.get(session.chargePointId);
    const inTransaction = transaction !== undefined;
    const answer = await session.rpc.call('SetChargingProfile', {
      connectorId: 1,
      csChargingProfiles: {
        chargingProfileId: inTransaction ? 2 : 1,
        ...(inTransaction ? { transactionId: transaction.id } : {}),
        stackLevel: 0,
        chargingProfilePurpose: inTransaction ? 'TxProfile' : 'TxDefaultProfile',
        chargingProfileKind: 'Relative',
        chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit }] },
      },
    });
    if (answer.status !== 'Accepted')
      throw new Error(`the charge point answered ${String(answer.status)} to the charging profile`);
    // The charge point's acceptance is its own word that the limit is in force: that confirms the command.
    this.report(session, { 'charging.current_limit': limit });
  }

  /**
   * Holds another socket's transaction at 0 A: the household's fuse limit is shared out to
   * connector 1 alone, so a car on a second socket drew on top of it and a two-socket station
   * could take twice what the fuse allows. Said in the log as a warning, naming the socket.
   */
  private async holdOtherSocket(session: Session, connectorId: number, transactionId: number): Promise<void> {
    const log = this.require().log;
    const fields = { chargePoint: session.chargePointId, connectorId, transactionId };
    log.warn('a car on a socket other than 1 is held at 0 A: Triad keeps the fuse limit with socket 1 alone', fields);
    try {
      const answer = await session.rpc.call('SetChargingProfile', {
        connectorId,
        csChargingProfiles: {
          chargingProfileId: 100 + connectorId,
          transactionId,
          stackLevel: 0,
          chargingProfilePurpose: 'TxProfile',
          chargingProfileKind: 'Relative',
          chargingSchedule: { chargingRateUnit: 'A', chargingSchedulePeriod: [{ startPeriod: 0, limit: 0 }] },
        },
      });
      if (answer.status !== 'Accepted')
        log.error(
          'the charge point would not hold a socket other than 1 at 0 A: the site may draw over its fuse limit',
          {
            ...fields,
            status: answer.status,
          },
        );
    } catch (error) {
      log.error('a socket other than 1 could not be held at 0 A: the site may draw over its fuse limit', {
        ...fields,
        error,
      });
    }
  }

  private async handle(session: Session, action: string, payload: Payload): Promise<Payload> {
    const ctx = this.require();
    const now = new Date(ctx.clock.now()).toISOString();
    switch (action) {
      case 'BootNotification': {
        this.clockOf(session.chargePointId).booted();
        await this.noteBoot(session, payload);
        return { status: 'Accepted', currentTime: now, interval: this.options.heartbeatSeconds ?? 300 };
      }
      case 'Heartbeat':
        return { currentTime: now };
      case 'Authorize':
        // The household's own charger: every badge is welcome; the hub decides when to charge.
        return { idTagInfo: { status: 'Accepted' } };
      case 'StatusNotification': {
        const status = String(payload.status);
        if (payload.connectorId !== 0 && payload.connectorId !== 1) {
          // Triad's chargers have one connector: another's status would pass for the car's plug.
          // Said once per connector as a warning: a station with two sockets sends the other's
          // status at every change, which would fill the log.
          const key = `${session.chargePointId}\u0000${String(payload.connectorId)}`;
          const first = !this.otherConnectors.has(key);
          this.otherConnectors.add(key);
          ctx.log[first ? 'warn' : 'debug'](
            'StatusNotification for a connector other than 1 ignored: Triad reads one connector',
            {
              chargePoint: session.chargePointId,
              connectorId: payload.connectorId,
              status,
            },
          );
          return {};
        }
        if (payload.connectorId === 0) {
          // Connector 0 is the charge point as a whole: only its outages say anything about charging.
          if (status === 'Unavailable' || status === 'Faulted')
            this.report(session, { 'charging.status': status, 'charging.charging': false });
          return {};
        }
        const plugged = PLUGGED.has(status);
        const ts = this.timeOf(session, payload.timestamp);
        const held = this.unplugs.get(session.chargePointId);
        if (plugged && held) {
          // Plugged in again before the transaction ended: the plug never went, as far as anyone counts.
          held.cancel();
          this.unplugs.delete(session.chargePointId);
        }
        // A car unplugged while its transaction runs: the StopTransaction that follows (some charge
        // points send it after the status, and one back from an outage sends both late) carries
        // the meter's last reading, which belongs to the session the plug is ending.
        const waitForStop = !plugged && (held !== undefined || this.transactions.has(session.chargePointId));
        if (waitForStop && !held) this.holdUnplug(session, ts);
        this.report(
          session,
          {
            'charging.status': status,
            ...(waitForStop ? {} : { 'charging.connected': plugged }),
            'charging.charging': status === 'Charging',
            ...(status === 'Charging' ? {} : { 'charging.power': 0 }),
          },
          ts,
        );
        return {};
      }
      case 'StartTransaction': {
        const transactionId = this.newTransactionId();
        if (payload.connectorId !== 1) {
          // Another socket of the station (Triad reads connector 1): answered as OCPP asks, with an
          // id and an accepted badge, so its car charges as the station lets it and the station does
          // not send it again; its meter and transaction are no part of connector 1's session.
          ctx.log.info('StartTransaction on a connector other than 1 answered and not followed', {
            chargePoint: session.chargePointId,
            connectorId: payload.connectorId,
            transactionId,
          });
          this.rememberOther(session.chargePointId, transactionId);
          // Stored before the charge point hears the id, as connector 1's: a restarted hub must
          // still know its readings and its stop are not connector 1's.
          await this.keepNewTransaction(session.chargePointId);
          // Once the charge point has its id (after this answer), the socket is held at 0 A.
          setImmediate(() => void this.holdOtherSocket(session, Number(payload.connectorId), transactionId));
          return { idTagInfo: { status: 'Accepted' }, transactionId };
        }
        // One that still ran has ended without its StopTransaction (the charge point says so by starting anew).
        const previous = this.transactions.get(session.chargePointId);
        if (previous) this.rememberOther(session.chargePointId, previous.id);
        this.transactions.set(session.chargePointId, { id: transactionId, meterStartWh: Number(payload.meterStart) });
        // Stored before the charge point hears the id: a hub restarted after it must still know it.
        await this.keepNewTransaction(session.chargePointId);
        this.report(
          session,
          { 'charging.energy': 0, 'sensor.energy': Number(payload.meterStart) / 1000 },
          this.timeOf(session, payload.timestamp),
        );
        return { idTagInfo: { status: 'Accepted' }, transactionId };
      }
      case 'StopTransaction': {
        const transaction = this.transactions.get(session.chargePointId);
        if (!transaction || transaction.id !== payload.transactionId) {
          // Not the transaction that runs (a stale one, a replay, another socket's): its meterStop
          // would be read as the meter now, and the session count from it. Still confirmed, as OCPP
          // asks of every StopTransaction (refused, the charge point would only send it again).
          // One the hub knows (another socket's, one that ended) is no surprise, and not warned of.
          const known = this.otherTransactions.get(session.chargePointId)?.includes(payload.transactionId as number);
          ctx.log[known ? 'debug' : 'warn']('StopTransaction for a transaction that is not running ignored', {
            chargePoint: session.chargePointId,
            transactionId: payload.transactionId,
            running: transaction?.id ?? null,
          });
          return { idTagInfo: { status: 'Accepted' } };
        }
        // Said with its reason: a transaction the charge point lost to a power cut or a reboot ends
        // with PowerLoss or Reboot, not with the car, and someone asking why it stopped wants that.
        ctx.log.info('charge point ended its transaction', {
          chargePoint: session.chargePointId,
          transactionId: transaction.id,
          reason: payload.reason ?? 'Local',
        });
        if (Array.isArray(payload.transactionData)) this.meter(session, payload.transactionData);
        const meterStop = Number(payload.meterStop);
        const start = transaction.meterStartWh;
        this.report(
          session,
          {
            'sensor.energy': meterStop / 1000,
            ...(start !== null ? { 'charging.energy': Math.max(0, meterStop - start) / 1000 } : {}),
            'charging.charging': false,
            'charging.power': 0,
          },
          this.timeOf(session, payload.timestamp),
        );
        this.transactions.delete(session.chargePointId);
        this.rememberOther(session.chargePointId, transaction.id);
        this.releaseUnplug(session.chargePointId);
        await this.keepTransaction(session.chargePointId);
        return { idTagInfo: { status: 'Accepted' } };
      }
      case 'MeterValues': {
        const running = this.transactions.get(session.chargePointId);
        const { connectorId, transactionId } = payload;
        if (connectorId !== 0 && connectorId !== 1) {
          // Another socket's readings: its car's energy and power are not connector 1's.
          ctx.log.debug('MeterValues for a connector other than 1 ignored', {
            chargePoint: session.chargePointId,
            connectorId,
          });
          return {};
        }
        const known = this.otherTransactions.get(session.chargePointId) ?? [];
        if (
          typeof transactionId === 'number' &&
          ((running && running.id !== transactionId) || (!running && known.includes(transactionId)))
        ) {
          // Readings of another transaction (a stale or ended one, a second one) are not the
          // running session's energy and power, nor make an ended one run again. Confirmed all the
          // same: refused, the charge point would send them again. One the hub knows is no surprise.
          ctx.log[known.includes(transactionId) ? 'debug' : 'warn'](
            'MeterValues for a transaction that is not running ignored',
            {
              chargePoint: session.chargePointId,
              transactionId,
              running: running?.id ?? null,
            },
          );
          return {};
        }
        if (typeof transactionId === 'number' && !running) {
          // A transaction the hub did not know (one from before it kept them): adopt it so it can
          // still be stopped remotely. Its id was handed out before: the next ones follow on from it.
          this.transactions.set(session.chargePointId, { id: transactionId, meterStartWh: null });
          if (Number.isSafeInteger(transactionId) && transactionId > 0 && transactionId <= LAST_TRANSACTION_ID)
            this.lastTransaction = Math.max(this.lastTransaction, transactionId);
          await this.keepNewTransaction(session.chargePointId);
        }
        this.meter(session, payload.meterValue as unknown[]);
        return {};
      }
      case 'DataTransfer':
        return { status: 'UnknownVendorId' };
      default:
        throw new OcppCallError('NotSupported', `the central system does not handle ${action}`);
    }
  }

  /**
   * Keeps what the charge point tells about itself, cleaned as a device's announcement over MQTT
   * is (control and hidden characters out): it is shown on the dashboard and written to the log.
   * Vendor and model are the boot's own; firmware and serial stay when a boot leaves them out.
   */
  private async noteBoot(session: Session, payload: Payload): Promise<void> {
    await this.saveMeta(session.chargePointId, ({ vendor: _v, model: _m, ...meta }) => {
      const next: OcppMeta = { ...meta };
      for (const [key, field] of BOOT_FIELDS) {
        const text = shownText(payload[field]);
        if (text !== undefined) next[key] = text;
      }
      return next;
    });
  }

  /**
   * Stores a charge point's running transaction (or that none runs), the others it knows and the
   * last id handed out, as they stand when the write comes.
   */
  private keepTransaction(chargePointId: string): Promise<void> {
    return this.saveMeta(chargePointId, ({ transaction: _t, otherTransactions: _o, ...meta }) => {
      const transaction = this.transactions.get(chargePointId);
      const others = this.otherTransactions.get(chargePointId) ?? [];
      return {
        ...meta,
        lastTransactionId: this.lastTransaction,
        ...(transaction ? { transaction: { ...transaction } } : {}),
        ...(others.length > 0 ? { otherTransactions: [...others] } : {}),
      };
    });
  }

  /** Stores a transaction given a new id: with its charge point, and the id as the hub's mark. */
  private async keepNewTransaction(chargePointId: string): Promise<void> {
    await Promise.all([this.keepTransaction(chargePointId), this.keepLastTransactionId()]);
  }

  /**
   * Stores the last id handed out as the hub's mark, which outlives the charge point it went to.
   * Writes take turns and each stores the id as it stands then, so a slower write never puts an
   * older id over a newer one.
   */
  private keepLastTransactionId(): Promise<void> {
    const mark = this.options.transactionIds;
    if (!mark) return Promise.resolve();
    return this.metaWrites.run(TRANSACTION_ID_MARK, () => mark.write(this.lastTransaction));
  }

  /** Changes a charge point's stored meta, after the changes asked for before it. */
  private saveMeta(chargePointId: string, change: (meta: OcppMeta) => OcppMeta): Promise<void> {
    return this.metaWrites.run(chargePointId, async () => {
      const ctx = this.require();
      const entry = this.registry.get(chargePointId);
      const current = entry ? ctx.getThing(entry.householdId, entry.thing) : undefined;
      const meta = current ? ocppMeta(current) : undefined;
      if (!current || !meta) return;
      const { createdAt: _c, updatedAt: _u, ...rest } = current;
      const saved = await ctx.upsertThing({ ...rest, meta: { ...current.meta, ocpp: change(meta) } });
      const session = this.sessions.get(chargePointId);
      if (session) session.thing = saved;
    });
  }

  /** Reads the measurands Triad uses out of MeterValues' sampled values. */
  private meter(session: Session, meterValues: unknown[]): void {
    for (const entry of meterValues) {
      const { timestamp, sampledValue } = entry as { timestamp: string; sampledValue: SampledValue[] };
      const values: Record<string, unknown> = {};
      const kwh = totalOf(sampledValue, ENERGY_REGISTER);
      if (kwh !== null) {
        values['sensor.energy'] = kwh;
        const startWh = this.transactions.get(session.chargePointId)?.meterStartWh ?? null;
        if (startWh !== null) values['charging.energy'] = Math.max(0, kwh - startWh / 1000);
      }
      const kw = totalOf(sampledValue, POWER);
      if (kw !== null) values['charging.power'] = Math.max(0, kw);
      this.report(session, values, this.timeOf(session, timestamp));
    }
  }

  /** Remembers a transaction that is not connector 1's running one (see OTHER_TRANSACTIONS_KEPT). */
  private rememberOther(chargePointId: string, transactionId: number): void {
    const known = [...(this.otherTransactions.get(chargePointId) ?? []), transactionId];
    this.otherTransactions.set(chargePointId, known.slice(-OTHER_TRANSACTIONS_KEPT));
  }

  private clockOf(chargePointId: string): ChargerClock {
    let clock = this.clocks.get(chargePointId);
    if (!clock) {
      clock = new ChargerClock();
      this.clocks.set(chargePointId, clock);
    }
    return clock;
  }

  /** A charge point's own timestamp, when it gave a usable one, on the hub's time line (ChargerClock). */
  private timeOf(session: Session, value: unknown): number | undefined {
    const stamped = typeof value === 'string' ? parseIsoTime(value) : null;
    if (stamped === null) return undefined;
    return this.clockOf(session.chargePointId).place(stamped, this.require().clock.now());
  }

  private holdUnplug(session: Session, ts: number | undefined): void {
    const { chargePointId } = session;
    // No StopTransaction in time: the transaction is taken to have ended with the plug, so later
    // unplugs do not wait for it, and current limits and starts no longer name it.
    const cancel = this.require().clock.setTimeout(() => void this.endWithUnplug(chargePointId), UNPLUG_WAIT_MS);
    this.unplugs.set(chargePointId, {
      householdId: session.thing.householdId,
      thing: session.thing.id,
      ts,
      cancel,
    });
  }

  /** Reports a held unplug and takes its transaction as ended with it, here and in the store. */
  private async endWithUnplug(chargePointId: string): Promise<void> {
    this.releaseUnplug(chargePointId);
    const ended = this.transactions.get(chargePointId);
    if (ended) this.rememberOther(chargePointId, ended.id);
    this.transactions.delete(chargePointId);
    try {
      await this.keepTransaction(chargePointId);
    } catch (error) {
      this.ctx?.log.error('the end of a charge point transaction was not saved', { chargePoint: chargePointId, error });
    }
  }

  /** Reports a held unplug, at the time the charge point said it happened. */
  private releaseUnplug(chargePointId: string): void {
    const held = this.unplugs.get(chargePointId);
    if (!held) return;
    held.cancel();
    this.unplugs.delete(chargePointId);
    this.require().ingest([
      {
        householdId: held.householdId,
        thing: held.thing,
        property: 'charging.connected',
        value: false,
        ts: held.ts,
        source: OCPP_ADAPTER,
      },
    ]);
  }

  /**
   * Why a charge point would not start charging, in the words of someone standing at it: OCPP's
   * answer is a bare "Rejected", so the reason is read from what the charge point last reported.
   */
  private whyNotStarted(session: Session): string {
    const ctx = this.require();
    const { householdId, id, name } = session.thing;
    const value = (property: string) => ctx.getValue(householdId, id, property);
    const status = value('charging.status');
    if (status === 'Faulted') return `${name} reports a fault and cannot charge; check the charger`;
    if (status === 'Unavailable') return `${name} is switched to unavailable; make it available, then try again`;
    // The status before the plug: the plug's report may be held for a StopTransaction (see StatusNotification).
    const plugged = typeof status === 'string' ? PLUGGED.has(status) : value('charging.connected') === true;
    if (!plugged) return `no car is plugged into ${name}: plug the cable into the car, then start charging again`;
    if (this.transactions.has(session.chargePointId) || value('charging.charging') === true)
      return `${name} is already charging this car`;
    return `${name} did not start charging and gave no reason; check the charger and the car, then try again`;
  }

  private report(session: Session, values: Record<string, unknown>, ts?: number): void {
    const ctx = this.require();
    ctx.ingest(
      Object.entries(values).map(([property, value]) => ({
        householdId: session.thing.householdId,
        thing: session.thing.id,
        property,
        value,
        ts,
        source: OCPP_ADAPTER,
      })),
    );
  }

  private sessionOf(thing: Thing): Session {
    const meta = ocppMeta(thing);
    const session = meta ? this.sessions.get(meta.chargePointId) : undefined;
    // A 409 where a route asks (availability, trigger): the charge point is known, just not here now.
    if (!session) throw conflict(`charge point ${meta?.chargePointId ?? thing.id} is not connected`);
    return session;
  }

  private metaOf(chargePointId: string): OcppMeta | undefined {
    const entry = this.registry.get(chargePointId);
    const thing = entry ? this.ctx?.getThing(entry.householdId, entry.thing) : undefined;
    return thing ? ocppMeta(thing) : undefined;
  }

  private require(): AdapterContext {
    if (!this.ctx) throw new Error('the OCPP central system has not started');
    return this.ctx;
  }
}

export function ocppMeta(thing: Thing): OcppMeta | undefined {
  const meta = thing.meta?.ocpp as OcppMeta | undefined;
  return meta && typeof meta.chargePointId === 'string' ? meta : undefined;
}
