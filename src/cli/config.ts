import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parseDocument, visit } from 'yaml';
import {
  DEFAULT_HTTP_PORT,
  DEFAULT_MQTT_PORT,
  type HubOptions,
  type MqttOptions,
  type StoreChoice,
} from '../core/hub.ts';
import type { LogLevel } from '../core/log.ts';
import { parseVehicleConfig, type VehicleEndpoint } from '../vehicles/index.ts';
import { DEFAULT_STOP_GRACE_MS } from '../vehicles/trips.ts';
import { checkListenAddress, checkPortsApart, type Listener } from './listeners.ts';
import {
  ConfigError,
  flagValue,
  listenHost,
  mqttUrl,
  oneOf,
  portNumber,
  positiveNumber,
  postgresUrl,
  type Setting,
  shown,
  text,
  trustedProxies,
  wholeNumber,
  yesOrNo,
} from './settings.ts';

export { ConfigError } from './settings.ts';

/** What `triad start` accepts on its command line; every flag overrides the config file. */
export interface StartFlags {
  config?: string;
  data?: string;
  httpPort?: string;
  httpHost?: string;
  mqttPort?: string;
  mqttUrl?: string;
  mqttHost?: string;
  pgUrl?: string;
  demo?: boolean;
  logLevel?: string;
  mqttAllowAnonymous?: boolean;
  mqttsPort?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustProxy?: string;
}

