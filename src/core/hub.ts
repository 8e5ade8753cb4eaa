import { mkdir, readFile, rmdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Adapter } from '../adapters/adapter.ts';
import { EmbeddedBroker } from '../adapters/mqtt/broker.ts';
import { MqttConnection, type MqttLink } from '../adapters/mqtt/connection.ts';
import { HouseholdDiscovery, householdLink } from '../adapters/mqtt/households.ts';
import { RetainedStore } from '../adapters/mqtt/retained-store.ts';
import { createApiServer, type RouteModule } from '../api/server.ts';
import { HOUSEHOLDS_TOPIC_ROOT, householdNamespace } from '../auth/devices.ts';
import type { RateLimit } from '../auth/rate-limit.ts';
import { securityRoutes } from '../auth/routes.ts';
import { Security } from '../auth/security.ts';
import { TokenService } from '../auth/tokens.ts';
import { DemoHousehold } from '../sim/demo.ts';
import { openStore } from '../store/index.ts';
import { keepDatabasePrivate } from '../store/sqlite.ts';
import type { Household, Store } from '../store/store.ts';
import { LocalBus } from './bus.ts';
import { type Clock, SystemClock, VirtualClock } from './clock.ts';
import { CommandService } from './commands.ts';
import { HubCore } from './core.ts';
import { DataLock } from './data-lock.ts';
import { HubError } from './errors.ts';
import { HistoryWriter } from './history.ts';
import { ensureDefaultHousehold, ensureHouseholdThing, ensureOwnerToken } from './households.ts';
import { newId } from './ids.ts';
import { urlHost } from './listen-address.ts';
import { createLogger, type Logger, type LogLevel } from './log.ts';
import { TwinRegistry } from './twin.ts';
import { VERSION } from './version.ts';

/** Where the hub's MQTT comes from, as flags and the config file give it (see HubOptions.mqtt). */
export interface MqttOptions {
  port?: number;
  host?: string;
  url?: string;
  username?: string;
  password?: string;
  allowAnonymous?: boolean;
  tlsPort?: number;
}

export type StoreChoice =
  | {
      kind: 'sqlite';
      file?: string;
      /** Where SQLite's bulk writes run: a thread of their own (default), or inline (one core). */
      writer?: 'thread' | 'inline';
    }
  | { kind: 'postgres'; url: string; schema?: string };

export interface HubOptions {
  dataDir: string;
  /**
   * `trustProxy`: the reverse proxies (addresses, CIDR ranges, `loopback`…) whose X-Forwarded-*
   * headers say the client's address, scheme and host; nobody's when unset.
   */
  http?: { port?: number; host?: string; trustProxy?: string[] };
  /**
   * The embedded broker's port, or the URL of an external broker to use instead (its own auth
   * applies; `username`/`password` are the hub's login there). The embedded broker requires
   * credentials unless `allowAnonymous`; `tlsPort` adds mqtts with the `tls` files.
   */
  mqtt?: MqttOptions;
  /** PEM certificate and key files: HTTPS and WSS for the API, mqtts for the embedded broker. */
  tls?: { cert: string; key: string };
  /**
   * Rate limits (tests and benchmarks raise them): per token (`api`), per name and address
   * (`signIn`), and per address for tokens nobody has (`unknownTokens`).
   */
  rateLimits?: { api?: RateLimit; signIn?: RateLimit; unknownTokens?: RateLimit };
  store?: StoreChoice;
  /** Also start the simulated household, speaking the real protocols (see createTriad). */
  demo?: boolean;
  /** With `demo`: the simulated car also runs errands this often, so it is seen driving soon. */
  demoCarErrands?: { firstAfterMs: number; parkMs: number };
  clock?: Clock;
  log?: Logger;
  logLevel?: LogLevel;
  /** How long a device has to confirm a command. */
  commandTimeoutMs?: number;
  householdName?: string;
}

