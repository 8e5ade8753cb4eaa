import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import type { HubServices, Subsystem } from '../core/hub.ts';
import { parseIsoTime } from '../core/iso-time.ts';
import type { Logger } from '../core/log.ts';
import { savedCarFrom } from './car/car.ts';
import { CarSimulator } from './car/simulator.ts';
import type { UnfinishedTransaction } from './charger/charge-point.ts';
import { SimulatedSite } from './charger/site.ts';
import { SimulatedHome } from './home.ts';
import { type DemoPhoneLogin, phoneLogin, provisionDemoPhones, SimulatedPhones, savedPhoneLogins } from './people.ts';
import { SavedStateFile } from './saved-state.ts';

/** The demo car's name, and the person who drives it (their phone travels in it). */
const DEMO_CAR = { name: 'Family car', id: 'family-car', driver: 'Alex' };
/** The charge point the demo's site registers (SimulatedSite's own id), to find it among the chargers. */
const DEMO_CHARGE_POINT = 'SIM-CP-1';

/**
 * What became of a part the demo adds to the household through the API: `created` once it made
 * it (or found it there), `removed` once it found it gone since, so it is never made again.
 */
type PartFate = 'created' | 'removed';
type DemoParts = { car?: PartFate; charger?: PartFate };

/** The demo's own state in the data folder (see SavedStateFile). */
export const DEMO_STATE_FILE = 'demo-state.json';
/**
 * How often the demo's state is saved besides at a stop: what a hub killed outright loses. Every
 * minute, each kill ran the car's odometer back by up to a minute of driving (~0.3 km in a
 * reviewer's trial), in the history and the trips; every second, as the standalone car simulator
 * saves (src/sim/car/cli.ts), at most a second's. A save is ~1 KB, synced: a few milliseconds.
 */
const SAVE_EVERY_MS = 1_000;

/**
 * The simulated household behind `--demo`: home devices on MQTT, two phones speaking OwnTracks, a
 * car that is its own VISS server, and an energy site (meters on MQTT, an OCPP charge point the
 * car is plugged into at home), all talking to the hub over the same protocols and API a real
 * household would use.
 */
export class DemoHousehold implements Subsystem {
  readonly name = 'demo';
  private home: SimulatedHome | null = null;
  private phones: SimulatedPhones | null = null;
  private car: CarSimulator | null = null;
  private site: SimulatedSite | null = null;
  private stateFile: SavedStateFile | null = null;
  /** What was saved when the demo last ran; kept for a part that does not start this time. */
  private saved: Record<string, unknown> = {};
  /** The car and charger the demo made, or found removed; kept in `saved.parts`. */
  private parts: DemoParts = {};
  private stopSaving: (() => void) | null = null;
  private clock: HubServices['clock'] | null = null;
  /** Sets the demo's MQTT topics apart from another demo's on the same broker (see mqttTag). */
  private tag = '';

  /**
   * `phones: false` for a hub without the people subsystem (tests of other parts); `carErrands`
   * makes the car drive every few minutes (see SimulatedCarOptions.errands), for people trying it.
   */
  constructor(
    private readonly options: { phones?: boolean; carErrands?: { firstAfterMs: number; parkMs: number } } = {},
  ) {}

  async start(): Promise<void> {}

  async listening(hub: HubServices): Promise<void> {
    const log = hub.log.child('demo');
    this.clock = hub.clock;
    this.stateFile = new SavedStateFile(join(hub.dataDir, DEMO_STATE_FILE), log);
    this.saved = await this.stateFile.read();
    this.parts = savedParts(this.saved.parts);
    this.tag = mqttTag(hub, this.saved);
    // Kept with the rest at the next save.
    this.saved.mqttTag = this.tag;
    this.home = new SimulatedHome({
      tag: this.tag,
      brokerUrl: hub.mqttUrl,
      clock: hub.clock,
      log: log.child('home'),
      ...hub.demoMqttLogin,
    });
    // The front door, the lights and the thermostat as the household left them.
    this.home.restore(this.saved.home);
    await this.home.start();
    // With the energy API the car is charged by the site's charge point, so its energy is metered once.
    const withSite = (await call(hub, '/api/chargers')).ok;
    await this.startCar(hub, log.child('car'), !withSite);
    if (withSite) {
      await this.startSite(hub, log.child('site'));
      // Which prices are the demo's own, for the next start to tell them from the user's.
      this.saved.prices = this.site?.ownPrices;
      await this.save();
    }
    this.stopSaving = hub.clock.setInterval(() => void this.save(), SAVE_EVERY_MS);
    if (this.options.phones === false) return;
    const known = savedPhoneLogins(this.saved.phones);
    const phones = await provisionDemoPhones({
      hubUrl: hub.httpUrl,
      token: hub.ownerToken,
      known,
      log: log.child('phones'),
    });
    // Kept at once, not at the next periodic save: a tracker's password is shown only when it is
    // made, and a demo stopped before saving would have to make its phones again. A person the
    // user removed stays on the list, so the next start does not bring them back.
    const running = phones.map(phoneLogin).filter((login): login is DemoPhoneLogin => login !== null);
    this.saved.phones = [...running, ...known.filter((login) => !phones.some((p) => p.person === login.person))];
    await this.save();
    this.phones = new SimulatedPhones({
      clock: hub.clock,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      phones,
      // The driver's phone is wherever the car is.
      travelsWith: (person) => (person === DEMO_CAR.driver && this.car ? this.car.car.whereabouts() : null),
      log: log.child('phones'),
    });
    await this.phones.start();
  }

