import mqtt, { type MqttClient } from 'mqtt';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { distanceMetres, type GeoPoint, offsetPoint } from '../people/geo.ts';
import { HOME_ZONE_ID } from '../people/zones.ts';

/** Where a phone is, and how it moves, at one moment. */
export interface PhonePosition extends GeoPoint {
  /** km/h. */
  speed?: number;
  /** Degrees from north. */
  heading?: number;
  /** Metres. */
  accuracy?: number;
}

/** A day in hours (0–24, local to `utcOffsetMinutes`): home → work → home. */
export interface DaySchedule {
  leaveHome: number;
  arriveWork: number;
  leaveWork: number;
  arriveHome: number;
}

export interface SimulatedPhone {
  /** The person carrying it, as the hub knows them. */
  person: string;
  transport: 'mqtt' | 'http';
  username: string;
  password: string;
  /** The app's device name (`X-Limit-D`, the topic's last level); default `phone`. */
  device?: string;
  home: GeoPoint;
  work: GeoPoint;
  schedule?: DaySchedule;
  /** The hub's ids of the person and of the phone's tracker, when the demo set them up. */
  personId?: string;
  tracker?: string;
}

/**
 * A demo phone's login as the hub made it, kept in the demo's saved state: the hub shows a
 * tracker's password only once, so a restarted demo that had not kept it would need a new tracker.
 */
export interface DemoPhoneLogin {
  /** The demo's name for the person (their phone's schedule), whatever the user renamed them to. */
  person: string;
  personId: string;
  tracker: string;
  username: string;
  password: string;
}

/** The phone logins in a saved state, leaving out any entry that is not one. */
export function savedPhoneLogins(raw: unknown): DemoPhoneLogin[] {
  if (!Array.isArray(raw)) return [];
  const fields = ['person', 'personId', 'tracker', 'username', 'password'] as const;
  return raw.filter(
    (entry): entry is DemoPhoneLogin =>
      typeof entry === 'object' &&
      entry !== null &&
      fields.every((field) => typeof (entry as Record<string, unknown>)[field] === 'string'),
  );
}

/** What to keep of a phone for the next start, if the hub's ids are known. */
export function phoneLogin(phone: SimulatedPhone): DemoPhoneLogin | null {
  if (!phone.personId || !phone.tracker) return null;
  const { person, personId, tracker, username, password } = phone;
  return { person, personId, tracker, username, password };
}

export interface SimulatedPhonesOptions {
  clock: Clock;
  /** The hub's HTTP base URL, for phones in HTTP mode. */
  hubUrl: string;
  /** The broker, for phones in MQTT mode. */
  brokerUrl: string;
  phones: SimulatedPhone[];
  /** How often each phone reports; default one minute. */
  reportEveryMs?: number;
  /** The schedule's time zone; default UTC. */
  utcOffsetMinutes?: number;
  /**
   * Where a person is while something else carries them (the car they drive), or null to follow
   * their schedule. The car simulator plugs in here, so a phone travels with the car.
   */
  travelsWith?: (person: string, now: number) => PhonePosition | null;
  log?: Logger;
}

export const DEFAULT_SCHEDULE: DaySchedule = { leaveHome: 8, arriveWork: 8.5, leaveWork: 17, arriveHome: 17.5 };
const HOUR_MS = 3_600_000;

/**
 * Phones running the OwnTracks app, for the demo household: each reports its position on the
 * injected clock as the real app would, over MQTT (retained `location` with a last will) or over
 * HTTP (`POST /api/owntracks` with Basic auth and the app's headers). No shortcut into the hub.
 */
export class SimulatedPhones {
  private readonly clients = new Map<string, MqttClient>();
  private cancel: (() => void) | null = null;
  /** Rounds of reports run one after another, so each phone's fixes leave in time order. */
  private inflight: Promise<void> = Promise.resolve();
  /** The last reply each HTTP phone got: the friends its map would show. */
  readonly friendsSeen = new Map<string, Array<Record<string, unknown>>>();

