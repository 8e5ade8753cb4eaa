import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import type { HubOptions, MqttOptions, StoreChoice } from '../core/hub.ts';
import type { LogLevel } from '../core/log.ts';
import { parseVehicleConfig, type VehicleEndpoint } from '../vehicles/index.ts';
import { DEFAULT_STOP_GRACE_MS } from '../vehicles/trips.ts';

/** What `triad start` accepts on its command line; every flag overrides the config file. */
export interface StartFlags {
  config?: string;
  data?: string;
  httpPort?: string;
  httpHost?: string;
  mqttPort?: string;
  mqttUrl?: string;
  pgUrl?: string;
  demo?: boolean;
  logLevel?: string;
  mqttAllowAnonymous?: boolean;
  mqttsPort?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The config file's shape (YAML or JSON). */
interface ConfigFile {
  data?: string;
  http?: { port?: number; host?: string };
  mqtt?: MqttOptions;
  tls?: { cert?: string; key?: string };
  store?: StoreChoice;
  household?: { name?: string };
  demo?: boolean;
  logLevel?: LogLevel;
  commandTimeoutMs?: number;
  /** Cars to attach by their own VISS endpoints: `[{name, viss: ws://…}]`. */
  vehicles?: unknown;
  /** Requests per second and burst, per token (`api`) and per name and address (`signIn`). */
  rateLimits?: HubOptions['rateLimits'];
}

export class ConfigError extends Error {}

function rateLimitsFrom(value: unknown, path: string): HubOptions['rateLimits'] {
  if (value === undefined) return undefined;
  const limits = value as Record<string, unknown>;
  for (const key of ['api', 'signIn']) {
    const limit = limits?.[key] as { burst?: unknown; perSecond?: unknown } | undefined;
    if (limit === undefined) continue;
    if (!(Number(limit?.burst) > 0) || !(Number(limit?.perSecond) > 0)) {
      throw new ConfigError(`config file ${path}: rateLimits.${key} needs a positive burst and perSecond`);
    }
  }
  return value as HubOptions['rateLimits'];
}

function vehiclesFrom(value: unknown, path: string): VehicleEndpoint[] {
  try {
    return parseVehicleConfig(value);
  } catch (error) {
    throw new ConfigError(`config file ${path}: vehicles: ${(error as Error).message}`);
  }
}

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error', 'silent']);

function port(value: string | number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`${flag} must be a port number (0–65535), got ${value}`);
  return n;
}

export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`config file ${path} must hold a mapping`);
  const config = parsed as ConfigFile;
  if (config.store && config.store.kind !== 'sqlite' && config.store.kind !== 'postgres') {
    throw new ConfigError(`config file ${path}: store.kind must be sqlite or postgres`);
  }
  if (
    config.store?.kind === 'sqlite' &&
    config.store.writer !== undefined &&
    config.store.writer !== 'thread' &&
    config.store.writer !== 'inline'
  ) {
    throw new ConfigError(`config file ${path}: store.writer must be thread or inline`);
  }
  if (config.store?.kind === 'postgres' && typeof config.store.url !== 'string') {
    throw new ConfigError(`config file ${path}: store.url is required for postgres`);
  }
  return config;
}

/** Merges the config file and the flags into the hub's options. */
export async function resolveOptions(flags: StartFlags): Promise<HubOptions & { vehicles?: VehicleEndpoint[] }> {
  const file = flags.config ? await loadConfigFile(flags.config) : {};
  const logLevel = (flags.logLevel ?? file.logLevel ?? 'info') as LogLevel;
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`);
  const mqttUrl = flags.mqttUrl ?? (flags.mqttPort ? undefined : file.mqtt?.url);
  if (mqttUrl && !/^(mqtts?|wss?|tcp):\/\//.test(mqttUrl))
    throw new ConfigError(`--mqtt-url must start with mqtt:// or mqtts://, got ${mqttUrl}`);
  const tlsCert = flags.tlsCert ?? file.tls?.cert;
  const tlsKey = flags.tlsKey ?? file.tls?.key;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  const mqttsPort = port(flags.mqttsPort ?? file.mqtt?.tlsPort, '--mqtts-port');
  return {
    dataDir: resolve(flags.data ?? file.data ?? './triad-data'),
    tls: tlsCert && tlsKey ? { cert: resolve(tlsCert), key: resolve(tlsKey) } : undefined,
    http: { port: port(flags.httpPort ?? file.http?.port, '--http-port'), host: flags.httpHost ?? file.http?.host },
    mqtt: mqttUrl
      ? { url: mqttUrl, username: file.mqtt?.username, password: file.mqtt?.password }
      : {
          port: port(flags.mqttPort ?? file.mqtt?.port, '--mqtt-port'),
          host: file.mqtt?.host,
          allowAnonymous: flags.mqttAllowAnonymous ?? file.mqtt?.allowAnonymous ?? false,
          tlsPort: mqttsPort,
        },
    store: flags.pgUrl ? { kind: 'postgres', url: flags.pgUrl } : file.store,
    demo: flags.demo ?? file.demo ?? false,
    // Someone trying the demo should see the car drive within seconds, not wait for 08:00, and
    // see its trips: it stands longer than a stop that ends a trip (DEFAULT_STOP_GRACE_MS, 3 min),
    // or every errand ran into the next and "Today's trips" stayed empty.
    demoCarErrands: { firstAfterMs: 15_000, parkMs: DEFAULT_STOP_GRACE_MS + 60_000 },
    logLevel,
    commandTimeoutMs: file.commandTimeoutMs,
    householdName: file.household?.name,
    rateLimits: rateLimitsFrom(file.rateLimits, flags.config ?? ''),
    vehicles: file.vehicles === undefined ? undefined : vehiclesFrom(file.vehicles, flags.config ?? ''),
  };
}