/** The config file's shape (YAML or JSON), once loadConfigFile has checked it. */
interface ConfigFile {
  data?: string;
  http?: { port?: number; host?: string; trustProxy?: string[] };
  mqtt?: MqttOptions;
  tls?: { cert?: string; key?: string };
  store?: StoreChoice;
  household?: { name?: string };
  demo?: boolean;
  logLevel?: LogLevel;
  commandTimeoutMs?: number;
  /** Cars to attach by their own VISS endpoints: `[{name, viss: ws://…}]`. */
  vehicles?: unknown;
  /**
   * Requests per second and burst, per token (`api`), per name and address (`signIn`), and per
   * address for tokens nobody has (`unknownTokens`).
   */
  rateLimits?: HubOptions['rateLimits'];
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** A section of the config file: its keys, each a value or a section of its own. */
interface Section {
  [key: string]: Setting<unknown> | Section;
}

const rateLimit: Section = {
  burst: wholeNumber(1, 1_000_000_000),
  perSecond: positiveNumber(1_000_000_000),
};

/**
 * Every key the config file may hold; any other is refused, so a typo (`mqtt.prot`) is not lost.
 * Typed by ConfigFile's keys, so a key added to one and not the other does not compile.
 */
const CONFIG_KEYS: { [K in keyof Required<ConfigFile>]: Setting<unknown> | Section } = {
  data: text('a folder'),
  http: { port: portNumber, host: listenHost, trustProxy: trustedProxies },
  mqtt: {
    url: mqttUrl,
    port: portNumber,
    host: listenHost,
    username: text(),
    password: text(),
    allowAnonymous: yesOrNo,
    tlsPort: portNumber,
  },
  tls: { cert: text('a PEM file'), key: text('a PEM file') },
  store: {
    kind: oneOf(['sqlite', 'postgres']),
    file: text('a file'),
    writer: oneOf(['thread', 'inline']),
    url: postgresUrl,
    schema: text('a PostgreSQL schema name (a-z, 0-9 and _)', /^[a-z_][a-z0-9_]{0,62}$/),
  },
  household: { name: text('a name of 1 to 100 characters', /^.{1,100}$/su) },
  demo: yesOrNo,
  logLevel: oneOf(LOG_LEVELS),
  // From a second (a round trip to a device) to a day (a car asleep until morning).
  commandTimeoutMs: wholeNumber(1_000, 86_400_000),
  // Checked in full by the vehicles' own parser, whose messages name the entry at fault.
  vehicles: { mustBe: 'a list of {name, viss}', read: (raw) => raw },
  rateLimits: { api: rateLimit, signIn: rateLimit, unknownTokens: rateLimit },
};

function isSetting(spec: Setting<unknown> | Section): spec is Setting<unknown> {
  return typeof spec.read === 'function' && typeof spec.mustBe === 'string';
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The known key closest to a misspelt one (one or two letters off), for "did you mean". */
function closest(key: string, known: string[]): string | undefined {
  const distance = (a: string, b: string) => {
    let row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++)
        next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      row = next;
    }
    return row[b.length];
  };
  const best = known.map((k) => ({ k, d: distance(key.toLowerCase(), k.toLowerCase()) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= 2 ? best.k : undefined;
}

/** Reads one section of the file into the values Triad uses, refusing unknown keys and bad values. */
function readSection(value: unknown, spec: Section, path: string[], file: string): Record<string, unknown> {
  const where = path.join('.');
  const keys = Object.keys(spec);
  if (!isMapping(value)) throw new ConfigError(`config file ${file}: ${where} must be a mapping of ${keys.join(', ')}`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    const keyPath = [...path, key].join('.');
    if (!Object.hasOwn(spec, key)) {
      const guess = closest(key, keys);
      throw new ConfigError(
        `config file ${file}: unknown key ${keyPath}${guess ? ` (did you mean ${[...path, guess].join('.')}?)` : ''}; ` +
          `the keys ${path.length ? `under ${where}` : 'at the top'} are ${keys.join(', ')}`,
      );
    }
    const inner = spec[key];
    if (!isSetting(inner)) {
      // `http:` with nothing under it is an empty section.
      if (raw !== null) out[key] = readSection(raw, inner, [...path, key], file);
      continue;
    }
    const read = inner.read(raw);
    if (read === undefined)
      throw new ConfigError(`config file ${file}: ${keyPath} must be ${inner.mustBe}, got ${shown(raw)}`);
    out[key] = read;
  }
  return out;
}

/** What no single key can say: the store's kind decides its other keys, and so on. */
function checkCombinations(config: ConfigFile, file: string): void {
  const refuse = (message: string) => {
    throw new ConfigError(`config file ${file}: ${message}`);
  };
  const store = config.store as Record<string, unknown> | undefined;
  if (store) {
    if (store.kind === undefined) refuse('store.kind is required (sqlite or postgres)');
    if (store.kind === 'postgres' && store.url === undefined) refuse('store.url is required for postgres');
    for (const key of ['file', 'writer'])
      if (store.kind === 'postgres' && store[key] !== undefined) refuse(`store.${key} is for sqlite, not postgres`);
    for (const key of ['url', 'schema'])
      if (store.kind === 'sqlite' && store[key] !== undefined) refuse(`store.${key} is for postgres, not sqlite`);
  }
  for (const [name, limit] of Object.entries(config.rateLimits ?? {})) {
    if (limit && (limit.burst === undefined || limit.perSecond === undefined))
      refuse(`rateLimits.${name} needs both burst and perSecond`);
  }
  const mqtt = config.mqtt;
  if (mqtt?.url !== undefined && (mqtt.port !== undefined || mqtt.tlsPort !== undefined))
    refuse('mqtt.url (an external broker) and mqtt.port or mqtt.tlsPort (the embedded one) exclude each other');
}

/**
 * The file's YAML (or JSON), with each number written other than in plain decimal (`0x4000`,
 * `0o17`, `1e4`, `+5`, `.inf`) kept as the text it was written as: a number setting then refuses
 * it by its key, as `--http-port 0x4000` is refused by its flag, rather than taking a port no
 * one wrote in digits.
 */
function parseConfigText(contents: string): unknown {
  const document = parseDocument(contents);
  if (document.errors.length > 0) throw document.errors[0];
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === 'number' && !/^-?\d+(\.\d+)?$/.test(node.source ?? '')) node.value = node.source;
    },
  });
  return document.toJS();
}

export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let contents: string;
  try {
    contents = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseConfigText(contents);
  } catch (error) {
    const firstLine = (error as Error).message.split('\n')[0];
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${firstLine}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isMapping(parsed)) throw new ConfigError(`config file ${path} must hold a mapping`);
  const config = readSection(parsed, CONFIG_KEYS, [], path) as ConfigFile;
  checkCombinations(config, path);
  return config;
}

function vehiclesFrom(value: unknown, path: string): VehicleEndpoint[] {
  try {
    return parseVehicleConfig(value);
  } catch (error) {
    throw new ConfigError(`config file ${path}: vehicles: ${(error as Error).message}`);
  }
}

/** Where a setting came from, for errors: the flag when given, else the config file's key. */
function origin(flag: string, given: unknown, key: string, configPath: string | undefined): string {
  return given !== undefined || !configPath ? flag : `${key} in config file ${configPath}`;
}

/** A data folder may not exist yet (the hub makes it), but a file by that name cannot be one. */
async function checkDataFolder(dir: string, from: string): Promise<void> {
  const found = await stat(dir).catch(() => null);
  if (found && !found.isDirectory()) throw new ConfigError(`${from}: ${dir} is a file, not a folder`);
}