  async stop(): Promise<void> {
    this.stopSaving?.();
    this.stopSaving = null;
    await this.phones?.stop();
    await this.site?.stop();
    await this.car?.stop();
    await this.home?.stop();
    // Once every part stood still: the last values are the ones the next start goes on from.
    await this.save();
  }

  /**
   * Saves what must carry on after a restart: the home devices' states, the car, the charge
   * point's meter, the phones' logins and which price series the demo put (kept in `saved` as
   * they are set up).
   */
  private async save(): Promise<void> {
    if (!this.stateFile || !this.clock) return;
    const meterWh = this.site?.meterWh;
    const transaction = this.site?.unfinishedTransaction;
    await this.stateFile.write({
      ...this.saved,
      savedAt: new Date(this.clock.now()).toISOString(),
      ...(this.home ? { home: this.home.saved() } : {}),
      ...(this.car ? { car: this.car.car.saved() } : {}),
      ...(meterWh !== undefined
        ? {
            chargePoint: {
              meterWh,
              ...(transaction
                ? { transaction: { id: transaction.id, at: new Date(transaction.at).toISOString() } }
                : {}),
            },
          }
        : {}),
    });
  }

  /**
   * Whether the demo's car or charger, there now or not, is to run: one the demo made before and
   * the user removed since stays removed, as a person the user removed gets no phone again.
   * `ranBefore` is what a state file from before `parts` were kept tells: the part's own saved
   * state, so it ran on this data folder and is missing now because the user removed it.
   */
  private async keep(part: keyof DemoParts, there: boolean, ranBefore: boolean, log: Logger): Promise<boolean> {
    const fate = this.parts[part] ?? (ranBefore ? 'created' : undefined);
    // Removed for good: one of the same id added since is the user's own, not the demo's to take over.
    const removed = fate === 'removed' || (fate === 'created' && !there);
    if (!removed) return true;
    log.info(`the demo ${part} was removed by the user; the demo runs without it`);
    await this.remember(part, 'removed');
    return false;
  }

  /** Keeps what became of a part at once, so a demo stopped before its next save still knows. */
  private async remember(part: keyof DemoParts, fate: PartFate): Promise<void> {
    if (this.parts[part] === fate) return;
    this.parts = { ...this.parts, [part]: fate };
    this.saved.parts = this.parts;
    await this.save();
  }

  /**
   * The car runs as a VISS server on a free loopback port, and the hub is pointed at it through
   * the vehicles API, as a user would attach a car gateway. A hub without vehicles skips it, and
   * so does a demo whose car the user removed: its simulator is not started either, for it would
   * drive and charge unseen; the site's charge point then has its stand-in car on the cable, and
   * the driver's phone goes its own way.
   */
  private async startCar(hub: HubServices, log: Logger, selfCharging: boolean): Promise<void> {
    const existing = await call(hub, `/api/vehicles/${DEMO_CAR.id}`);
    if (existing.status === 404 && !(await call(hub, '/api/vehicles')).ok) return;
    if (!(await this.keep('car', existing.ok, this.saved.car !== undefined, log))) return;
    const resume = this.savedCar(log);
    const car = new CarSimulator({
      clock: hub.clock,
      vissPort: 0,
      host: '127.0.0.1',
      log,
      selfCharging,
      errands: this.options.carErrands,
      resume,
      // A new demo car starts at home on the demo's wallbox, whatever the hour: by the commute it
      // was at work through office hours (UTC), and a first look at the demo, or a test of it,
      // saw a different household by day than by night. It keeps the commute from there.
      parkedAt: resume ? undefined : 'home',
    });
    await car.start();
    this.car = car;
    const attached = existing.ok
      ? await call(hub, `/api/vehicles/${DEMO_CAR.id}`, 'PATCH', { viss: car.url })
      : await call(hub, '/api/vehicles', 'POST', { name: DEMO_CAR.name, viss: car.url });
    if (!attached.ok) throw new Error(`could not attach the demo car: ${attached.status} ${await attached.text()}`);
    await this.remember('car', 'created');
    log.info('demo car attached over VISS', { url: car.url });
  }

