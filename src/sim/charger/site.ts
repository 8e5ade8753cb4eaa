import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { connectClient } from '../devices/device.ts';
import { type CarAtCharger, SimulatedChargePoint, type UnfinishedTransaction } from './charge-point.ts';
import { dayAheadPrices, houseLoad, solarPower } from './curves.ts';

export interface SimulatedSiteOptions {
  hubUrl: string;
  brokerUrl: string;
  /** An API token allowed to register chargers and set the site. */
  token: string;
  clock: Clock;
  log: Logger;
  /** The car behind the charger; a parked car at 50 % that stays plugged in when absent. */
  car?: CarAtCharger;
  /** The car's vehicle thing, so the hub ties charging sessions at this charger to it. */
  vehicle?: string;
  /**
   * The charge point's own password (16 to 40 characters). Given, it is registered with it and
   * used again when the hub already knows the charge point (a restarted demo); without it the
   * hub makes one, and a charge point registered before cannot connect again.
   */
  chargePointPassword?: string;
  solarPeakW?: number;
  fuseKw?: number;
  /** The broker login for simulated devices (the hub's `demoMqttLogin` on its embedded broker). */
  username?: string;
  password?: string;
  /** How often meters report, ms. */
  meterIntervalMs?: number;
  utcOffsetHours?: number;
  /** The charge point's energy register to go on from, Wh (see SimulatedSite.meterWh). */
  meterWh?: number;
  /** The transaction the charge point had when it last stopped (see SimulatedSite.unfinishedTransaction). */
  interrupted?: UnfinishedTransaction;
  /** The price series this site put at an earlier start (see SimulatedSite.ownPrices). */
  ownPrices?: string;
  /**
   * Whether the site has its charge point (unless false): a demo whose charger the user removed
   * runs its meters and prices without one, rather than registering it again.
   */
  chargePoint?: boolean;
  /**
   * A short tag (letters and digits) that gives this site's meters topics and things of their own,
   * for a broker other demos' sites may share: another's meters then never pass for this one's
   * (`grid-meter-<tag>`). None (the default) on a broker of the hub's own, and for a site set up
   * before, whose meters keep their topics and ids (`grid-meter`).
   */
  tag?: string;
}

const CHARGE_POINT_ID = 'SIM-CP-1';
/** The site's meters: the key of each in the one JSON state, and the name it is announced by. */
const METERS = [
  { key: 'grid', name: 'Grid meter' },
  { key: 'solar', name: 'Solar inverter' },
  { key: 'house', name: 'House load' },
] as const;
type MeterKey = (typeof METERS)[number]['key'];

/**
 * The demo's energy site: an OCPP 1.6J charge point on a real WebSocket, a solar inverter, a
 * house load and a grid meter announced by Home Assistant discovery on MQTT, and a day-ahead
 * price series put through the API. It sets itself up through the hub's public API, as a user
 * would, and plugs into the simulated car through `car`.
 */
export class SimulatedSite {
  private client: MqttClient | null = null;
  /** Appended to the MQTT client id, as the home devices' are, so two sites on one broker never kick each other off. */
  private readonly clientSuffix = randomBytes(3).toString('hex');
  private chargePoint: SimulatedChargePoint | null = null;
  private stopTimer: (() => void) | null = null;
  private readonly car: CarAtCharger;
  /** The charger's draw in the grid meter's last reading, W. */
  private publishedChargerW = 0;
  private putPrices: string | undefined;

  constructor(private readonly options: SimulatedSiteOptions) {
    this.car = options.car ?? standInCar();
  }

  async start(): Promise<void> {
    const { options } = this;
    const client = await connectClient(options.brokerUrl, {
      clientId: `triad-sim-site-${this.clientSuffix}`,
      username: options.username,
      password: options.password,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    });
    this.client = client;
    client.on('error', (error) => options.log.debug('the site meters lost their broker', { error: error.message }));
    // Back after a dropped connection (a broker restarted without its retained messages), the
    // meters are announced again, as the home devices are, or they would stay unknown on the hub.
    client.on('connect', () => {
      if (this.client !== client) return;
      this.announce().catch((error: Error) =>
        options.log.debug('site meters re-announce failed', { error: error.message }),
      );
    });
    await this.announce();
    this.putPrices = options.ownPrices;
    if (options.chargePoint !== false) await this.startChargePoint();
    // The meters appear through discovery, named after their devices; wait until the hub has them.
    await this.waitForThings(METERS.map((meter) => this.thingOf(meter.key)));
    await this.setUpSite();
    await this.keepPricesCurrent();
    // The meters' first reading the hub keeps: the one published before discovery made the things was lost.
    this.publishMeters();
    const periodic = options.clock.setInterval(() => this.publishMeters(), options.meterIntervalMs ?? 10_000);
    // A real grid meter sees the charger's draw within a second, not at its next periodic report.
    const follow = options.clock.setInterval(() => {
      if (this.chargerPowerW() !== this.publishedChargerW) this.publishMeters();
    }, 1_000);
    this.stopTimer = () => {
      periodic();
      follow();
    };
  }