  constructor(private readonly options: SimulatedPhonesOptions) {}

  async start(): Promise<void> {
    if (this.cancel) throw new Error('the simulated phones are already running');
    for (const phone of this.options.phones) {
      if (phone.transport !== 'mqtt') continue;
      const client = await mqtt.connectAsync(this.options.brokerUrl, {
        clientId: `owntracks-${phone.username}-${Math.random().toString(16).slice(2, 8)}`,
        username: phone.username,
        password: phone.password,
        reconnectPeriod: 1000,
        // The app's last will: the broker tells everyone when the phone vanishes.
        will: {
          topic: topicOf(phone),
          payload: Buffer.from(JSON.stringify({ _type: 'lwt', tst: this.seconds() })),
          qos: 1,
          retain: false,
        },
      });
      // Absorbed: MQTT.js reconnects on its own, and an unheard 'error' would end the process.
      client.on('error', (error) =>
        this.options.log?.debug('a simulated phone lost its broker', { phone: phone.username, error: error.message }),
      );
      this.clients.set(phone.username, client);
    }
    this.cancel = this.options.clock.setInterval(() => void this.reportAll(), this.options.reportEveryMs ?? 60_000);
    await this.reportAll();
  }

  async stop(): Promise<void> {
    this.cancel?.();
    this.cancel = null;
    const clients = [...this.clients.values()];
    this.clients.clear();
    // Forced when the broker is away: a report waiting for it would otherwise hold stop() forever.
    // Ending fails such a report, so the round under way then finishes.
    await Promise.all(clients.map((client) => client.endAsync(!client.connected)));
    await this.inflight;
  }

  /** Where a phone is at `now`: with whatever carries its person, else on its schedule. */
  positionOf(phone: SimulatedPhone, now = this.options.clock.now()): PhonePosition {
    return (
      this.options.travelsWith?.(phone.person, now) ?? scheduledPosition(phone, now, this.options.utcOffsetMinutes ?? 0)
    );
  }

  /** Every phone reports once, after any round still under way. */
  reportAll(): Promise<void> {
    this.inflight = this.inflight.then(() => this.reportEach());
    return this.inflight;
  }

  /** Resolves once every report started so far has been sent. */
  async idle(): Promise<void> {
    await this.inflight;
  }

  private async reportEach(): Promise<void> {
    await Promise.all(
      this.options.phones.map((phone) =>
        this.report(phone).catch((error: unknown) =>
          this.options.log?.warn('a simulated phone could not report', { phone: phone.username, error: String(error) }),
        ),
      ),
    );
  }

  private async report(phone: SimulatedPhone): Promise<void> {
    const payload = JSON.stringify(locationMessage(phone, this.positionOf(phone), this.seconds()));
    if (phone.transport === 'mqtt') {
      const client = this.clients.get(phone.username);
      // Without its broker the phone skips the fix, rather than piling rounds up behind a
      // publish that waits for the broker's answer; the next round reports where it is then.
      if (!client?.connected) return;
      // The app retains its location so friends who connect later see it at once. A publish the
      // broker never answered is given up when the phone stops, so stop() never waits on it.
      await new Promise<void>((resolve, reject) => {
        client.once('end', resolve);
        client.publishAsync(topicOf(phone), payload, { qos: 1, retain: true }).then(
          () => {
            client.removeListener('end', resolve);
            resolve();
          },
          (error: unknown) => {
            client.removeListener('end', resolve);
            reject(error);
          },
        );
      });
      return;
    }
    const response = await fetch(new URL('/api/owntracks', this.options.hubUrl), {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${phone.username}:${phone.password}`).toString('base64')}`,
        'content-type': 'application/json',
        'x-limit-u': phone.username,
        'x-limit-d': phone.device ?? 'phone',
      },
      body: payload,
    });
    if (!response.ok) throw new Error(`the hub answered ${response.status}: ${await response.text()}`);
    this.friendsSeen.set(phone.username, (await response.json()) as Array<Record<string, unknown>>);
  }

  private seconds(): number {
    return Math.floor(this.options.clock.now() / 1000);
  }
}

