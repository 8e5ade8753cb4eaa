import { useEffect, useRef } from 'react';
import type { Thing, Trip, Zone } from '../api/types.ts';
import { CommandNote } from '../components/CommandNote.tsx';
import { LockControl, PowerSwitch, Thermostat } from '../components/controls.tsx';
import { type MapMarker, type MapPoint, SvgMap } from '../components/SvgMap.tsx';
import { Empty, Loading, NotShared, Problem } from '../components/states.tsx';
import { useCommand } from '../components/use-command.ts';
import {
  boolOf,
  counted,
  findAction,
  formatAge,
  formatDistance,
  formatKwh,
  formatNumber,
  formatWhen,
  inputField,
  isOffline,
  lastSeenText,
  numberOf,
} from '../format.ts';
import { inSentence, LAST_KNOWN_POSITION, lastKnownMarkerLabel, lastReportSpoken, propertyLabel } from '../labels.ts';
import { isLastKnown, useLastReports, useNow } from '../last-report.ts';
import { useLive, useResource, useSession } from '../live/context.ts';
import { usable } from '../live/may-run.ts';
import { vehiclesOf } from '../rooms.ts';
import { ChargePlanCard } from './ChargePlan.tsx';
import { CarFacts } from './Overview.tsx';

export function Car() {
  const { things, loaded } = useLive();
  if (!loaded) return <Loading what="the car" />;
  const vehicles = vehiclesOf(things.values());
  return (
    <div className="view">
      <h1>Car</h1>
      {vehicles.length === 0 ? (
        <NoCar />
      ) : (
        vehicles.map((car) => (
          <CarPanel key={car.id} car={car} people={[...things.values()].filter((t) => t.kind === 'person')} />
        ))
      )}
    </div>
  );
}

/** No car to show: the household has none yet, or (to a guest) none was shared with them. */
function NoCar() {
  const { me } = useSession();
  if (me?.role === 'guest') return <Empty>No car is shared with you.</Empty>;
  return <Empty>No car yet. A car joins Triad through its VISS endpoint (POST /api/vehicles).</Empty>;
}

function CarPanel({ car, people }: { car: Thing; people: Thing[] }) {
  const headingId = `car-${car.id}`;
  return (
    <section className="car" aria-labelledby={headingId}>
      <header className="car-head">
        <h2 id={headingId}>{car.name}</h2>
        {isOffline(car) ? (
          <>
            <span className="badge offline">Offline</span>
            <span className="help">{lastSeenText(car)}. Its last known state is shown.</span>
          </>
        ) : null}
      </header>
      <div className="car-grid">
        <div className="card">
          <CarFacts car={car} />
          <Position car={car} />
        </div>
        <CarMap car={car} people={people} />
        {car.capabilities.includes('climate') ? (
          <div className="card">
            <h3>Climate</h3>
            <OfflineNote car={car} />
            <Preconditioning car={car} />
            <Thermostat thing={car} />
          </div>
        ) : null}
        {car.capabilities.includes('lock') ? (
          <div className="card">
            <h3>Doors</h3>
            <OfflineNote car={car} />
            <LockControl thing={car} />
          </div>
        ) : null}
        <FindMyCar car={car} />
        {car.capabilities.includes('charging') ? (
          <div className="card">
            <h3>Charging</h3>
            <OfflineNote car={car} />
            <ChargingControls car={car} />
          </div>
        ) : null}
        {car.capabilities.includes('charging') || car.capabilities.includes('battery') ? (
          <ChargePlanCard car={car} />
        ) : null}
      </div>
      <Trips car={car} />
    </section>
  );
}

/** Why a card's controls are out of use, said in the card, next to them. */
function OfflineNote({ car }: { car: Thing }) {
  if (!isOffline(car)) return null;
  return <p className="offline-note">{car.name} is offline: it cannot take commands until it is back in touch.</p>;
}

