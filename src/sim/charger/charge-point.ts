import WebSocket from 'ws';
import { OCPP_SUBPROTOCOL, OcppRpc, type Payload } from '../../adapters/ocpp/rpc.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';

/** What the charge point needs to know about the car behind its cable. */
export interface CarAtCharger {
  plugged(): boolean;
  /** State of charge, %, reported in MeterValues as `SoC`. */
  soc(): number;
  /** The most the car accepts, A per phase. */
  maxCurrentA: number;
  /**
   * The AC power (kW) the car draws when offered `offeredKw`: the offer, less as its battery
   * tapers, nothing at its charge limit. The meter counts only this.
   */
  acceptKw(offeredKw: number): number;
  /** Told the AC energy metered into the car, kWh; its own charging losses are the car's business. */
  charged(kwh: number): void;
}

/** A transaction that ran when the charge point stopped, and when that was. */
export interface UnfinishedTransaction {
  id: number;
  at: number;
}

export interface SimulatedChargePointOptions {
  url: string;
  chargePointId: string;
  password: string;
  clock: Clock;
  log: Logger;
  car: CarAtCharger;
  phases?: 1 | 3;
  voltage?: number;
  maxCurrentA?: number;
  meterIntervalMs?: number;
  /** The energy register to start from, Wh: where the meter stood when the charge point last ran. */
  meterWh?: number;
  /** The transaction it had when it last stopped (see endInterrupted). */
  interrupted?: UnfinishedTransaction;
}

/**
 * A home charge point speaking OCPP 1.6J over a real WebSocket (Basic auth, subprotocol
 * `ocpp1.6`). It boots, reports its status, starts a transaction when the car is plugged (free
 * vend: no badge needed at home), sends MeterValues, and obeys SetChargingProfile, RemoteStart,
 * RemoteStop, ChangeAvailability and TriggerMessage.
 */
/**
 * How often the charge point looks at its cable and at what the car draws. A real one senses both
 * at once (the control pilot), not at its next meter sample: looked at every 30 s, a car that
 * drove off was still "charging at 11 kW" on the hub for up to half a minute, and one told to stop
 * (or to start) charging kept drawing (or not) as long.
 */
const PLUG_CHECK_MS = 1000;
/** Heartbeat interval when the central system names none, s. */
const DEFAULT_HEARTBEAT_S = 300;
/** The first and the longest wait before trying a lost central system again, ms. */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 60_000;

export class SimulatedChargePoint {
  private socket: WebSocket | null = null;
  private rpc: OcppRpc | null = null;
  private stopTimer: (() => void) | null = null;
  private stopPlugCheck: (() => void) | null = null;
  private stopHeartbeat: (() => void) | null = null;
  private cancelReconnect: (() => void) | null = null;
  private backoffMs = RECONNECT_MIN_MS;
  private stopped = false;
  private limitA: number;
  private transactionId: number | null = null;
  private meterWh = 0;
  /** What flows to the car since the meter last counted, W: decided at each change. */
  private flowW = 0;
  private plugged = false;
  private operative = true;
  private lastStep: number;
  /** The connector status last sent, so a status goes out when it changes. */
  private sentStatus: string | null = null;
  /** The step under way (see follow). */
  private stepping: Promise<void> | null = null;
  /** The power in the last meter sample sent, W, so power that begins or ends is sampled at once. */
  private sampledW = 0;
  /** The transaction its power went out on, until the central system has its StopTransaction. */
  private interrupted: UnfinishedTransaction | null;
  /** When it was stopped: a transaction it had then was interrupted at that moment. */
  private stoppedAt: number | null = null;

  constructor(private readonly options: SimulatedChargePointOptions) {
    this.limitA = options.maxCurrentA ?? 16;
    this.interrupted = options.interrupted ?? null;
    // A meter's register only counts up: a restarted charge point goes on from where it stood.
    this.meterWh = options.meterWh ?? 0;
    this.lastStep = options.clock.now();
  }

