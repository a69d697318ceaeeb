import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS_DIR } from '../../common/db.ts';

/**
 * The migrations' order is part of every database's state: node-pg-migrate sorts the files by
 * their numeric prefix, then by name, and refuses to run when an applied migration is preceded
 * by one that was not run. So an applied file is never renamed (its row in `pgmigrations` names
 * it), and every new file gets a prefix of its own (`date +%s%3N`).
 *
 * Two applied migrations share 1764100000000 (admission-queue and worker-catalog). That is kept,
 * not renamed: ties are broken by name, so the order is the same on every database
 * (admission-queue, then worker-catalog), and the two touch different tables, so either order
 * gives the same schema. Renaming one would make existing databases see it as new and run it again
 * (CREATE TABLE on a table that exists) after a migration already applied.
 */

const files = readdirSync(MIGRATIONS_DIR).sort();
const GRANDFATHERED = ['1764100000000_admission-queue.sql', '1764100000000_worker-catalog.sql'];

test('every migration is a SQL file with a 13-digit millisecond prefix', () => {
  assert.ok(files.length >= 8);
  for (const file of files) assert.match(file, /^\d{13}_[a-z0-9-]+\.sql$/, file);
});

test('prefixes are unique, except the one applied pair kept as it is', () => {
  const byPrefix = new Map<string, string[]>();
  for (const file of files) byPrefix.set(file.slice(0, 13), [...(byPrefix.get(file.slice(0, 13)) ?? []), file]);
  const shared = [...byPrefix.values()].filter((group) => group.length > 1);
  assert.deepEqual(shared, [GRANDFATHERED], 'a new migration needs a prefix of its own (date +%s%3N)');
});

test('the shared-prefix pair is ordered by name and independent: same schema in either order', () => {
  const [first, second] = GRANDFATHERED.map((f) => readFileSync(join(MIGRATIONS_DIR, f), 'utf8'));
  const tables = (sql: string) => [...sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/gi)].map((m) => m[1]!.toLowerCase());
  const [a, b] = [tables(first!), tables(second!)];
  assert.ok(a.length > 0 && b.length > 0);
  for (const table of a) assert.ok(!new RegExp(`\\b${table}\\b`, 'i').test(second!), `${GRANDFATHERED[1]} does not touch ${table}`);
  for (const table of b) assert.ok(!new RegExp(`\\b${table}\\b`, 'i').test(first!), `${GRANDFATHERED[0]} does not touch ${table}`);
  // node-pg-migrate's tie-break (locale compare of the names) puts admission-queue first.
  assert.ok(GRANDFATHERED[0]!.localeCompare(GRANDFATHERED[1]!, undefined, { numeric: true, sensitivity: 'variant', ignorePunctuation: true }) < 0);
});
