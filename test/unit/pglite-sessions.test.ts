import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createLogger } from '../../common/logger.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../embedded/pglite.ts';
import { freePort } from '../../embedded/ports.ts';

/**
 * The embedded PostgreSQL (PGlite behind the wire protocol) shares one session among its
 * connections, as `npm start` uses it: a pool of real `pg` connections sending parameterized
 * queries at once, each an extended-protocol batch (Parse/Bind/Execute/Sync), must each get its own
 * answer. pglite-socket's own queue interleaved such batches (electric-sql/pglite#1046) and a Bind
 * met another connection's statement; CI saw it as a 500 from GET /v1/runs.
 */

describe('embedded PostgreSQL: concurrent connections', () => {
  let postgres: EmbeddedPostgres;
  let pool: pg.Pool;

  before(async () => {
    postgres = await startEmbeddedPostgres({ port: await freePort(), maxConnections: 8, logger: createLogger('test', 'silent') });
    pool = new pg.Pool({ connectionString: postgres.url, max: 6 });
    await pool.query('CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL)');
  });

  after(async () => {
    await pool?.end();
    await postgres?.stop();
  });

  test('parameterized queries of different shapes from six connections at once each get their own answer', async () => {
    const queries = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0
        ? pool.query<{ v: number }>('SELECT $1::int + $2::int AS v', [i, 1]).then((r) => [r.rows[0]!.v, i + 1])
        : i % 3 === 1
          ? pool.query<{ v: number }>('SELECT $1::int * $2::int - $3::int AS v', [i, 2, 1]).then((r) => [r.rows[0]!.v, i * 2 - 1])
          : pool.query<{ v: string }>('SELECT $1::text AS v', [`row ${i}`]).then((r) => [r.rows[0]!.v, `row ${i}`]),
    );
    for (const [got, want] of await Promise.all(queries)) assert.equal(got, want);
  });

  test("a transaction keeps the session: the other connections' writes wait, and its rollback removes only its own", async () => {
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      await tx.query('INSERT INTO ledger VALUES ($1, $2)', [1, 100]);
      const others = Promise.all(Array.from({ length: 20 }, (_, i) => pool.query('INSERT INTO ledger VALUES ($1, $2)', [100 + i, i])));
      await tx.query('INSERT INTO ledger VALUES ($1, $2)', [2, 200]);
      assert.equal((await tx.query('SELECT count(*)::int AS n FROM ledger WHERE id < 100')).rows[0].n, 2);
      await tx.query('ROLLBACK');
      await others;
    } finally {
      tx.release();
    }
    const rows = (await pool.query<{ id: number }>('SELECT id FROM ledger ORDER BY id')).rows.map((r) => r.id);
    assert.deepEqual(rows, Array.from({ length: 20 }, (_, i) => 100 + i));
  });

  test('a failing statement fails its own query only; the session goes on serving', async () => {
    const results = await Promise.allSettled([
      pool.query('SELECT $1::int AS v', ['not a number']),
      ...Array.from({ length: 30 }, (_, i) => pool.query<{ v: number }>('SELECT $1::int AS v', [i])),
    ]);
    assert.equal(results[0]!.status, 'rejected');
    assert.match(String((results[0] as PromiseRejectedResult).reason), /invalid input syntax for type integer/);
    results.slice(1).forEach((r, i) => assert.deepEqual(r.status === 'fulfilled' ? r.value.rows[0] : r, { v: i }));
  });
});
