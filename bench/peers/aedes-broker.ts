// Triad's own embedded broker (aedes) alone in a process, so its relay is a floor with its own CPU.
import { EmbeddedBroker } from '../../src/adapters/mqtt/broker.ts';

const broker = new EmbeddedBroker({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1' });
await broker.start();
process.stdout.write(`aedes listening on ${broker.port}\n`);
const stop = () => {
  void broker.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