function topicOf(phone: SimulatedPhone): string {
  return `owntracks/${phone.username}/${phone.device ?? 'phone'}`;
}

/** The app's `location` message for a position. */
function locationMessage(phone: SimulatedPhone, at: PhonePosition, tst: number): Record<string, unknown> {
  const message: Record<string, unknown> = {
    _type: 'location',
    lat: Math.round(at.latitude * 1e6) / 1e6,
    lon: Math.round(at.longitude * 1e6) / 1e6,
    acc: Math.round(at.accuracy ?? 10),
    alt: 2,
    batt: 80,
    bs: 1,
    conn: 'm',
    tid: phone.person.slice(0, 2).toUpperCase(),
    tst,
    t: 't',
    vel: Math.round(at.speed ?? 0),
  };
  if (at.heading !== undefined) message.cog = Math.round(at.heading);
  return message;
}

/** Home before leaving, on the road (a straight line at even speed), at work, on the road back. */
export function scheduledPosition(phone: SimulatedPhone, now: number, utcOffsetMinutes = 0): PhonePosition {
  const s = phone.schedule ?? DEFAULT_SCHEDULE;
  const local = now + utcOffsetMinutes * 60_000;
  const hour = (((local % (24 * HOUR_MS)) + 24 * HOUR_MS) % (24 * HOUR_MS)) / HOUR_MS;
  if (hour < s.leaveHome || hour >= s.arriveHome) return { ...phone.home, speed: 0 };
  if (hour >= s.arriveWork && hour < s.leaveWork) return { ...phone.work, speed: 0 };
  const outbound = hour < s.arriveWork;
  const [from, to, start, end] = outbound
    ? [phone.home, phone.work, s.leaveHome, s.arriveWork]
    : [phone.work, phone.home, s.leaveWork, s.arriveHome];
  const share = (hour - start) / (end - start);
  const metres = distanceMetres(from, to);
  const heading = bearing(from, to);
  return { ...offsetPoint(from, metres * share, heading), speed: metres / 1000 / (end - start), heading };
}

function bearing(from: GeoPoint, to: GeoPoint): number {
  const r = Math.PI / 180;
  const y = Math.sin((to.longitude - from.longitude) * r) * Math.cos(to.latitude * r);
  const x =
    Math.cos(from.latitude * r) * Math.sin(to.latitude * r) -
    Math.sin(from.latitude * r) * Math.cos(to.latitude * r) * Math.cos((to.longitude - from.longitude) * r);
  return (((Math.atan2(y, x) / r) % 360) + 360) % 360;
}

/** The demo household's home and the two workplaces, in Utrecht. */
export const DEMO_HOME: GeoPoint = { latitude: 52.0907, longitude: 5.1214 };
/** Alex's office, 6 km north-east: where Alex's phone and the family car go each working day. */
export const DEMO_WORK: GeoPoint = offsetPoint(DEMO_HOME, 6_000, 60);
/** Sam's workplace, 3.5 km south-south-west. */
export const DEMO_SAM_WORK: GeoPoint = offsetPoint(DEMO_HOME, 3_500, 200);

/**
 * The places the demo people go every day, as zones a household would add for them, so their
 * presence and the car's trips read "Work" rather than just "Away". Big enough for a car park.
 */
export const DEMO_ZONES = [
  { name: 'Work', ...DEMO_WORK, radius: 150 },
  { name: "Sam's work", ...DEMO_SAM_WORK, radius: 150 },
];

/**
 * Sets up the demo people through the hub's own API, as a user would: the home location (when
 * unset), the workplaces as zones (see DEMO_ZONES), Alex (phone over MQTT) and Sam (phone over
 * HTTP), each with a tracker. `known` are the phones a previous start set up (see DemoPhoneLogin):
 * their trackers are used again, so rules and history tied to a tracker keep it. A person the user
 * removed since gets no phone again; a tracker the user removed is replaced, since a demo person
 * without one would never move.
 */
