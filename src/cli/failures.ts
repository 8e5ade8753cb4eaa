import { HubError } from '../core/errors.ts';
import type { HubOptions } from '../core/hub.ts';
import { hidePasswords } from '../core/redact.ts';
import { ConfigError } from './settings.ts';

/** What a failed start has to say; the hub's own clear errors (a port in use) pass as they are. */
interface StartContext {
  options: HubOptions;
  /** Whether the hub got as far as opening its store. */
  storeOpened: boolean;
}

const ADDRESS_CODES = new Set(['ENOTFOUND', 'EADDRNOTAVAIL', 'EAI_AGAIN', 'EAI_FAIL']);

/**
 * Turns what stopped `triad start` into one line that says what to change: the data folder, the
 * store, the address to listen on. Node's and the drivers' own messages are kept in it, since
 * they say what the system refused.
 */
export function explainStartFailure(error: unknown, { options, storeOpened }: StartContext): Error {
  if (error instanceof HubError || error instanceof ConfigError) return error;
  const failure = error as NodeJS.ErrnoException & { hostname?: string; address?: string };
  const message = failure?.message ?? String(error);
  const httpHost = options.http?.host;
  const mqttHost = options.mqtt?.host;
  const badHost = failure?.hostname ?? failure?.address;
  if (failure?.code && ADDRESS_CODES.has(failure.code) && badHost !== undefined) {
    if (badHost === httpHost)
      return new HubError(1, 'bad_host', `--http-host ${httpHost} is not an address of this machine (${failure.code})`);
    if (badHost === mqttHost)
      return new HubError(1, 'bad_host', `mqtt.host ${mqttHost} is not an address of this machine (${failure.code})`);
  }
  if (failure?.path?.startsWith(options.dataDir)) {
    return new HubError(
      1,
      'data_folder',
      `cannot use the data folder ${options.dataDir} (choose another with --data): ${message}`,
    );
  }
  const brokerUrl = options.mqtt?.url;
  if (brokerUrl && message.includes(brokerUrl)) {
    return new HubError(
      1,
      'broker',
      `${message.replaceAll(brokerUrl, redacted(brokerUrl))} (is the broker running? choose another with --mqtt-url or mqtt.url)`,
    );
  }
  if (!storeOpened) {
    if (options.store?.kind === 'postgres') {
      return new HubError(
        1,
        'store',
        `cannot open PostgreSQL at ${redacted(options.store.url)} (--pg-url or store.url): ${message}`,
      );
    }
    // A file named in the config is what to change there, not the data folder.
    const file = options.store?.kind === 'sqlite' ? options.store.file : undefined;
    if (file) return new HubError(1, 'store', `cannot open the database ${file} (store.file): ${message}`);
    return new HubError(
      1,
      'store',
      `cannot open the database in ${options.dataDir} (choose another folder with --data): ${message}`,
    );
  }
  return new Error(`could not start: ${message}`);
}

/** A connection address without its password, fit for a terminal and a log. */
export const redacted = hidePasswords;