  /** Registers the charge point through the chargers API and connects it over OCPP, the car on its cable. */
  private async startChargePoint(): Promise<void> {
    const { options } = this;
    const registered = await this.api('POST', '/api/chargers', {
      chargePointId: CHARGE_POINT_ID,
      name: 'Driveway charger',
      ...(options.chargePointPassword ? { password: options.chargePointPassword } : {}),
    });
    const password = registered.ok
      ? String((registered.body as { password: string }).password)
      : registered.status === 409
        ? (options.chargePointPassword ?? null)
        : null;
    if (!password) {
      options.log.warn('simulated charge point already registered or refused; not connecting', {
        status: registered.status,
      });
    } else {
      const chargePoint = new SimulatedChargePoint({
        url: `${options.hubUrl.replace(/^http/, 'ws')}/ocpp`,
        chargePointId: CHARGE_POINT_ID,
        password,
        clock: options.clock,
        log: options.log.child('charge-point'),
        car: this.car,
        meterWh: options.meterWh,
        interrupted: options.interrupted,
      });
      try {
        await chargePoint.start();
        this.chargePoint = chargePoint;
        if (options.vehicle) await this.tieToVehicle(options.vehicle);
      } catch (error) {
        // A charge point registered with another password (a lost owner token): the rest of the site still runs.
        options.log.warn('the simulated charge point could not connect', { error });
        await chargePoint.stop();
      }
    }
  }

  async stop(): Promise<void> {
    this.stopTimer?.();
    await this.chargePoint?.stop();
    const client = this.client;
    this.client = null;
    // Forced when the broker is gone, so stopping never waits on a connection that will not come.
    await client?.endAsync(!client.connected);
  }

  /** The thing the hub makes of a meter (see `tag`). */
  thingOf(meter: MeterKey): string {
    const slug = METERS.find((m) => m.key === meter)!
      .name.toLowerCase()
      .replace(/ /g, '-');
    return this.options.tag ? `${slug}-${this.options.tag}` : slug;
  }

  /** The one topic the three meters' readings share. */
  get stateTopic(): string {
    return this.options.tag ? `zigbee2mqtt/triad_sim_site_${this.options.tag}` : 'zigbee2mqtt/triad_sim_site';
  }

  /** Publishes the meters' discovery configs (retained) and their readings. */
  private async announce(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const { tag } = this.options;
    for (const { key, name } of METERS) {
      const id = tag ? `sim_${key}_${tag}` : `sim_${key}`;
      const config = {
        name,
        unique_id: id,
        // One JSON state for the three meters, on a topic the demo devices' broker login may publish to.
        state_topic: this.stateTopic,
        value_template: `{{ value_json.${key} }}`,
        unit_of_measurement: 'W',
        device_class: 'power',
        // Tagged, each meter is an entity of its own whose object id names its thing; untagged, a
        // device named after the meter, as the site was announced before tags (its things keep their ids).
        ...(tag ? { object_id: this.thingOf(key) } : { device: { identifiers: [id], name } }),
      };
      await client.publishAsync(`homeassistant/sensor/${id}/config`, JSON.stringify(config), { retain: true, qos: 1 });
    }
    this.publishMeters();
  }

  /**
   * The price series this site put, as `pricesKey` gives it, for the next start to tell the demo's
   * own prices (renewed at each start) from a series the user put since (kept).
   */
  get ownPrices(): string | undefined {
    return this.putPrices;
  }

  /**
   * Chooses the site's meters and fuse, once: a site that already has meters is the one set up
   * before, perhaps with the user's own fuse limit, reserve or battery, which a restart keeps.
   */
  private async setUpSite(): Promise<void> {
    const site = await this.api('GET', '/api/energy/site');
    const current = site.body as { grid?: string; solar?: string; house?: string; battery?: string } | null;
    if (!site.ok || current?.grid || current?.solar || current?.house || current?.battery) return;
    await this.api('PUT', '/api/energy/site', {
      grid: this.thingOf('grid'),
      solar: this.thingOf('solar'),
      house: this.thingOf('house'),
      limitKw: this.options.fuseKw ?? 17,
      houseReserveKw: 2,
    });
  }