export async function provisionDemoPhones(options: {
  hubUrl: string;
  token: string;
  known?: DemoPhoneLogin[];
  log?: Logger;
}): Promise<SimulatedPhone[]> {
  const call = async <T>(path: string, method = 'GET', body?: unknown): Promise<T> => {
    const response = await fetch(new URL(path, options.hubUrl), {
      method,
      headers: { authorization: `Bearer ${options.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
    return (response.status === 204 ? undefined : await response.json()) as T;
  };
  const household = await call<{ latitude: number | null }>('/api/household');
  if (household.latitude === null)
    await call('/api/household', 'PUT', { ...DEMO_HOME, homeRadius: 100, arriveDelay: 0, leaveDelay: 120 });
  // The workplaces as zones, through the zones API as a user adds them; only at the demo's first
  // start (known phones say it set up before) into a household with no zones of its own yet, so a
  // zone the user removed or renamed is not made again, nor both when the user removed both.
  const zones = await call<Array<{ id: string; name: string }>>('/api/zones');
  if (!options.known?.length && !zones.some((zone) => zone.id !== HOME_ZONE_ID)) {
    for (const zone of DEMO_ZONES) await call('/api/zones', 'POST', zone);
  }
  type Person = { id: string; name: string; trackers: Array<{ id: string; name: string; username?: string | null }> };
  const people = await call<Person[]>('/api/people');
  const demo: Array<{ name: string; transport: SimulatedPhone['transport']; work: GeoPoint; schedule: DaySchedule }> = [
    { name: 'Alex', transport: 'mqtt', work: DEMO_WORK, schedule: DEFAULT_SCHEDULE },
    {
      name: 'Sam',
      transport: 'http',
      work: DEMO_SAM_WORK,
      schedule: { leaveHome: 8.5, arriveWork: 8.75, leaveWork: 16.5, arriveHome: 16.75 },
    },
  ];
  const phones: SimulatedPhone[] = [];
  for (const who of demo) {
    const known = options.known?.find((login) => login.person === who.name);
    let person: { id: string; trackers?: Person['trackers'] } | undefined;
    let login: { id: string; username: string; password: string } | undefined;
    if (known) {
      // By id, not name: the user may have renamed them.
      person = people.find((p) => p.id === known.personId);
      if (!person) {
        options.log?.info('a demo person was removed; the demo goes on without their phone', { person: who.name });
        continue;
      }
      const kept = (person.trackers ?? []).some((t) => t.id === known.tracker && t.username === known.username);
      if (kept) login = { id: known.tracker, username: known.username, password: known.password };
    } else {
      person =
        people.find((p) => p.name === who.name) ??
        (await call<{ id: string; trackers?: [] }>('/api/people', 'POST', { name: who.name }));
      // Set up by a demo that did not keep their logins (or whose saved state is gone): those
      // trackers' passwords are lost, so they go rather than linger as phones that never report.
      // The older name is the demo's own too, from hubs started before.
      const ours = (t: { name: string }) => t.name === phoneName(who.name) || t.name === 'demo phone';
      for (const old of (person.trackers ?? []).filter(ours)) {
        await call(`/api/people/${person.id}/trackers/${old.id}`, 'DELETE');
      }
    }
    login ??= await call<{ id: string; username: string; password: string }>(
      `/api/people/${person.id}/trackers`,
      'POST',
      { name: phoneName(who.name) },
    );
    phones.push({
      person: who.name,
      transport: who.transport,
      username: login.username,
      password: login.password,
      home: DEMO_HOME,
      work: who.work,
      schedule: who.schedule,
      personId: person.id,
      tracker: login.id,
    });
  }
  return phones;
}

/**
 * A demo phone's tracker name, after its owner: two trackers both called "demo phone" could not be
 * told apart in the dashboard's lists.
 */
function phoneName(person: string): string {
  return `${person}'s phone`;
}