/**
 * Where the car is and how fast it goes. A car that is offline was last seen there: its position
 * says so, and its speed, which is only ever true of the moment, is not shown at all.
 */
function Position({ car }: { car: Thing }) {
  const offline = isOffline(car);
  const lat = numberOf(car, 'location.latitude');
  const lon = numberOf(car, 'location.longitude');
  const speed = offline ? null : numberOf(car, 'location.speed');
  return (
    <p className={offline ? 'position stale' : 'position'} aria-live="off">
      {offline ? LAST_KNOWN_POSITION : 'Position'}{' '}
      <span className="coordinates">
        {lat === null || lon === null ? 'unknown' : `${lat.toFixed(5)}, ${lon.toFixed(5)}`}
      </span>
      {speed ? ` · ${formatNumber(speed, 0)} km/h` : ''}
      {offline ? ` · ${lastSeenText(car)}` : ''}
    </p>
  );
}

/** Pre-conditioning as a switch: the car's own climate on/off if it has one, else its mode. */
function Preconditioning({ car }: { car: Thing }) {
  const state = useCommand(car);
  const turnOn = findAction(car, 'climate', 'turn_on') ?? findAction(car, 'climate', 'start');
  const turnOff = findAction(car, 'climate', 'turn_off') ?? findAction(car, 'climate', 'stop');
  const setMode = findAction(car, 'climate', 'set_mode');
  if (car.capabilities.includes('switch') && !turnOn) return <PowerSwitch thing={car} capability="switch" />;
  const mode = car.state['climate.mode'];
  const on =
    boolOf(car, 'climate.on') ?? boolOf(car, 'climate.hvac') ?? (typeof mode === 'string' ? mode !== 'off' : false);
  const field = setMode ? (inputField(setMode.info) ?? 'mode') : 'mode';
  const refused = state.refusal(turnOn && turnOff ? (on ? turnOff.name : turnOn.name) : setMode?.name);
  const toggle = () => {
    if (state.pending) return;
    if (turnOn && turnOff) state.run(on ? turnOff.name : turnOn.name);
    else if (setMode) state.run(setMode.name, { [field]: on ? 'off' : 'auto' });
  };
  if (!turnOn && !setMode) return null;
  return (
    <div className="control">
      <button
        type="button"
        role="switch"
        className="switch"
        aria-checked={on}
        aria-busy={state.pending}
        aria-label={`${car.name} pre-conditioning`}
        {...usable(refused, isOffline(car))}
        onClick={toggle}
      >
        <span className="switch-track" aria-hidden="true">
          <span className="switch-thumb" />
        </span>
        <span className="switch-text" aria-hidden="true">
          Pre-conditioning {on ? 'on' : 'off'}
        </span>
      </button>
      <CommandNote thing={car} state={state} refused={refused} />
    </div>
  );
}

/**
 * The charge limits offered: every ten the car's set_limit takes (0–100 % unless its input says
 * otherwise: 30 % for a long parking is one), its lowest and highest, and the car's own limit when
 * it is set to another (85 % from an app or a rule), so the menu shows what the car has rather than
 * the nearest ten. Eleven or so choices, not a hundred.
 */
function limitChoices(limit: number | null, range: { minimum?: number; maximum?: number } = {}): number[] {
  const lowest = Math.ceil(Math.max(0, range.minimum ?? 0));
  const highest = Math.floor(Math.min(100, range.maximum ?? 100));
  const choices = new Set<number>([lowest, highest]);
  for (let ten = Math.ceil(lowest / 10) * 10; ten <= highest; ten += 10) choices.add(ten);
  if (limit !== null) choices.add(Math.round(limit));
  return [...choices].sort((a, b) => a - b);
}

