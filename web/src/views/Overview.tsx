import type { Person, Thing } from '../api/types.ts';
import { chargingWords, DeviceCard } from '../components/DeviceCard.tsx';
import { Empty, Loading } from '../components/states.tsx';
import { type EnergyFlow, energyFlow, kilowatts as kw, type LastKnownCharge, surplusWords } from '../energy.ts';
import {
  boolOf,
  formatAge,
  formatDistance,
  formatNumber,
  formatTime,
  isOffline,
  lastSeenText,
  numberOf,
} from '../format.ts';
import { booleanText, inSentence, lastReportSpoken, lastReportWords, propertyLabel } from '../labels.ts';
import { isLastKnown, useLastReports, useNow } from '../last-report.ts';
import { useLive, useSession } from '../live/context.ts';
import { roomsOf, vehiclesOf } from '../rooms.ts';

export function Overview() {
  const { things, loaded } = useLive();
  const { me } = useSession();
  if (!loaded) return <Loading what="your household" />;
  const all = [...things.values()];
  const energy = energyFlow(all);
  // A guest sees only what their pass gives them; empty sections about the rest would only puzzle.
  const guest = me?.role === 'guest';
  const showPeople = !guest || all.some((t) => t.kind === 'person');
  const showCar = !guest || vehiclesOf(all).length > 0;
  return (
    <div className="view">
      <h1>Overview</h1>
      {showPeople ? (
        <section aria-labelledby="people-heading">
          <h2 id="people-heading">People</h2>
          <PeopleList things={all} />
        </section>
      ) : null}
      {showCar ? (
        <section aria-labelledby="car-heading">
          <h2 id="car-heading">Car</h2>
          <CarSummaries vehicles={vehiclesOf(all)} />
        </section>
      ) : null}
      {energy ? (
        <section aria-labelledby="energy-heading">
          <h2 id="energy-heading">Energy now</h2>
          {energy.metered ? (
            <EnergyFlowView flow={energy.flow} lastKnown={energy.lastKnown} />
          ) : (
            <Empty>
              No meters are set for the site yet. Choose the grid, solar and house meters with PUT /api/energy/site.
            </Empty>
          )}
        </section>
      ) : null}
      <section aria-labelledby="rooms-heading">
        <h2 id="rooms-heading">Rooms</h2>
        <RoomsAtAGlance things={all} />
      </section>
    </div>
  );
}

/**
 * People from the live things (kind `person`): their presence updates on the stream. Someone whose
 * phones have all gone silent (the hub marks them offline once every tracker is stale) keeps the
 * presence last decided, shown as last known with when the last report came (see useLastReports).
 */
function PeopleList({ things }: { things: Thing[] }) {
  const people = things.filter((t) => t.kind === 'person').sort((a, b) => a.name.localeCompare(b.name));
  const household = things.find((t) => t.kind === 'household');
  const lastReport = useLastReports(people);
  if (people.length === 0)
    return <Empty>No people yet. Add someone with POST /api/people and a phone running OwnTracks.</Empty>;
  const anyoneHome = boolOf(household, 'presence.anyone_home');
  const zoneNames = new Map(things.filter((t) => t.kind === 'zone').map((zone) => [zone.id, zone.name]));
  return (
    <>
      {anyoneHome !== null ? <p className="summary">{anyoneHome ? 'Someone is home.' : 'Everyone is away.'}</p> : null}
      <ul className="people">
        {people.map((person) => {
          const stale = isLastKnown(person);
          return (
            <li key={person.id} className={stale ? 'card person stale' : 'card person'}>
              <span className={`dot ${person.state['presence.home'] ? 'home' : 'away'}`} aria-hidden="true" />
              <span className="person-name">{person.name}</span>
              <span className="person-where">
                {stale ? (
                  <LastKnownWhere where={presenceWords(person, zoneNames)} lastReport={lastReport(person)} />
                ) : (
                  presenceWords(person, zoneNames)
                )}
              </span>
            </li>
          );
        })}
      </ul>
    </>
  );
}

/**
 * "Home · last report 14 h ago": where someone was when their phones last reported, and how long
 * ago that was (the time itself on hover), in words with the units spelt out for screen readers.
 * In a narrow card the line breaks after "Home ·", not inside "last report 14 h ago".
 */
function LastKnownWhere({ where, lastReport }: { where: string; lastReport: string | null }) {
  const age = formatAge(lastReport, useNow());
  return (
    <>
      <span aria-hidden="true">
        {where} ·{' '}
        {lastReport && age ? (
          <time className="last-report" dateTime={lastReport} title={formatTime(lastReport)}>
            {lastReportWords(age.short)}
          </time>
        ) : (
          <span className="last-report">{lastReportWords(null)}</span>
        )}
      </span>
      <span className="visually-hidden">{lastReportSpoken(where, age ? age.spoken : null)}</span>
    </>
  );
}

