import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres.ts';
import type { Household } from '../src/store/store.ts';
import { needService, services } from './helpers/services.ts';
import { dropSchema, T0, unique } from './helpers/stores.ts';

/** A connection of the test's own, behind the store's back. */
async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: services.pg });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const skip = await needService('pg');

describe('PostgreSQL store and its connections', { skip }, () => {
  const schemas: string[] = [];
  const fresh = () => {
    const schema = `triad_parity_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    return schema;
  };
  after(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  it('two hubs migrating one new schema at once both come up, each version applied once', async () => {
    const schema = fresh();
    const stores = [0, 1, 2].map(() => new PostgresStore({ url: services.pg, schema }));
    try {
      await Promise.all(stores.map((store) => store.migrate()));
      await stores[0].migrate();
      const versions = await admin(async (client) => {
        const { rows } = await client.query(
          `SELECT version, count(*)::int AS n FROM ${schema}.schema_migrations GROUP BY version`,
        );
        return rows as Array<{ version: number; n: number }>;
      });
      assert.ok(versions.length > 0);
      assert.ok(
        versions.every((row) => row.n === 1),
        JSON.stringify(versions),
      );
    } finally {
      for (const store of stores) await store.close();
    }
  });

  it('answers again once the server has dropped its connections', async () => {
    const schema = fresh();
    const errors: Error[] = [];
    // Named, so the test ends this store's connections and nobody else's.
    const name = `triad_parity_${randomBytes(4).toString('hex')}`;
    const url = `${services.pg}${services.pg.includes('?') ? '&' : '?'}application_name=${name}`;
    const store = new PostgresStore({ url, schema, onError: (error) => errors.push(error) });
    try {
      await store.migrate();
      const household: Household = { id: unique('hh'), name: 'Home', settings: {}, createdAt: T0 };
      await store.saveHousehold(household);
      // Every connection the pool holds (idle now) is ended by the server, as a restart does.
      const ended = await admin(async (client) => {
        const { rows } = await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [name],
        );
        return rows.length;
      });
      assert.ok(ended > 0, 'the store held a connection');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(await store.getHousehold(household.id), household);
      await store.saveHousehold({ ...household, name: 'Home 2' });
      assert.equal((await store.getHousehold(household.id))?.name, 'Home 2');
    } finally {
      await store.close();
    }
  });
});