  async start(): Promise<void> {
    const { options } = this;
    this.stopped = false;
    this.stoppedAt = null;
    await this.connect();
    this.stopTimer = options.clock.setInterval(() => this.follow(true), options.meterIntervalMs ?? 30_000);
    this.stopPlugCheck = options.clock.setInterval(() => this.follow(false), PLUG_CHECK_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stoppedAt ??= this.options.clock.now();
    this.stopTimer?.();
    this.stopPlugCheck?.();
    this.stopHeartbeat?.();
    this.cancelReconnect?.();
    this.stopHeartbeat = null;
    this.cancelReconnect = null;
    this.rpc?.close();
    this.socket?.close(1000, 'charge point shutting down');
  }

  /**
   * Opens the WebSocket and boots: BootNotification first (again until the central system
   * accepts it, at the interval it gave), then the connector's status and heartbeats at the
   * accepted interval. A connection that closes later is opened again (see reconnect).
   */
  private async connect(): Promise<void> {
    const { options } = this;
    const auth = Buffer.from(`${options.chargePointId}:${options.password}`).toString('base64');
    const socket = new WebSocket(`${options.url}/${encodeURIComponent(options.chargePointId)}`, [OCPP_SUBPROTOCOL], {
      headers: { authorization: `Basic ${auth}` },
    });
    this.socket = socket;
    const rpc = new OcppRpc({
      clock: options.clock,
      send: (text) => socket.readyState === socket.OPEN && socket.send(text),
      handle: (action, payload) => this.handle(action, payload),
      onRefused: (reason) => options.log.warn('charge point refused a frame', { reason }),
    });
    this.rpc = rpc;
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) =>
        reject(new Error(`the hub refused the charge point: HTTP ${res.statusCode}`)),
      );
    });
    socket.on('error', (error) => options.log.debug('charge point socket error', { error }));
    socket.on('message', (data) => rpc.receive(String(data)));
    socket.on('close', () => {
      rpc.close();
      if (this.socket !== socket) return;
      this.stopHeartbeat?.();
      this.stopHeartbeat = null;
      this.reconnect();
    });
    const intervalS = await this.boot();
    await this.endInterrupted();
    // What the central system knew of the connector may be gone with the connection: say it again.
    this.sentStatus = null;
    // A car already plugged in starts its transaction now, not one meter interval later.
    await this.followPlug();
    // A transaction that ran on: its power said again with its status, for a hub that restarted.
    if (this.transactionId !== null) await this.powerChanged();
    else await this.status();
    this.stopHeartbeat?.();
    this.stopHeartbeat = options.clock.setInterval(
      () => void this.call('Heartbeat', {}).catch(() => {}),
      intervalS * 1000,
    );
    this.backoffMs = RECONNECT_MIN_MS;
  }

  /** BootNotification until accepted (OCPP 1.6 4.2: Pending or Rejected, try again after `interval`); answers the heartbeat interval, s. */
  private async boot(): Promise<number> {
    for (;;) {
      const answer = await this.call('BootNotification', {
        chargePointVendor: 'Triad',
        chargePointModel: 'SimBox 11',
        firmwareVersion: '1.0.0',
      });
      const interval = Number(answer.interval);
      const seconds = Number.isFinite(interval) && interval > 0 ? interval : DEFAULT_HEARTBEAT_S;
      if (answer.status === 'Accepted') return seconds;
      await new Promise<void>((resolve) => this.options.clock.setTimeout(resolve, seconds * 1000));
      if (this.stopped) throw new Error('the charge point stopped before it was accepted');
    }
  }

  /**
   * Tries the connection again after a wait that doubles from 1 s to a minute, as a charge point
   * does while its central system is away (a hub restarting), and boots afresh once it is back.
   */
  private reconnect(): void {
    if (this.stopped || this.cancelReconnect) return;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(RECONNECT_MAX_MS, this.backoffMs * 2);
    this.options.log.info('charge point lost its central system; trying again', { inMs: wait });
    this.cancelReconnect = this.options.clock.setTimeout(() => {
      this.cancelReconnect = null;
      if (this.stopped) return;
      this.connect().catch((error) => {
        this.options.log.debug('charge point could not reconnect', { error: String(error) });
        const socket = this.socket;
        this.socket = null;
        socket?.terminate();
        this.reconnect();
      });
    }, wait);
  }

  /**
   * Current offered to the car, A per phase (the control pilot): the profile's limit, the car's
   * and the cable's, whichever is least; below the 6 A minimum of IEC 61851 nothing is offered.
   */
  private get offeredA(): number {
    if (!this.plugged || this.transactionId === null || !this.operative) return 0;
    const current = Math.min(this.limitA, this.options.car.maxCurrentA, this.options.maxCurrentA ?? 16);
    return current >= 6 ? current : 0;
  }

  /**
   * The transaction to save for a restart: the one running (up to now, or to the stop), or one
   * interrupted before whose end the central system has not had yet.
   */
  get unfinishedTransaction(): UnfinishedTransaction | undefined {
    if (this.transactionId !== null) return { id: this.transactionId, at: this.stoppedAt ?? this.options.clock.now() };
    return this.interrupted ?? undefined;
  }

  /**
   * Ends the transaction the charge point stopped in, as a real one does when its power comes back
   * (OCPP 1.6: StopTransaction with reason PowerLoss, at the last time it knew, the meter where it
   * stood), before it looks at the cable: it then starts anew when the car still wants charge.
   * Started without it, the hub saw a second StartTransaction while the first still ran.
   */
  private async endInterrupted(): Promise<void> {
    const interrupted = this.interrupted;
    if (!interrupted) return;
    await this.call('StopTransaction', {
      transactionId: interrupted.id,
      meterStop: Math.round(this.meterWh),
      timestamp: new Date(interrupted.at).toISOString(),
      reason: 'PowerLoss',
    });
    this.interrupted = null;
  }

  /** The energy register, Wh: all the energy this charge point ever metered. */
  get registerWh(): number {
    return this.meterWh;
  }

  /** Power flowing to the car now, W: what it draws of the offer. */
  get powerW(): number {
    return this.flowW;
  }

  /**
   * Meters the energy that flowed since the last change at the power then decided, applies
   * `change`, and decides the power anew from the offer and what the car takes of it. Called
   * around every change of limit, plug, transaction or availability, so nothing is counted twice
   * or at a power that no longer held. A car unplugged since took nothing, and nothing is metered.
   */
  private meterAround(change: () => void = () => {}): void {
    const now = this.options.clock.now();
    const kwh = this.options.car.plugged() ? (this.flowW / 1000) * ((now - this.lastStep) / 3_600_000) : 0;
    this.lastStep = now;
    if (kwh > 0) {
      this.meterWh += kwh * 1000;
      this.options.car.charged(kwh);
    }
    change();
    const offeredKw = (this.offeredA * (this.options.voltage ?? 230) * (this.options.phases ?? 3)) / 1000;
    // Told even of a zero offer, so the car knows the power has gone.
    const drawnKw = Math.min(offeredKw, this.options.car.acceptKw(offeredKw));
    this.flowW = Math.max(0, drawnKw * 1000);
  }

  /**
   * Runs a step after the one under way, so their messages keep their order; a look at the cable
   * while one is under way (a hub slow to answer) is left to the next second's.
   */
  private follow(periodic: boolean): void {
    if (!periodic && this.stepping) return;
    const next = (this.stepping ?? Promise.resolve()).then(() => this.step(periodic));
    this.stepping = next;
    void next.finally(() => {
      if (this.stepping === next) this.stepping = null;
    });
  }

  /** One simulation step: energy since the last, plug changes, and the periodic meter values. */
  private async step(periodic = true): Promise<void> {
    this.meterAround();
    try {
      await this.followPlug();
      // Power that began or ended is sampled at once; one that only changed waits for the next sample.
      if (this.transactionId !== null && (periodic || this.flowW > 0 !== this.sampledW > 0))
        await this.powerChanged(periodic ? 'Sample.Periodic' : 'Other');
      else await this.status();
    } catch (error) {
      this.options.log.debug('charge point step failed', { error });
    }
  }

  /** Starts a transaction when the car's cable went in, stops it when it came out. */
  private async followPlug(): Promise<void> {
    const plugged = this.options.car.plugged();
    if (plugged && !this.plugged) await this.plugIn();
    else if (!plugged && this.plugged) await this.unplug();
  }

  private async plugIn(): Promise<void> {
    this.plugged = true;
    await this.status();
    const answer = await this.call('StartTransaction', {
      connectorId: 1,
      idTag: 'FREEVEND',
      meterStart: Math.round(this.meterWh),
      timestamp: this.iso(),
    });
    this.meterAround(() => {
      this.transactionId = Number(answer.transactionId);
    });
    await this.powerChanged();
  }

  private async unplug(): Promise<void> {
    this.meterAround(() => {
      this.plugged = false;
    });
    if (this.transactionId !== null) {
      await this.call('StopTransaction', {
        transactionId: this.transactionId,
        meterStop: Math.round(this.meterWh),
        timestamp: this.iso(),
        reason: 'EVDisconnected',
      });
      this.transactionId = null;
    }
    await this.status();
  }

  /**
   * Reports a new power at once, status and a meter sample, so the hub's view of the charger
   * agrees with the grid meter before the next periodic sample. The sample goes first when power
   * flows and the status first when it stops: the other way round the hub held "Charging" at 0 kW
   * between the two (the status Charging came before the sample with its power).
   */
  private async powerChanged(context = 'Other'): Promise<void> {
    const sample = this.transactionId !== null;
    if (sample && this.flowW > 0) await this.meterValues(context);
    await this.status();
    if (sample && this.flowW <= 0) await this.meterValues(context);
  }

  /** Sends the connector's status when it changed, or always when asked (TriggerMessage). */
  private async status(always = false): Promise<void> {
    const status = !this.operative
      ? 'Unavailable'
      : !this.plugged
        ? 'Available'
        : this.flowW > 0
          ? 'Charging'
          : this.transactionId === null
            ? 'Preparing'
            : this.offeredA > 0
              ? // Offered power that the car does not take: it is full, at its limit, or told to stop.
                'SuspendedEV'
              : 'SuspendedEVSE';
    if (status === this.sentStatus && !always) return;
    await this.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status, timestamp: this.iso() });
    this.sentStatus = status;
  }

  private async meterValues(context: string): Promise<void> {
    this.sampledW = this.flowW;
    await this.call('MeterValues', {
      connectorId: 1,
      ...(this.transactionId !== null ? { transactionId: this.transactionId } : {}),
      meterValue: [
        {
          timestamp: this.iso(),
          sampledValue: [
            {
              value: String(Math.round(this.meterWh)),
              context,
              measurand: 'Energy.Active.Import.Register',
              unit: 'Wh',
            },
            { value: String(Math.round(this.powerW)), context, measurand: 'Power.Active.Import', unit: 'W' },
            {
              value: String(Math.round(this.options.car.soc())),
              context,
              measurand: 'SoC',
              unit: 'Percent',
              location: 'EV',
            },
          ],
        },
      ],
    });
  }

  private async handle(action: string, payload: Payload): Promise<Payload> {
    switch (action) {
      case 'SetChargingProfile': {
        const profile = payload.csChargingProfiles as {
          chargingSchedule: { chargingRateUnit: string; chargingSchedulePeriod: Array<{ limit: number }> };
        };
        const { chargingRateUnit, chargingSchedulePeriod } = profile.chargingSchedule;
        const limit = chargingSchedulePeriod[0]?.limit ?? 0;
        this.meterAround(() => {
          this.limitA =
            chargingRateUnit === 'A' ? limit : limit / ((this.options.voltage ?? 230) * (this.options.phases ?? 3));
        });
        this.options.clock.setTimeout(() => void this.powerChanged().catch(() => {}), 0);
        return { status: 'Accepted' };
      }
      case 'RemoteStartTransaction':
        if (!this.plugged || this.transactionId !== null) return { status: 'Rejected' };
        this.options.clock.setTimeout(() => void this.plugIn().catch(() => {}), 0);
        return { status: 'Accepted' };
      case 'RemoteStopTransaction':
        if (payload.transactionId !== this.transactionId) return { status: 'Rejected' };
        this.options.clock.setTimeout(() => void this.stopTransaction().catch(() => {}), 0);
        return { status: 'Accepted' };
      case 'ChangeAvailability':
        this.meterAround(() => {
          this.operative = payload.type === 'Operative';
        });
        this.options.clock.setTimeout(() => void this.powerChanged().catch(() => {}), 0);
        return { status: 'Accepted' };
      case 'TriggerMessage': {
        const requested = String(payload.requestedMessage);
        if (!['StatusNotification', 'MeterValues', 'Heartbeat'].includes(requested))
          return { status: 'NotImplemented' };
        this.options.clock.setTimeout(() => {
          const send =
            requested === 'StatusNotification'
              ? this.status(true)
              : requested === 'MeterValues'
                ? this.meterValues('Trigger')
                : this.call('Heartbeat', {});
          void send.catch(() => {});
        }, 0);
        return { status: 'Accepted' };
      }
      default:
        return Promise.reject(new Error(`${action} is not supported by the simulated charge point`));
    }
  }

  private async stopTransaction(): Promise<void> {
    if (this.transactionId === null) return;
    await this.call('StopTransaction', {
      transactionId: this.transactionId,
      meterStop: Math.round(this.meterWh),
      timestamp: this.iso(),
      reason: 'Remote',
    });
    this.meterAround(() => {
      this.transactionId = null;
    });
    await this.status();
  }

  private call(action: string, payload: Payload): Promise<Payload> {
    if (!this.rpc) return Promise.reject(new Error('not connected'));
    return this.rpc.call(action, payload);
  }

  private iso(): string {
    return new Date(this.options.clock.now()).toISOString();
  }
}