/**
 * Where someone is, in words: "Home", "At Work" (the zone by its name, as the household gave it;
 * `presence.zone` holds the zone's id), "Away".
 */
export function presenceWords(person: Thing | Person, zoneNames: ReadonlyMap<string, string> = new Map()): string {
  const zone = 'state' in person ? person.state['presence.zone'] : person.presence.zone;
  const home = 'state' in person ? person.state['presence.home'] : person.presence.home;
  if (home === true) return 'Home';
  if (typeof zone === 'string' && zone) return `At ${zoneNames.get(zone) ?? zone}`;
  if (home === false) return 'Away';
  return 'Unknown';
}

function CarSummaries({ vehicles }: { vehicles: Thing[] }) {
  if (vehicles.length === 0) return <Empty>No car yet. A car joins Triad through its VISS endpoint.</Empty>;
  return (
    <ul className="cards">
      {vehicles.map((car) => (
        <li key={car.id} className="card">
          <h3>{car.name}</h3>
          {isOffline(car) ? (
            <p className="car-seen">
              <span className="badge offline">Offline</span> <span className="help">{lastSeenText(car)}</span>
            </p>
          ) : null}
          <CarFacts car={car} />
        </li>
      ))}
    </ul>
  );
}

/**
 * Charge, range, lock and charging in a few words each, under the names every view gives them. A
 * car that is offline shows them greyed, as last known; a charging power would only be true of
 * that moment, so it is left out ("Charging", not "Charging at 11 kW").
 */
export function CarFacts({ car }: { car: Thing }) {
  const label = (property: string) => propertyLabel(car, property);
  const offline = isOffline(car);
  const soc = numberOf(car, 'battery.level');
  const range = numberOf(car, 'battery.range');
  const locked = boolOf(car, 'lock.locked');
  const charging = chargingWords(
    offline ? { ...car, state: { ...car.state, 'charging.power': null } } : car,
    'Not plugged in',
  );
  return (
    <dl className={offline ? 'facts stale' : 'facts'}>
      <div>
        <dt>{label('battery.level')}</dt>
        <dd>
          {soc === null ? '—' : `${formatNumber(soc, 0)} %`}
          {soc !== null ? (
            <meter
              min={0}
              max={100}
              low={20}
              high={80}
              optimum={100}
              value={soc}
              aria-label={`${car.name} ${inSentence(label('battery.level'))}`}
            />
          ) : null}
        </dd>
      </div>
      <div>
        <dt>{label('battery.range')}</dt>
        <dd>{range === null ? '—' : formatDistance(range)}</dd>
      </div>
      <div>
        <dt>{label('lock.locked')}</dt>
        <dd>{locked === null ? '—' : booleanText('lock.locked', locked)}</dd>
      </div>
      <div>
        <dt>{label('charging.charging')}</dt>
        <dd>{charging ?? '—'}</dd>
      </div>
    </dl>
  );
}

/**
 * The site's power as a picture (sources above and left, uses right and below, arrows the way the
 * power flows, thicker for more) and as a list of figures, which is what screen readers get.
 */
function EnergyFlowView({ flow, lastKnown }: { flow: EnergyFlow; lastKnown: LastKnownCharge[] }) {
  const grid = flow.grid === null ? '—' : flow.grid >= 0 ? `${kw(flow.grid)} in` : `${kw(-flow.grid)} out`;
  const battery =
    flow.battery === null ? null : flow.battery >= 0 ? `${kw(flow.battery)} charging` : `${kw(-flow.battery)} out`;
  return (
    <div className="energy-flow">
      <FlowPicture flow={flow} />
      <dl className="facts energy" aria-label="Power now">
        <div>
          <dt>Solar</dt>
          <dd>{kw(flow.solar)}</dd>
        </div>
        <div>
          <dt>Grid</dt>
          <dd>{grid}</dd>
        </div>
        <div>
          <dt>House</dt>
          <dd>{kw(flow.house)}</dd>
        </div>
        <div>
          <dt>Car</dt>
          <dd>{kw(flow.car)}</dd>
        </div>
        {battery !== null ? (
          <div>
            <dt>Battery</dt>
            <dd>{battery}</dd>
          </div>
        ) : null}
        {flow.surplus !== null ? (
          <div>
            <dt>Surplus</dt>
            <dd>{surplusWords(flow.surplus)}</dd>
          </div>
        ) : null}
      </dl>
      {lastKnown.map((car) => (
        <p key={car.name} className="help energy-last-known">
          <span className="badge offline">Offline</span> {car.name} was charging at {kw(car.watts)} when last heard from
          ({car.seen.charAt(0).toLowerCase() + car.seen.slice(1)}); not counted in the figures above.
        </p>
      ))}
    </div>
  );
}