  /** The car as it was saved, if it was; a file the car cannot use is said once and set aside. */
  private savedCar(log: Logger) {
    if (this.saved.car === undefined) return undefined;
    const car = savedCarFrom(this.saved.car);
    if (!car) log.warn('the saved demo car is not one this version can resume; it starts afresh');
    return car ?? undefined;
  }

  /**
   * The site's meters publish on the hub's broker with the demo devices' login, and its charge
   * point registers through the chargers API and connects over OCPP with the car on its cable.
   * A charger the user removed is not registered again: the site's meters and prices run without it.
   */
  private async startSite(hub: HubServices, log: Logger): Promise<void> {
    const chargePoint = await this.keep(
      'charger',
      await hasDemoCharger(hub),
      this.saved.chargePoint !== undefined,
      log,
    );
    const site = new SimulatedSite({
      chargePoint,
      hubUrl: hub.httpUrl,
      brokerUrl: hub.mqttUrl,
      token: hub.ownerToken,
      clock: hub.clock,
      log,
      ...(this.car ? { car: this.car.car, vehicle: DEMO_CAR.id } : {}),
      // Derived from the owner token, which the data directory keeps: a restarted demo's charge
      // point presents the password it was registered with, and no one without the token knows it.
      chargePointPassword: createHmac('sha256', hub.ownerToken)
        .update('demo charge point')
        .digest('base64url')
        .slice(0, 32),
      username: hub.demoMqttLogin?.username,
      password: hub.demoMqttLogin?.password,
      meterWh: savedMeterWh(this.saved.chargePoint),
      interrupted: savedTransaction(this.saved.chargePoint),
      ownPrices: typeof this.saved.prices === 'string' ? this.saved.prices : undefined,
      tag: this.tag,
    });
    this.site = site;
    await site.start();
    // Made only once it is there: a charge point the hub refused is tried again at the next start.
    if (chargePoint && (await hasDemoCharger(hub))) await this.remember('charger', 'created');
  }
}

/**
 * The tag of the demo's MQTT topics and devices (see SimulatedHomeOptions.tag and
 * SimulatedSiteOptions.tag): none on the hub's own broker, which no other demo shares; on a broker
 * given with --mqtt-url, one of this data folder's, derived from its owner token as the charge
 * point's password is, so it is the same at every start. The one saved is kept, and a demo that
 * ran here before tags were (its meters, or prices, in the state file) keeps its untagged topics,
 * and the things the household's rules and site settings name.
 */
function mqttTag(hub: HubServices, saved: Record<string, unknown>): string {
  if (typeof saved.mqttTag === 'string' && /^[a-z0-9]{0,16}$/.test(saved.mqttTag)) return saved.mqttTag;
  const ranBefore = saved.chargePoint !== undefined || saved.prices !== undefined;
  if (hub.demoMqttLogin || ranBefore) return '';
  return createHmac('sha256', hub.ownerToken).update('demo MQTT tag').digest('hex').slice(0, 8);
}

/** What the demo's state file says of its car and charger; a value it does not know, nothing. */
function savedParts(raw: unknown): DemoParts {
  const parts: DemoParts = {};
  if (typeof raw !== 'object' || raw === null) return parts;
  for (const part of ['car', 'charger'] as const) {
    const fate = (raw as Record<string, unknown>)[part];
    if (fate === 'created' || fate === 'removed') parts[part] = fate;
  }
  return parts;
}

/** Whether the hub has the demo's charge point among its chargers. */
async function hasDemoCharger(hub: HubServices): Promise<boolean> {
  const chargers = await call(hub, '/api/chargers');
  if (!chargers.ok) return false;
  return ((await chargers.json()) as Array<{ chargePointId?: string | null }>).some(
    (c) => c.chargePointId === DEMO_CHARGE_POINT,
  );
}

/** The charge point's saved energy register, if it is one. */
function savedMeterWh(raw: unknown): number | undefined {
  const meterWh = (raw as { meterWh?: unknown } | null | undefined)?.meterWh;
  return typeof meterWh === 'number' && Number.isFinite(meterWh) && meterWh >= 0 ? meterWh : undefined;
}

/** The transaction the charge point had when the demo stopped, if the saved one is one. */
function savedTransaction(raw: unknown): UnfinishedTransaction | undefined {
  const saved = (raw as { transaction?: { id?: unknown; at?: unknown } } | null | undefined)?.transaction;
  const at = typeof saved?.at === 'string' ? parseIsoTime(saved.at) : null;
  const id = saved?.id;
  // OCPP 1.6 transaction ids are integers; the hub's are positive and 32-bit.
  if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id > 2 ** 31 - 1 || at === null) return undefined;
  return { id, at };
}

/** Calls the hub's API with the owner's token, as the household's own scripts would. */
function call(hub: HubServices, path: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(new URL(path, hub.httpUrl), {
    method,
    headers: { authorization: `Bearer ${hub.ownerToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}