function ChargingControls({ car }: { car: Thing }) {
  const state = useCommand(car);
  const charging = boolOf(car, 'charging.charging');
  const action = findAction(car, 'charging', charging ? 'stop' : 'start');
  // A car with no cable in cannot start charging: the button waits for the cable, and says so.
  const unplugged = !charging && boolOf(car, 'charging.connected') === false;
  const unpluggedId = `unplugged-${car.id}`;
  const setLimit = findAction(car, 'charging', 'set_limit');
  const limit = numberOf(car, 'charging.limit');
  const field = setLimit ? (inputField(setLimit.info) ?? 'limit') : 'limit';
  const limitId = `limit-${car.id}`;
  const refused = state.refusal(action?.name);
  const refusedLimit = state.refusal(setLimit?.name);
  return (
    <div className="control">
      {action ? (
        <button
          type="button"
          aria-label={`${charging ? 'Stop' : 'Start'} charging ${car.name}`}
          aria-busy={state.pending}
          aria-describedby={unplugged ? unpluggedId : undefined}
          {...usable(refused, isOffline(car) || unplugged)}
          onClick={() => {
            if (!state.pending) state.run(action.name);
          }}
        >
          {charging ? 'Stop charging' : 'Start charging'}
        </button>
      ) : null}
      {action && unplugged && !isOffline(car) ? (
        <p id={unpluggedId} className="help">
          {car.name} is not plugged in: plug it in to charge.
        </p>
      ) : null}
      {setLimit ? (
        <div className="inline-field">
          <label htmlFor={limitId}>{propertyLabel(car, 'charging.limit')}</label>
          <select
            id={limitId}
            aria-label={`${car.name} ${inSentence(propertyLabel(car, 'charging.limit'))}`}
            value={limit === null ? '' : String(Math.round(limit))}
            {...usable(refusedLimit, isOffline(car))}
            onChange={(e) => state.run(setLimit.name, { [field]: Number(e.currentTarget.value) })}
          >
            {limit === null ? <option value="">—</option> : null}
            {limitChoices(limit, setLimit.info.input?.properties?.[field]).map((v) => (
              <option key={v} value={v}>
                {v} %
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <CommandNote thing={car} state={state} refused={refused ?? refusedLimit} />
    </div>
  );
}

/** The car's quick actions that take no input (sound the horn, flash the lights), by their own titles. */
function FindMyCar({ car }: { car: Thing }) {
  const state = useCommand(car);
  const actions = Object.entries(car.actions).filter(
    ([, info]) => info.capability === 'vehicle' && Object.keys(info.input?.properties ?? {}).length === 0,
  );
  if (actions.length === 0) return null;
  const refusals = actions.map(([name]) => state.refusal(name));
  return (
    <div className="card">
      <h3>Find the car</h3>
      <OfflineNote car={car} />
      <div className="button-row">
        {actions.map(([name, info], i) => (
          <button
            key={name}
            type="button"
            aria-label={`${info.title ?? name} of ${car.name}`}
            {...usable(refusals[i], isOffline(car))}
            onClick={() => state.run(name)}
          >
            {info.title ?? name}
          </button>
        ))}
      </div>
      <CommandNote thing={car} state={state} refused={refusals.find((why) => why !== null)} />
    </div>
  );
}

/** A trip's route, whichever of the usual spellings the car service uses for its points. */
function tripTrack(trip: Trip): MapPoint[] {
  const raw = (trip.route ?? trip.points ?? []) as unknown[];
  const out: MapPoint[] = [];
  for (const p of raw) {
    if (Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number')
      out.push({ latitude: p[0], longitude: p[1] });
    else if (p && typeof p === 'object') {
      const o = p as Record<string, unknown>;
      const latitude = o.latitude ?? o.lat;
      const longitude = o.longitude ?? o.lon ?? o.lng;
      if (typeof latitude === 'number' && typeof longitude === 'number') out.push({ latitude, longitude });
    }
  }
  return out;
}

const tripStart = (trip: Trip) => trip.start ?? trip.startedAt ?? null;

function tripDistance(trip: Trip): number | null {
  if (typeof trip.distanceKm === 'number') return trip.distanceKm * 1000;
  return trip.distanceM ?? trip.distance ?? null;
}

function startOfToday(): number {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
}

/** How often a trip under way is read again while the view is open: it grows as the car goes. */
const UNDER_WAY_REFRESH_MS = 30_000;
/** How often the list is read while the car drives but no trip under way is listed yet. */
const SETTING_OFF_REFRESH_MS = 5_000;

function useTodaysTrips(car: Thing) {
  const [trips, reload] = useResource<Trip[] | { trips: Trip[] }>(
    '/api/vehicles/{id}/trips',
    `/api/vehicles/${encodeURIComponent(car.id)}/trips`,
  );
  const list = trips.state === 'ready' ? (Array.isArray(trips.data) ? trips.data : (trips.data.trips ?? [])) : [];
  // The list changes when the car sets off and once it has parked: read again when it starts or
  // stops, and now and then while a trip is under way (it is recorded a few minutes after the stop).
  const driving = isDriving(car);
  const seen = useRef(driving);
  useEffect(() => {
    if (seen.current === driving) return;
    seen.current = driving;
    reload();
  }, [driving, reload]);
  const underWay = list.some(isUnderWay);
  // A car that just set off is not listed yet (the hub lists a trip once it has gone 100 m): read
  // again soon, so the list takes over from the live "Under way now" with where it started from.
  const refreshMs = underWay ? UNDER_WAY_REFRESH_MS : driving ? SETTING_OFF_REFRESH_MS : null;
  useEffect(() => {
    if (refreshMs === null) return;
    const timer = setInterval(reload, refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs, reload]);
  if (trips.state !== 'ready') return trips;
  const today = startOfToday();
  return { state: 'ready' as const, data: list.filter((t) => Date.parse(tripStart(t) ?? '') >= today) };
}

function CarMap({ car, people }: { car: Thing; people: Thing[] }) {
  const [zones] = useResource<Zone[]>('/api/zones', '/api/zones');
  const trips = useTodaysTrips(car);
  const markers: MapMarker[] = [];
  const lat = numberOf(car, 'location.latitude');
  const lon = numberOf(car, 'location.longitude');
  if (lat !== null && lon !== null)
    markers.push({
      kind: 'car',
      label: car.name,
      latitude: lat,
      longitude: lon,
      heading: numberOf(car, 'location.heading'),
    });
  // Someone whose phones have all gone silent is drawn where they were, said to be last known, as
  // the Overview says it; the map's name tells screen readers, who do not get the dots' labels.
  const lastReport = useLastReports(people);
  const now = useNow(people.some(isLastKnown));
  const lastKnown: string[] = [];
  for (const person of people) {
    const plat = numberOf(person, 'location.latitude');
    const plon = numberOf(person, 'location.longitude');
    if (plat === null || plon === null) continue;
    if (!isLastKnown(person)) {
      markers.push({ kind: 'person', label: person.name, latitude: plat, longitude: plon });
      continue;
    }
    const age = formatAge(lastReport(person), now);
    markers.push({
      kind: 'person',
      label: lastKnownMarkerLabel(person.name, age?.short ?? null),
      latitude: plat,
      longitude: plon,
      lastKnown: true,
    });
    lastKnown.push(lastReportSpoken(person.name, age?.spoken ?? null));
  }
  const zoneList = zones.state === 'ready' ? zones.data : [];
  const tracks = trips.state === 'ready' ? trips.data.map(tripTrack).filter((t) => t.length > 1) : [];
  const at =
    lat !== null && lon !== null ? `${isOffline(car) ? ' last seen' : ''} at ${lat.toFixed(4)}, ${lon.toFixed(4)}` : '';
  const title = [
    `Map of ${car.name}${at}, ${counted(zoneList.length, 'zone')} and ${counted(tracks.length, 'trip')} today`,
    ...lastKnown,
  ].join('; ');
  return (
    <div className="card map-card">
      {markers.length || zoneList.length ? (
        <SvgMap title={title} markers={markers} zones={zoneList} tracks={tracks} />
      ) : (
        <Empty>No position yet.</Empty>
      )}
    </div>
  );
}

/** A trip the car service lists without an end: the one the car is on. */
const isUnderWay = (trip: Trip) => !(trip.end ?? trip.endedAt);

/**
 * Whether the car is on the move, from its live state: said at once, before the trips are read
 * again (the hub lists the trip under way, and records it a few minutes after the car parks). A
 * car that is offline is not said to move: that it was moving when last seen is no news of now.
 */
function isDriving(car: Thing): boolean {
  if (isOffline(car)) return false;
  return boolOf(car, 'vehicle.moving') ?? (numberOf(car, 'location.speed') ?? 0) > 0;
}

/** Metres between two points on the earth (haversine), enough to tell which zone a point is in. */
function metresBetween(a: MapPoint, b: MapPoint): number {
  const r = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * r;
  const dLon = (b.longitude - a.longitude) * r;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * r) * Math.cos(b.latitude * r) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The zone a point is in, by name (the smallest, when zones overlap), or null when it is in none. */
function placeOf(point: MapPoint | null | undefined, zones: Zone[]): string | null {
  if (!point) return null;
  const inside = zones.filter((zone) => metresBetween(point, zone) <= zone.radius);
  inside.sort((a, b) => a.radius - b.radius);
  return inside[0]?.name ?? null;
}

/** "Home → Work", "from Home": where a trip went, in the household's zone names, where it knows them. */
function tripPlaces(trip: Trip, zones: Zone[]): string {
  const from = placeOf(trip.from, zones);
  const to = isUnderWay(trip) ? null : placeOf(trip.to, zones);
  if (from && to) return ` · ${from} → ${to}`;
  if (from) return ` · from ${from}`;
  if (to) return ` · to ${to}`;
  return '';
}

function Trips({ car }: { car: Thing }) {
  const trips = useTodaysTrips(car);
  const [zones] = useResource<Zone[]>('/api/zones', '/api/zones');
  const zoneList = zones.state === 'ready' ? zones.data : [];
  const listed = trips.state === 'ready' ? trips.data : [];
  // The car's own word that it is driving, when the list has no trip under way to say so.
  const driving = isDriving(car) && !listed.some(isUnderWay);
  const speed = numberOf(car, 'location.speed');
  return (
    <section aria-labelledby={`trips-${car.id}`}>
      <h3 id={`trips-${car.id}`}>Today's trips</h3>
      {trips.state === 'loading' ? <Loading what="trips" /> : null}
      {trips.state === 'missing' ? <Empty>Trips are not recorded on this hub.</Empty> : null}
      {trips.state === 'not-shared' ? <NotShared what="Trips are" /> : null}
      {trips.state === 'error' ? <Problem>Could not load trips: {trips.message}</Problem> : null}
      {trips.state === 'ready' && listed.length === 0 && !driving ? <Empty>No trips today.</Empty> : null}
      {trips.state === 'ready' && (listed.length > 0 || driving) ? (
        <ul className="list">
          {driving ? <li>Under way now{speed ? ` · ${formatNumber(speed, 0)} km/h` : ''}</li> : null}
          {listed.map((trip, i) => {
            const distance = tripDistance(trip);
            return (
              <li key={trip.id ?? i}>
                {isUnderWay(trip)
                  ? `${isOffline(car) ? 'Under way when last seen' : 'Under way now'} · since ${formatWhen(tripStart(trip))}`
                  : `${formatWhen(tripStart(trip))} → ${formatWhen(trip.end ?? trip.endedAt)}`}
                {tripPlaces(trip, zoneList)}
                {distance !== null ? ` · ${formatDistance(distance)}` : ''}
                {typeof trip.energyKwh === 'number' ? ` · ${formatKwh(trip.energyKwh)}` : ''}
              </li>
            );
          })}
        </ul>
      ) : null}
    </section>
  );
}