/** Node positions in a 240 × 150 box; the hub of the picture is its middle. */
const NODES = {
  solar: { x: 120, y: 18, label: 'Solar' },
  grid: { x: 28, y: 75, label: 'Grid' },
  house: { x: 212, y: 75, label: 'House' },
  car: { x: 120, y: 132, label: 'Car' },
  battery: { x: 28, y: 132, label: 'Battery' },
} as const;
const CENTRE = { x: 120, y: 75 };

function FlowPicture({ flow }: { flow: EnergyFlow }) {
  // Power into the middle is positive: solar, grid import, battery discharge; the house and car draw out.
  const links: Array<{ node: keyof typeof NODES; watts: number | null }> = [
    { node: 'solar', watts: flow.solar },
    { node: 'grid', watts: flow.grid },
    { node: 'house', watts: flow.house === null ? null : -flow.house },
    { node: 'car', watts: flow.car === null ? null : -flow.car },
    // A charging battery draws from the middle; a discharging one feeds it.
    ...(flow.battery !== null ? [{ node: 'battery' as const, watts: -flow.battery }] : []),
  ];
  const most = Math.max(1, ...links.map((l) => Math.abs(l.watts ?? 0)));
  return (
    <svg className="flow-picture" viewBox="0 0 240 150" aria-hidden="true" focusable="false">
      <defs>
        <marker
          id="flow-arrow"
          viewBox="0 0 10 10"
          refX="8"
          refY="5"
          markerUnits="userSpaceOnUse"
          markerWidth="9"
          markerHeight="9"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" className="flow-arrow" />
        </marker>
      </defs>
      {links.map(({ node, watts }) => {
        const at = NODES[node];
        const idle = watts === null || Math.abs(watts) < 5;
        const inward = (watts ?? 0) > 0;
        const [from, to] = inward ? [at, CENTRE] : [CENTRE, at];
        // Stop short of the labels so the arrow heads stay visible.
        const cut = (a: { x: number; y: number }, b: { x: number; y: number }, by: number) => {
          const length = Math.hypot(b.x - a.x, b.y - a.y) || 1;
          return { x: a.x + ((b.x - a.x) * by) / length, y: a.y + ((b.y - a.y) * by) / length };
        };
        const start = cut(from, to, from === CENTRE ? 8 : node === 'grid' || node === 'house' ? 28 : 16);
        // Side labels are wider than they are tall: keep the arrow head clear of them.
        const end = cut(to, from, to === CENTRE ? 8 : node === 'grid' || node === 'house' ? 28 : 18);
        return (
          <line
            key={node}
            x1={start.x}
            y1={start.y}
            x2={end.x}
            y2={end.y}
            className={idle ? 'flow-line idle' : `flow-line ${node}`}
            strokeWidth={idle ? 1 : 1.5 + 4 * (Math.abs(watts ?? 0) / most)}
            markerEnd={idle ? undefined : 'url(#flow-arrow)'}
          />
        );
      })}
      <circle cx={CENTRE.x} cy={CENTRE.y} r={6} className="flow-centre" />
      {links.map(({ node, watts }) => {
        const at = NODES[node];
        return (
          <g key={node}>
            <text x={at.x} y={at.y - 2} textAnchor="middle" className="flow-label">
              {at.label}
            </text>
            <text x={at.x} y={at.y + 10} textAnchor="middle" className="flow-value">
              {watts === null ? '—' : kw(Math.abs(watts))}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** No devices to show: the household has none yet, or (to a guest) none was shared with them. */
export function NoDevices() {
  const { me } = useSession();
  if (me?.role === 'guest') return <Empty>No devices are shared with you.</Empty>;
  return <Empty>No devices yet. Devices appear here as they announce themselves over MQTT.</Empty>;
}

function RoomsAtAGlance({ things }: { things: Thing[] }) {
  const rooms = roomsOf(things);
  if (rooms.length === 0) return <NoDevices />;
  return (
    <div className="rooms">
      {rooms.map((room) => (
        <section key={room.key} className="room" aria-label={room.name}>
          <h3>{room.name}</h3>
          <ul className="glance">
            {room.devices.map((device) => (
              <li key={device.id}>
                <DeviceCard thing={device} controls={false} />
              </li>
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}