/** What a subsystem (automations, people, car, energy…) is handed when the hub starts it. */
export interface HubServices {
  clock: Clock;
  bus: LocalBus;
  log: Logger;
  store: Store;
  twins: TwinRegistry;
  core: HubCore;
  commands: CommandService;
  history: HistoryWriter;
  tokens: TokenService;
  /** Accounts, permissions, the audit trail and broker accounts; subsystems add broker logins here. */
  security: Security;
  /** The hub's MQTT connection (embedded or external broker), every household's topics as they are on the wire. */
  mqtt: MqttLink;
  /**
   * The MQTT link as one household sees it: its own topics by their plain names, none of another
   * household's (what a household's rules and subscriptions must use).
   */
  mqttFor(householdId: string): MqttLink;
  mqttUrl: string;
  /** The default household (one until accounts exist). */
  householdId: string;
  dataDir: string;
  /** Registers and starts another adapter, so commands to its things find their way. */
  addAdapter(adapter: Adapter): Promise<void>;
  /** The API's address; set once the API listens (see Subsystem.listening). */
  httpUrl: string;
  /** The first owner's token (the demo uses it to set itself up through the real API). */
  ownerToken: string;
  /** With `--demo` and the embedded broker: the simulated devices' broker login, made at start. */
  demoMqttLogin?: { username: string; password: string };
}

/**
 * A part of Triad with a lifecycle: started after the core and adapters, before the API opens,
 * stopped before them. Its routes join the API.
 */
export interface Subsystem {
  readonly name: string;
  start(hub: HubServices): Promise<void>;
  stop(): Promise<void>;
  routes?: RouteModule;
  /** Runs once the API listens, for parts that call it from outside (the demo's phones). */
  listening?(hub: HubServices): Promise<void>;
}

export const DEFAULT_HTTP_PORT = 8780;
export const DEFAULT_MQTT_PORT = 1883;

/**
 * The composition root: the one place where the store, bus, twin, adapters and API are built and
 * wired. Nothing else creates a subsystem; everything else is handed what it needs.
 */
export class Hub {
  readonly clock: Clock;
  readonly log: Logger;
  readonly bus: LocalBus;
  readonly twins = new TwinRegistry();
  store!: Store;
  core!: HubCore;
  commands!: CommandService;
  history!: HistoryWriter;
  tokens!: TokenService;
  security!: Security;
  ownerToken = '';
  ownerTokenPath = '';
  householdId = '';
  httpUrl = '';
  mqttUrl = '';
  private readonly adapters = new Map<string, Adapter>();
  private broker: EmbeddedBroker | null = null;
  private mqtt: MqttConnection | null = null;
  private discovery: HouseholdDiscovery | null = null;
  private demoMqttLogin: { username: string; password: string } | undefined;
  private api: FastifyInstance | null = null;
  private routeModules: RouteModule[] = [];
  private readonly subsystems: Subsystem[] = [];
  private readonly started: Subsystem[] = [];
  private stopped = false;
  /** This hub's hold on its data folder (see DataLock). */
  private dataLock: DataLock | null = null;
  /** The outermost folder start() had to create for the data folder, or undefined if it existed. */
  private createdDataDir: string | undefined;
  /** Stops a virtual clock waiting for this hub's store (see waitAlsoFor), once the store is closed. */
  private unwaitClock: (() => void) | null = null;

  constructor(private readonly options: HubOptions) {
    this.clock = options.clock ?? new SystemClock();
    this.log = options.log ?? createLogger({ level: options.logLevel ?? 'info' });
    this.bus = new LocalBus((error, event) => this.log.error('event handler failed', { type: event.type, error }));
  }

  /** Adds API routes from another subsystem; call before start(). */
  addRoutes(module: RouteModule): void {
    this.routeModules.push(module);
  }

  /** Adds a subsystem; call before start(). */
  use(subsystem: Subsystem): this {
    this.subsystems.push(subsystem);
    return this;
  }

  /** The services subsystems are handed; valid once start() has begun. */
  get services(): HubServices {
    const mqtt = this.mqtt;
    if (!mqtt) throw new Error('the hub has not started');
    return {
      clock: this.clock,
      bus: this.bus,
      log: this.log,
      store: this.store,
      twins: this.twins,
      core: this.core,
      commands: this.commands,
      history: this.history,
      tokens: this.tokens,
      security: this.security,
      mqtt,
      mqttFor: (householdId) =>
        householdLink(mqtt, householdNamespace(householdId, this.householdId), `${HOUSEHOLDS_TOPIC_ROOT}/`),
      mqttUrl: this.mqttUrl,
      householdId: this.householdId,
      dataDir: this.options.dataDir,
      addAdapter: (adapter) => this.addAdapter(adapter),
      httpUrl: this.httpUrl,
      ownerToken: this.ownerToken,
      demoMqttLogin: this.demoMqttLogin,
    };
  }

