import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RunLogWriter, teeLogger, type RunLogRow, type RunLogStore } from '../../activities/platform/run-logs.ts';
import { createLogger } from '../../common/logger.ts';

/** A store that keeps rows in memory and fails while `down` is set (the database away). */
function memoryStore() {
  const rows: RunLogRow[] = [];
  const state = { down: false };
  const store = {
    async append(batch: readonly RunLogRow[]) {
      if (state.down) throw new Error('connection refused');
      rows.push(...batch);
    },
  } as unknown as RunLogStore;
  return { store, rows, state };
}

const quiet = createLogger('test', 'silent');
const run = { workflowId: 'run-1', tenant: 'acme', stepId: 's', attempt: 1, definition: 'd', version: '1.0.0' };

test('lines without a run and tenant are not kept; kept lines lose their bindings to columns and are cut to size', async () => {
  const { store, rows } = memoryStore();
  const writer = new RunLogWriter(store, { lane: 'prod', flushMs: 60_000 }, quiet);
  writer.logger.info('a process line');
  writer.logger.info({ workflowId: 'run-1' }, 'no tenant');
  writer.logger.debug(run, 'below info');
  writer.logger.child(run).warn({ errorType: 'Boom', big: 'x'.repeat(9000) }, 'm'.repeat(2500));
  await writer.close();
  assert.equal(rows.length, 1);
  const [row] = rows;
  assert.equal(row!.runId, 'run-1');
  assert.equal(row!.level, 'warn');
  assert.equal(row!.stepId, 's');
  assert.equal(row!.lane, 'prod');
  assert.equal(row!.definition, 'd');
  assert.match(row!.msg, /^m{2000}… \[500 more characters\]$/);
  assert.deepEqual(row!.fields, { truncated: true, keys: ['errorType', 'big'] }, 'oversized fields keep their names only');
});

test('while the database is away lines wait, the oldest are dropped past the bound, and the rest arrive in order', async () => {
  const { store, rows, state } = memoryStore();
  const writer = new RunLogWriter(store, { lane: 'prod', maxBuffered: 5, flushMs: 60_000 }, quiet);
  const log = writer.logger.child(run);
  state.down = true;
  for (let i = 0; i < 8; i++) log.info({ i }, `line ${i}`);
  await writer.flush();
  assert.equal(rows.length, 0);
  assert.equal(writer.dropped, 3);
  state.down = false;
  await writer.close();
  assert.deepEqual(rows.map((r) => r.msg), ['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
});

test('a run past its per-run bound gets one line saying so, and other runs are unaffected', async () => {
  const { store, rows } = memoryStore();
  const writer = new RunLogWriter(store, { lane: 'prod', maxPerRun: 2, flushMs: 60_000 }, quiet);
  for (let i = 0; i < 5; i++) writer.logger.child(run).info(`a${i}`);
  writer.logger.child({ ...run, workflowId: 'run-2' }).info('b0');
  await writer.close();
  assert.deepEqual(
    rows.map((r) => `${r.runId} ${r.level} ${r.msg.split(' ').slice(0, 3).join(' ')}`),
    ['run-1 info a0', 'run-1 info a1', 'run-1 warn further log lines', 'run-2 info b0'],
  );
});

test('teeLogger writes every level and child to both, with the primary\'s level and redaction', async () => {
  const primaryLines: string[] = [];
  const primary = createLogger('test', 'debug', { write: (l: string) => primaryLines.push(l) });
  const { store, rows } = memoryStore();
  const writer = new RunLogWriter(store, { lane: 'prod', flushMs: 60_000 }, quiet);
  const log = teeLogger(primary, writer.logger).child(run);
  log.debug('debug only on stdout');
  log.info({ password: 'hunter2' }, 'both');
  log.child({ extra: 1 }).error('child line');
  assert.equal(log.level, 'debug');
  await writer.close();
  assert.deepEqual(primaryLines.map((l) => JSON.parse(l).msg), ['debug only on stdout', 'both', 'child line']);
  assert.deepEqual(rows.map((r) => r.msg), ['both', 'child line']);
  assert.equal(rows[0]!.fields.password, '[redacted]');
  assert.equal(rows[1]!.fields.extra, 1);
});
