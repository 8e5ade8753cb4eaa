export { SimulatedCar, type SimulatedCarOptions } from './car.ts';
export { runCarSimulatorCommand } from './cli.ts';
export { commute, DEMO_WORK } from './route.ts';
export { CarSimulator, type CarSimulatorOptions } from './simulator.ts';
export { SpeedupClock } from './speedup-clock.ts';