  private async addAdapter(adapter: Adapter): Promise<void> {
    if (this.adapters.has(adapter.name)) throw new Error(`an adapter named ${adapter.name} is already registered`);
    this.adapters.set(adapter.name, adapter);
    await adapter.start(this.core.contextFor(this.log.child(adapter.name)));
  }

  async start(): Promise<void> {
    const { options, log, clock, bus, twins } = this;
    const httpPort = options.http?.port ?? DEFAULT_HTTP_PORT;
    const httpHost = options.http?.host ?? '0.0.0.0';
    await assertPortFree(httpPort, httpHost, 'HTTP', '--http-port');
    const mqttPort = options.mqtt?.url ? null : await this.chooseMqttPort();
    // A folder Triad makes is for its user alone (tokens, a car's password, where everyone was);
    // one the user made keeps the mode they gave it, shared on purpose or not.
    this.createdDataDir = await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    // Before anything in the folder is opened: a second hub on it would run every rule twice.
    this.dataLock = await DataLock.take(options.dataDir, new Date(clock.now()));

    const storeChoice = options.store ?? { kind: 'sqlite' };
    const storeFile = storeChoice.kind === 'sqlite' ? (storeChoice.file ?? join(options.dataDir, 'triad.db')) : '';
    // Before SQLite opens it: it would create it readable by everyone (0644).
    const narrowed = storeFile ? keepDatabasePrivate(storeFile) : [];
    this.store =
      storeChoice.kind === 'postgres'
        ? await openStore({ kind: 'postgres', url: storeChoice.url, schema: storeChoice.schema })
        : await openStore({
            kind: 'sqlite',
            file: storeFile,
            writer: storeChoice.writer,
          });
    const store = this.store;
    // On a virtual clock (tests, simulations), time moves on only once the store's writes are in.
    if (clock instanceof VirtualClock && store.settled)
      this.unwaitClock = clock.waitAlsoFor(() => store.settled?.() ?? Promise.resolve());
    this.commands = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: this.adapters,
      log: log.child('commands'),
      defaultTimeoutMs: options.commandTimeoutMs ?? 30_000,
    });
    const history = new HistoryWriter({ bus, store, clock, log: log.child('history') });
    this.history = history;
    this.history.start();
    this.core = new HubCore({
      clock,
      bus,
      store,
      twins,
      commands: this.commands,
      log: log.child('core'),
      flushHistory: () => history.flush(),
    });
    this.tokens = new TokenService({ store, clock });
    await this.tokens.load();
    await this.core.load();

    const household = await ensureDefaultHousehold({ store, core: this.core, clock, name: options.householdName });
    this.householdId = household.id;
    this.security = new Security({
      store,
      tokens: this.tokens,
      clock,
      bus,
      twins,
      commands: this.commands,
      log: log.child('security'),
      defaultHouseholdId: household.id,
      mqttAllowAnonymous: options.mqtt?.allowAnonymous,
      apiRate: options.rateLimits?.api,
      signInRate: options.rateLimits?.signIn,
      unknownTokenRate: options.rateLimits?.unknownTokens,
    });
    await this.security.start();
    const owner = await ensureOwnerToken({ dataDir: options.dataDir, tokens: this.tokens, householdId: household.id });
    this.ownerToken = owner.token;
    this.ownerTokenPath = owner.path;
    await this.security.ensureOwnerAccount(household.id, options.dataDir);
    if (options.demo && mqttPort !== null) this.demoMqttLogin = this.security.demoDeviceLogin();
    this.routeModules.push(
      securityRoutes({
        security: this.security,
        createHousehold: (name) => this.createHousehold(name),
        listHouseholds: () => store.listHouseholds(),
      }),
    );
    const tls = options.tls
      ? { cert: await readFile(options.tls.cert), key: await readFile(options.tls.key) }
      : undefined;

    // The broker's file only once the store is open: a start that fails on its store (a mistyped
    // --pg-url) leaves a folder it made empty, to be removed.
    if (mqttPort !== null) narrowed.push(...keepDatabasePrivate(join(options.dataDir, 'broker-retained.db')));
    if (narrowed.length > 0)
      log.info('the database was readable by other users of this machine; it is now readable by this user only', {
        files: narrowed,
      });
    await this.startMqtt(mqttPort);
    await this.commands.resume();
    if (options.demo && !this.subsystems.some((s) => s.name === 'demo')) {
      this.use(
        new DemoHousehold({
          phones: this.subsystems.some((s) => s.name === 'people'),
          carErrands: options.demoCarErrands,
        }),
      );
    }
    for (const subsystem of this.subsystems) {
      await subsystem.start(this.services);
      this.started.push(subsystem);
      if (subsystem.routes) this.routeModules.push(subsystem.routes);
    }

    this.api = await createApiServer({
      ctx: {
        core: this.core,
        twins,
        commands: this.commands,
        history: this.history,
        store,
        tokens: this.tokens,
        bus,
        clock,
        log: log.child('api'),
        version: VERSION,
        security: this.security,
      },
      modules: this.routeModules,
      tls,
      trustProxy: options.http?.trustProxy,
    });
    await this.api.listen({ port: httpPort, host: httpHost }).catch((error: NodeJS.ErrnoException) => {
      throw portError(error, httpPort, 'HTTP', '--http-port');
    });
    const address = this.api.server.address();
    const boundPort = typeof address === 'object' && address ? address.port : httpPort;
    this.httpUrl = `${tls ? 'https' : 'http'}://${urlHost(httpHost)}:${boundPort}`;

    for (const subsystem of this.started) await subsystem.listening?.(this.services);
  }

  /**
   * The embedded broker's port. A port the user chose must be free (a clear error otherwise). The
   * default 1883 is often held by a broker already on the machine; then the hub takes a free port
   * and says so, so `npm start` works on any machine.
   */
  private async chooseMqttPort(): Promise<number> {
    const host = this.options.mqtt?.host ?? '0.0.0.0';
    const chosen = this.options.mqtt?.port;
    if (chosen !== undefined) {
      await assertPortFree(chosen, host, 'MQTT', '--mqtt-port or --mqtt-url');
      return chosen;
    }
    try {
      await assertPortFree(DEFAULT_MQTT_PORT, host, 'MQTT', '--mqtt-port or --mqtt-url');
      return DEFAULT_MQTT_PORT;
    } catch (error) {
      if (!(error instanceof HubError) || error.code !== 'port_in_use') throw error;
      this.log.warn(
        `MQTT port ${DEFAULT_MQTT_PORT} is already in use (another broker?); the embedded broker takes a free port instead. Choose one with --mqtt-port, or use that broker with --mqtt-url`,
      );
      return 0;
    }
  }

  private async startMqtt(mqttPort: number | null): Promise<void> {
    const { options, log } = this;
    if (options.mqtt?.url || mqttPort === null) {
      this.mqttUrl = options.mqtt?.url ?? '';
    } else {
      const port = mqttPort;
      const security = this.security;
      const tlsPort = options.mqtt?.tlsPort;
      if (tlsPort !== undefined && !options.tls)
        throw new HubError(1, 'tls_missing', '--mqtts-port needs --tls-cert and --tls-key');
      // The broker's retained messages (devices' discovery configs, their last states) outlive a
      // restart, as a standalone broker's do.
      const retained = openRetained(join(options.dataDir, 'broker-retained.db'), log);
      this.broker = new EmbeddedBroker({
        port,
        host: options.mqtt?.host ?? '0.0.0.0',
        authenticate: (_clientId, username, password) => security.broker.authenticate(username, password),
        tls: tlsPort !== undefined && options.tls ? { port: tlsPort, ...options.tls } : undefined,
        retained,
        log: log.child('broker'),
        accountFor: (topic) => security.broker.accountFor(topic),
        accountSession: (account) => security.broker.accountSession(account),
      });
      await this.broker.start().catch((error: NodeJS.ErrnoException) => {
        retained?.close();
        throw portError(error, port, 'MQTT', '--mqtt-port or --mqtt-url');
      });
      this.mqttUrl = this.broker.url;
    }
    // On the embedded broker the hub logs in with a credential made for this run only.
    const login = this.broker
      ? this.security.broker.hubLogin
      : { username: options.mqtt?.username, password: options.mqtt?.password };
    this.mqtt = new MqttConnection({
      url: this.mqttUrl,
      clientId: `triad-hub-${process.pid}-${Date.now().toString(36)}`,
      ...login,
    });
    await this.mqtt.connect();
    const broker = this.broker;
    this.discovery = new HouseholdDiscovery({
      linkFor: (id) => this.services.mqttFor(id),
      // Only the embedded broker knows which account sent a config; behind --mqtt-url every
      // config is taken as the hub's trusted side's.
      ...(broker && {
        announcer: (id: string, topic: string) =>
          broker.announcer((householdNamespace(id, this.householdId) ?? '') + topic),
      }),
    });
    for (const household of await this.store.listHouseholds()) await this.discovery.addHousehold(household.id);
    await this.addAdapter(this.discovery);
    log.info('MQTT ready', { url: this.mqttUrl, embedded: this.broker !== null });
  }

  /**
   * A new household on this hub: its household thing, an owner account and the first owner
   * token, and its own MQTT namespace with discovery, so its devices and phones can start at once.
   */
  async createHousehold(name: string): Promise<{ household: Household; token: string }> {
    const now = this.clock.now();
    const household: Household = { id: newId(now, 'hh_'), name, settings: {}, createdAt: now };
    await this.store.saveHousehold(household);
    await ensureHouseholdThing(this.core, household.id, name);
    const owner = await this.security.accounts.createUser({
      householdId: household.id,
      name: 'owner',
      role: 'owner',
      password: null,
    });
    const { secret } = await this.tokens.create({
      householdId: household.id,
      userId: owner.id,
      role: 'owner',
      name: 'owner (first token)',
    });
    await this.discovery?.addHousehold(household.id);
    return { household, token: secret };
  }

  /** Stops everything in the reverse order of start, committing history on the way out. */
  /**
   * After a start that failed (and stop): removes the data folder again if that start created it
   * and nothing is left in it, so a mistyped --pg-url or a busy port does not leave an empty folder
   * behind. Each folder from the data folder up to the first one created goes only if it is empty.
   */
  async removeUnusedDataFolder(): Promise<void> {
    const top = this.createdDataDir === undefined ? undefined : resolve(this.createdDataDir);
    if (top === undefined) return;
    let dir = resolve(this.options.dataDir);
    for (;;) {
      try {
        await rmdir(dir); // refuses a folder that is not empty
      } catch {
        return;
      }
      if (dir === top || dirname(dir) === dir) return;
      dir = dirname(dir);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const steps: Array<[string, () => Promise<unknown> | unknown]> = [
      [
        'subsystems',
        async () => {
          for (const subsystem of this.started.reverse()) await subsystem.stop();
        },
      ],
      ['api', () => this.api?.close()],
      ['adapters', () => Promise.all([...this.adapters.values()].map((a) => a.stop()))],
      [
        'commands',
        async () => {
          await this.commands?.flush();
          this.commands?.stop();
        },
      ],
      ['history', () => this.history?.stop()],
      ['security', () => this.security?.stop()],
      ['mqtt', () => this.mqtt?.close()],
      ['broker', () => this.broker?.stop()],
      [
        'store',
        async () => {
          this.unwaitClock?.();
          await this.store?.close();
        },
      ],
      ['bus', () => this.bus.close()],
      ['data folder lock', () => this.dataLock?.release()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        this.log.error(`error while stopping ${name}`, { error });
      }
    }
  }
}

/** Fails fast, before anything is opened, when a port is taken, naming the flag that changes it. */
async function assertPortFree(port: number, host: string, what: string, flag: string): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(portError(error, port, what, flag)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

function portError(error: NodeJS.ErrnoException, port: number, what: string, flag: string): Error {
  if (error.code === 'EADDRINUSE') {
    return new HubError(1, 'port_in_use', `${what} port ${port} is already in use; choose another with ${flag}`);
  }
  if (error.code === 'EACCES') {
    return new HubError(1, 'port_denied', `not allowed to listen on ${what} port ${port}; choose another with ${flag}`);
  }
  return error;
}

/**
 * The embedded broker's kept retained messages, or none when their file cannot be opened (not a
 * SQLite file, no permission): the broker then runs on memory alone, as it did before they were
 * kept, rather than the hub not starting over what a restart can rebuild.
 */
function openRetained(file: string, log: Logger): RetainedStore | undefined {
  const onError = (error: unknown) => log.error("could not keep the broker's retained messages", { error });
  try {
    return new RetainedStore(file, onError);
  } catch (error) {
    log.error(`retained messages are kept in memory only: ${file} could not be opened`, { error });
    return undefined;
  }
}
