import { DeviceCard } from '../components/DeviceCard.tsx';
import { Loading } from '../components/states.tsx';
import { useLive } from '../live/context.ts';
import { roomsOf } from '../rooms.ts';
import { NoDevices } from './Overview.tsx';

export function Home() {
  const { things, loaded } = useLive();
  if (!loaded) return <Loading what="rooms and devices" />;
  const rooms = roomsOf(things.values());
  return (
    <div className="view">
      <h1>Home</h1>
      {rooms.length === 0 ? (
        <NoDevices />
      ) : (
        rooms.map((room, i) => {
          // By place, not by name: two names that differ only in punctuation must not share an id.
          const id = `room-${i}`;
          return (
            <section key={room.key} className="room" aria-labelledby={id}>
              <h2 id={id}>{room.name}</h2>
              <div className="cards">
                {room.devices.map((device) => (
                  <DeviceCard key={device.id} thing={device} controls />
                ))}
              </div>
            </section>
          );
        })
      )}
    </div>
  );
}