async function readFileFor(file: string, from: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${from}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code})`);
  }
}

/** OpenSSL's words without its code: `error:0480006C:PEM routines::no start line` → `no start line`. */
const opensslReason = (error: unknown) =>
  String((error as Error).message ?? error).replace(/^error:[^:]*:[^:]*::?/, '');

/**
 * The certificate and key, parsed as the HTTPS server and the MQTT-over-TLS listener will parse
 * them. Only reading them was checked before, so a file that is not PEM, or a key of another
 * certificate, stopped the hub after MQTT, people and energy had started, with OpenSSL's words
 * and exit 1; here it is one line naming the flag, before anything starts.
 */
function checkTlsFiles(
  cert: { file: string; from: string; pem: Buffer },
  key: { file: string; from: string; pem: Buffer },
): void {
  const [certPem, keyPem] = [cert.pem, key.pem];
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (error) {
    throw new ConfigError(`${cert.from}: ${cert.file} is not a PEM certificate (${opensslReason(error)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (error) {
    throw new ConfigError(`${key.from}: ${key.file} is not an unencrypted PEM private key (${opensslReason(error)})`);
  }
  if (!certificate.checkPrivateKey(privateKey))
    throw new ConfigError(`${key.from}: ${key.file} is not the private key of the certificate in ${cert.file}`);
  try {
    // What the servers will do with them; anything it still refuses is refused now, not later.
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (error) {
    throw new ConfigError(`${cert.from} and ${key.from}: TLS cannot use them (${opensslReason(error)})`);
  }
}

/** Merges the config file and the flags into the hub's options. */
export async function resolveOptions(flags: StartFlags): Promise<HubOptions & { vehicles?: VehicleEndpoint[] }> {
  const configPath = flags.config;
  const file = configPath ? await loadConfigFile(configPath) : {};
  const logLevel = flagValue(oneOf(LOG_LEVELS), '--log-level', flags.logLevel) ?? file.logLevel ?? 'info';
  const httpPort = flagValue(portNumber, '--http-port', flags.httpPort) ?? file.http?.port;
  const httpHost = flagValue(listenHost, '--http-host', flags.httpHost) ?? file.http?.host;
  const trustProxy = flagValue(trustedProxies, '--trust-proxy', flags.trustProxy) ?? file.http?.trustProxy;
  const mqttPortFlag = flagValue(portNumber, '--mqtt-port', flags.mqttPort);
  const mqttUrlFlag = flagValue(mqttUrl, '--mqtt-url', flags.mqttUrl);
  const mqttsPort = flagValue(portNumber, '--mqtts-port', flags.mqttsPort) ?? file.mqtt?.tlsPort;
  const mqttHostFlag = flagValue(listenHost, '--mqtt-host', flags.mqttHost);
  const pgUrl = flagValue(postgresUrl, '--pg-url', flags.pgUrl);
  if (mqttPortFlag !== undefined && mqttUrlFlag !== undefined)
    throw new ConfigError('--mqtt-port (the embedded broker) and --mqtt-url (an external one) exclude each other');
  // A flag for one kind of broker sets aside the config file's choice of the other.
  const brokerUrl = mqttUrlFlag ?? (mqttPortFlag !== undefined ? undefined : file.mqtt?.url);
  if (brokerUrl && flags.mqttsPort !== undefined)
    throw new ConfigError('--mqtts-port serves the embedded broker; it does not go with an external --mqtt-url');
  if (brokerUrl && mqttHostFlag !== undefined)
    throw new ConfigError(
      '--mqtt-host is where the embedded broker listens; it does not go with an external --mqtt-url',
    );

  const tlsCert = flags.tlsCert ?? file.tls?.cert;
  const tlsKey = flags.tlsKey ?? file.tls?.key;
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new ConfigError('--tls-cert and --tls-key (tls.cert and tls.key in the config file) go together');
  // Read now, so a missing file is named first; parsed once the listeners are checked (below).
  const tlsFile = async (path: string, flag: string, given: string | undefined, key: string) => {
    const from = origin(flag, given, key, configPath);
    return { file: resolve(path), from, pem: await readFileFor(resolve(path), from) };
  };
  const tlsFiles =
    tlsCert && tlsKey
      ? {
          cert: await tlsFile(tlsCert, '--tls-cert', flags.tlsCert, 'tls.cert'),
          key: await tlsFile(tlsKey, '--tls-key', flags.tlsKey, 'tls.key'),
        }
      : undefined;
  // The hub finds this out only when it starts the broker, after it has written its store.
  if (!brokerUrl && mqttsPort !== undefined && !tlsCert)
    throw new ConfigError(
      `${origin('--mqtts-port', flags.mqttsPort, 'mqtt.tlsPort', configPath)} needs --tls-cert and --tls-key (tls.cert and tls.key in the config file)`,
    );

  if (flags.data !== undefined && flags.data.trim() === '') throw new ConfigError('--data must name a folder');
  const dataDir = resolve(flags.data ?? file.data ?? './triad-data');
  await checkDataFolder(
    dataDir,
    origin('--data', flags.data, 'data', file.data === undefined ? undefined : configPath),
  );

  const options: HubOptions & { vehicles?: VehicleEndpoint[] } = {
    dataDir,
    tls: tlsCert && tlsKey ? { cert: resolve(tlsCert), key: resolve(tlsKey) } : undefined,
    http: { port: httpPort, host: httpHost, trustProxy },
    mqtt: brokerUrl
      ? { url: brokerUrl, username: file.mqtt?.username, password: file.mqtt?.password }
      : {
          port: mqttPortFlag ?? file.mqtt?.port,
          host: mqttHostFlag ?? file.mqtt?.host,
          allowAnonymous: flags.mqttAllowAnonymous ?? file.mqtt?.allowAnonymous ?? false,
          tlsPort: mqttsPort,
        },
    store: pgUrl ? { kind: 'postgres', url: pgUrl } : file.store,
    demo: flags.demo ?? file.demo ?? false,
    // Someone trying the demo should see the car drive within seconds, not wait for 08:00, and
    // see its trips: it stands longer than a stop that ends a trip (DEFAULT_STOP_GRACE_MS, 3 min),
    // or every errand ran into the next and "Today's trips" stayed empty.
    demoCarErrands: { firstAfterMs: 15_000, parkMs: DEFAULT_STOP_GRACE_MS + 60_000 },
    logLevel,
    commandTimeoutMs: file.commandTimeoutMs,
    householdName: file.household?.name,
    rateLimits: file.rateLimits,
    vehicles: file.vehicles === undefined ? undefined : vehiclesFrom(file.vehicles, configPath ?? ''),
  };
  // Last: it looks names up, so every value that can be judged by itself is judged first.
  await checkListeners(options, flags, configPath);
  if (tlsFiles) checkTlsFiles(tlsFiles.cert, tlsFiles.key);
  return options;
}

/**
 * Where the hub will listen, tried before anything starts: each address given must be one of
 * this machine's, and no two of its servers may share a port (see listeners.ts for why the hub's
 * own checks come too late for these).
 */
async function checkListeners(hub: HubOptions, flags: StartFlags, configPath: string | undefined): Promise<void> {
  const from = (flag: string, given: unknown, key: string) => origin(flag, given, key, configPath);
  const http = hub.http ?? {};
  const listeners: Listener[] = [
    {
      what: 'the HTTP server',
      flag: '--http-port',
      port: http.port ?? DEFAULT_HTTP_PORT,
      portFrom: http.port === undefined ? undefined : from('--http-port', flags.httpPort, 'http.port'),
      address:
        http.host === undefined
          ? '0.0.0.0'
          : await checkListenAddress(http.host, from('--http-host', flags.httpHost, 'http.host')),
    },
  ];
  const mqtt = hub.mqtt;
  // An external broker listens elsewhere; only the embedded one takes ports here.
  if (mqtt && mqtt.url === undefined) {
    // Not --http-host's: the broker keeps listening everywhere unless --mqtt-host (or mqtt.host) says otherwise.
    const address =
      mqtt.host === undefined
        ? '0.0.0.0'
        : await checkListenAddress(mqtt.host, from('--mqtt-host', flags.mqttHost, 'mqtt.host'));
    listeners.push({
      what: 'the MQTT broker',
      flag: '--mqtt-port',
      port: mqtt.port ?? DEFAULT_MQTT_PORT,
      portFrom: mqtt.port === undefined ? undefined : from('--mqtt-port', flags.mqttPort, 'mqtt.port'),
      address,
    });
    if (mqtt.tlsPort !== undefined) {
      listeners.push({
        what: 'the MQTT broker over TLS',
        flag: '--mqtts-port',
        port: mqtt.tlsPort,
        portFrom: from('--mqtts-port', flags.mqttsPort, 'mqtt.tlsPort'),
        address,
      });
    }
  }
  checkPortsApart(listeners);
}
