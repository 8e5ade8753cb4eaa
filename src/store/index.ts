import { PostgresStore } from './postgres.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

export type StoreOptions =
  | { kind: 'sqlite'; file: string; writer?: 'thread' | 'inline' }
  | { kind: 'postgres'; url: string; schema?: string };

/** Opens the configured store and brings its schema up to date, ready for the hub to use. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const store: Store =
    options.kind === 'sqlite'
      ? new SqliteStore({ file: options.file, writer: options.writer })
      : new PostgresStore({ url: options.url, schema: options.schema });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
