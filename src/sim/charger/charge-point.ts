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
  /** Told the energy that went into the car, kWh, so the car's model can charge. */
  charged(kwh: number): void;
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
}

/**
 * A home charge point speaking OCPP 1.6J over a real WebSocket (Basic auth, subprotocol
 * `ocpp1.6`). It boots, reports its status, starts a transaction when the car is plugged (free
 * vend: no badge needed at home), sends MeterValues, and obeys SetChargingProfile, RemoteStart,
 * RemoteStop, ChangeAvailability and TriggerMessage.
 */
export class SimulatedChargePoint {
  private socket: WebSocket | null = null;
  private rpc: OcppRpc | null = null;
  private stopTimer: (() => void) | null = null;
  private limitA: number;
  private transactionId: number | null = null;
  private meterWh = 0;
  private plugged = false;
  private operative = true;
  private lastStep: number;

  constructor(private readonly options: SimulatedChargePointOptions) {
    this.limitA = options.maxCurrentA ?? 16;
    this.lastStep = options.clock.now();
  }

  async start(): Promise<void> {
    const { options } = this;
    const auth = Buffer.from(`${options.chargePointId}:${options.password}`).toString('base64');
    const socket = new WebSocket(`${options.url}/${encodeURIComponent(options.chargePointId)}`, [OCPP_SUBPROTOCOL], {
      headers: { authorization: `Basic ${auth}` },
    });
    this.socket = socket;
    this.rpc = new OcppRpc({
      clock: options.clock,
      send: (text) => socket.readyState === socket.OPEN && socket.send(text),
      handle: (action, payload) => this.handle(action, payload),
      onRefused: (reason) => options.log.warn('charge point refused a frame', { reason }),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) =>
        reject(new Error(`the hub refused the charge point: HTTP ${res.statusCode}`)),
      );
    });
    socket.on('message', (data) => this.rpc?.receive(String(data)));
    socket.on('close', () => this.rpc?.close());
    await this.rpc.call('BootNotification', {
      chargePointVendor: 'Triad',
      chargePointModel: 'SimBox 11',
      firmwareVersion: '1.0.0',
    });
    await this.status();
    this.stopTimer = options.clock.setInterval(() => void this.step(), options.meterIntervalMs ?? 30_000);
  }

  async stop(): Promise<void> {
    this.stopTimer?.();
    this.rpc?.close();
    this.socket?.close(1000, 'charge point shutting down');
  }

  /** Current flowing now, A per phase: the profile's limit, the car's and the cable's, whichever is least. */
  private get currentA(): number {
    if (!this.plugged || this.transactionId === null || !this.operative) return 0;
    const current = Math.min(this.limitA, this.options.car.maxCurrentA, this.options.maxCurrentA ?? 16);
    return current >= 6 && this.options.car.soc() < 100 ? current : 0;
  }

  get powerW(): number {
    return this.currentA * (this.options.voltage ?? 230) * (this.options.phases ?? 3);
  }

  /** One simulation step: energy since the last, plug changes, meter values. */
  private async step(): Promise<void> {
    const now = this.options.clock.now();
    const kwh = (this.powerW / 1000) * ((now - this.lastStep) / 3_600_000);
    this.lastStep = now;
    if (kwh > 0) {
      this.meterWh += kwh * 1000;
      this.options.car.charged(kwh * 0.9);
    }
    try {
      const plugged = this.options.car.plugged();
      if (plugged && !this.plugged) await this.plugIn();
      else if (!plugged && this.plugged) await this.unplug();
      else await this.status();
      if (this.transactionId !== null) await this.meterValues('Sample.Periodic');
    } catch (error) {
      this.options.log.debug('charge point step failed', { error });
    }
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
    this.transactionId = Number(answer.transactionId);
    await this.status();
  }

  private async unplug(): Promise<void> {
    this.plugged = false;
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

  private async status(): Promise<void> {
    const status = !this.operative
      ? 'Unavailable'
      : !this.plugged
        ? 'Available'
        : this.currentA > 0
          ? 'Charging'
          : this.transactionId === null
            ? 'Preparing'
            : 'SuspendedEVSE';
    await this.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status, timestamp: this.iso() });
  }

  private async meterValues(context: string): Promise<void> {
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
        this.limitA =
          chargingRateUnit === 'A' ? limit : limit / ((this.options.voltage ?? 230) * (this.options.phases ?? 3));
        this.options.clock.setTimeout(() => void this.status().catch(() => {}), 0);
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
        this.operative = payload.type === 'Operative';
        this.options.clock.setTimeout(() => void this.status().catch(() => {}), 0);
        return { status: 'Accepted' };
      case 'TriggerMessage': {
        const requested = String(payload.requestedMessage);
        if (!['StatusNotification', 'MeterValues', 'Heartbeat'].includes(requested))
          return { status: 'NotImplemented' };
        this.options.clock.setTimeout(() => {
          const send =
            requested === 'StatusNotification'
              ? this.status()
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
    this.transactionId = null;
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
