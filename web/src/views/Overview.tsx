import type { Person, Thing } from '../api/types.ts';
import { DeviceCard } from '../components/DeviceCard.tsx';
import { Empty, Loading } from '../components/states.tsx';
import { type EnergyFlow, energyFlow } from '../energy.ts';
import { boolOf, formatDistance, formatNumber, numberOf } from '../format.ts';
import { useLive } from '../live/context.ts';
import { roomsOf, vehiclesOf } from '../rooms.ts';

export function Overview() {
  const { things, loaded } = useLive();
  if (!loaded) return <Loading what="your household" />;
  const all = [...things.values()];
  const flow = energyFlow(all);
  return (
    <div className="view">
      <h1>Overview</h1>
      <section aria-labelledby="people-heading">
        <h2 id="people-heading">People</h2>
        <PeopleList things={all} />
      </section>
      <section aria-labelledby="car-heading">
        <h2 id="car-heading">Car</h2>
        <CarSummaries vehicles={vehiclesOf(all)} />
      </section>
      {flow ? (
        <section aria-labelledby="energy-heading">
          <h2 id="energy-heading">Energy now</h2>
          <EnergyFlowView flow={flow} />
        </section>
      ) : null}
      <section aria-labelledby="rooms-heading">
        <h2 id="rooms-heading">Rooms</h2>
        <RoomsAtAGlance things={all} />
      </section>
    </div>
  );
}

/** People from the live things (kind `person`): their presence updates on the stream. */
function PeopleList({ things }: { things: Thing[] }) {
  const people = things.filter((t) => t.kind === 'person').sort((a, b) => a.name.localeCompare(b.name));
  const household = things.find((t) => t.kind === 'household');
  if (people.length === 0)
    return <Empty>No people yet. Add someone with POST /api/people and a phone running OwnTracks.</Empty>;
  const anyoneHome = boolOf(household, 'presence.anyone_home');
  return (
    <>
      {anyoneHome !== null ? <p className="summary">{anyoneHome ? 'Someone is home.' : 'Everyone is away.'}</p> : null}
      <ul className="people">
        {people.map((person) => (
          <li key={person.id} className="card person">
            <span className={`dot ${person.state['presence.home'] ? 'home' : 'away'}`} aria-hidden="true" />
            <span className="person-name">{person.name}</span>
            <span className="person-where">{presenceWords(person)}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

export function presenceWords(person: Thing | Person): string {
  const zone = 'state' in person ? person.state['presence.zone'] : person.presence.zone;
  const home = 'state' in person ? person.state['presence.home'] : person.presence.home;
  if (home === true) return 'Home';
  if (typeof zone === 'string' && zone) return `At ${zone}`;
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
          <CarFacts car={car} />
        </li>
      ))}
    </ul>
  );
}

/** Charge, range, lock and charging in a few words each. */
export function CarFacts({ car }: { car: Thing }) {
  const soc = numberOf(car, 'battery.level');
  const range = numberOf(car, 'battery.range');
  const locked = boolOf(car, 'lock.locked');
  const charging = boolOf(car, 'charging.charging');
  const connected = boolOf(car, 'charging.connected');
  const power = numberOf(car, 'charging.power');
  return (
    <dl className="facts">
      <div>
        <dt>Charge</dt>
        <dd>
          {soc === null ? '—' : `${formatNumber(soc, 0)} %`}
          {soc !== null ? (
            <meter min={0} max={100} low={20} high={80} optimum={100} value={soc} aria-label={`${car.name} charge`} />
          ) : null}
        </dd>
      </div>
      <div>
        <dt>Range</dt>
        <dd>{range === null ? '—' : formatDistance(range)}</dd>
      </div>
      <div>
        <dt>Doors</dt>
        <dd>{locked === null ? '—' : locked ? 'Locked' : 'Unlocked'}</dd>
      </div>
      <div>
        <dt>Charging</dt>
        <dd>
          {charging
            ? `Charging${power !== null ? ` at ${formatNumber(power)} kW` : ''}`
            : connected
              ? 'Plugged in'
              : connected === false
                ? 'Not plugged in'
                : '—'}
        </dd>
      </div>
    </dl>
  );
}

function EnergyFlowView({ flow }: { flow: EnergyFlow }) {
  const kw = (w: number | null) => (w === null ? '—' : `${formatNumber(w / 1000, 2)} kW`);
  const grid = flow.grid === null ? '—' : flow.grid >= 0 ? `${kw(flow.grid)} in` : `${kw(-flow.grid)} out`;
  return (
    <dl className="facts energy">
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
    </dl>
  );
}

function RoomsAtAGlance({ things }: { things: Thing[] }) {
  const rooms = roomsOf(things);
  if (rooms.length === 0)
    return <Empty>No devices yet. Devices appear here as they announce themselves over MQTT.</Empty>;
  return (
    <div className="rooms">
      {rooms.map((room) => (
        <section key={room.name} className="room" aria-label={room.name}>
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