  /**
   * Puts the demo's day-ahead prices (today and tomorrow) when the hub has none left to go on
   * with, or holds the ones the demo put before, which move on to the current day. A series the
   * user put is kept until it has run out: only then does the demo put its own again.
   */
  private async keepPricesCurrent(): Promise<void> {
    const { clock, log, utcOffsetHours } = this.options;
    const now = clock.now();
    const stored = await this.api('GET', '/api/energy/prices');
    const series = stored.ok ? (stored.body as PriceSeries | null) : null;
    const lastEnd = Math.max(...(series?.slots ?? []).map((slot) => Date.parse(slot.end)));
    const runOut = !(lastEnd > now);
    const demoOwn = series !== null && this.putPrices !== undefined && pricesKey(series) === this.putPrices;
    if (!runOut && !demoOwn) {
      log.info('keeping the price series the hub holds', { until: new Date(lastEnd).toISOString() });
      return;
    }
    const day = now - (now % 86_400_000);
    const slots = dayAheadPrices(day, 48, utcOffsetHours).map((s) => ({
      start: new Date(s.start).toISOString(),
      end: new Date(s.end).toISOString(),
      price: s.price,
    }));
    const put = await this.api('PUT', '/api/energy/prices', { currency: 'EUR', slots });
    if (put.ok) this.putPrices = pricesKey(put.body as PriceSeries);
    else log.warn('could not put the demo prices', { status: put.status });
  }

  /**
   * The charge point's energy register, Wh, to save for a restart; where it started when the
   * charge point did not connect this time, so the count is not lost.
   */
  get meterWh(): number | undefined {
    return this.chargePoint?.registerWh ?? this.options.meterWh;
  }

  /**
   * The charge point's transaction to save for a restart, which the next start ends first; the one
   * it was given when it did not connect this time, so that end is still sent.
   */
  get unfinishedTransaction(): UnfinishedTransaction | undefined {
    return this.chargePoint ? this.chargePoint.unfinishedTransaction : this.options.interrupted;
  }

  /** Solar and house from their curves; the grid meter is what is left, with the charger's draw. */
  private publishMeters(): void {
    const { clock, utcOffsetHours } = this.options;
    const now = clock.now();
    const solar = solarPower(now, { peakW: this.options.solarPeakW ?? 6000, utcOffsetHours });
    const house = houseLoad(now, { utcOffsetHours });
    const chargerW = this.chargerPowerW();
    this.publishedChargerW = chargerW;
    const state: Record<MeterKey, number> = { solar, house, grid: house + chargerW - solar };
    const client = this.client;
    // While the broker is away the readings are skipped, not queued: the next one says the power then.
    if (client?.connected) void client.publishAsync(this.stateTopic, JSON.stringify(state)).catch(() => {});
  }

  private chargerPowerW(): number {
    return this.chargePoint?.powerW ?? 0;
  }

  /**
   * Names the car usually charged here, as a user would in the charger's settings; once, so a car
   * the user named there since is kept.
   */
  private async tieToVehicle(vehicle: string): Promise<void> {
    const chargers = (await this.api('GET', '/api/chargers')).body as Array<{
      id: string;
      chargePointId: string | null;
      vehicle?: string | null;
    }>;
    const charger = chargers?.find((c) => c.chargePointId === CHARGE_POINT_ID);
    if (charger?.vehicle) return;
    const tied =
      charger && (await this.api('PUT', `/api/chargers/${encodeURIComponent(charger.id)}/mode`, { vehicle }));
    if (!tied?.ok)
      this.options.log.warn('could not tie the charge point to the car', { vehicle, status: tied?.status });
  }

  private async waitForThings(ids: string[]): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const res = await this.api('GET', '/api/things');
      const things = (res.body as Array<{ id: string }>) ?? [];
      if (ids.every((id) => things.some((t) => t.id === id))) return;
      // Waiting on the broker and the hub's discovery (real I/O), not on simulated time.
      await delay(50);
    }
    this.options.log.warn('site meters did not appear in time', { ids });
  }

  private async api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ ok: boolean; status: number; body: unknown }> {
    const res = await fetch(this.options.hubUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { ok: res.ok, status: res.status, body: await res.json().catch(() => null) };
  }
}

interface PriceSeries {
  currency: string;
  slots: Array<{ start: string; end: string; price: number }>;
}

/** A price series as the hub answers it, in a few characters: equal keys, the same series. */
function pricesKey(series: PriceSeries): string {
  const slots = (series.slots ?? []).map((slot) => [slot.start, slot.end, slot.price]);
  return createHash('sha256')
    .update(JSON.stringify([series.currency, slots]))
    .digest('base64url')
    .slice(0, 22);
}

/** Without a simulated car: a 60 kWh car at home, plugged in, taking all it is offered until full. */
function standInCar(): CarAtCharger {
  let soc = 50;
  return {
    plugged: () => true,
    soc: () => soc,
    maxCurrentA: 16,
    acceptKw: (offeredKw) => (soc < 100 ? offeredKw : 0),
    charged: (kwh) => {
      // 90 % of the AC energy reaches the battery.
      soc = Math.min(100, soc + ((kwh * 0.9) / 60) * 100);
    },
  };
}
