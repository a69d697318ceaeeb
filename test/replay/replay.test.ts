import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { GOLDEN_DIR, HISTORIES_DIR, goldenDefinitions } from './golden.ts';

/**
 * Determinism guard: every committed history of a golden definition must replay on the current
 * interpreter without a nondeterminism error. A change that alters the commands the interpreter
 * emits for an existing history must be gated with patched() and come with a new fixture.
 */
const bundlePath = process.env.WORKFLOW_BUNDLE_PATH;
const fixtures = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort();

test('every golden definition has a committed history', () => {
  const recorded = new Set(fixtures.map((f) => basename(f, '.json')));
  const missing = goldenDefinitions().map((g) => g.name).filter((n) => !recorded.has(n));
  assert.deepEqual(missing, [], `record them with npm run record-histories (golden definitions live in ${GOLDEN_DIR})`);
});

for (const file of fixtures) {
  test(`history ${file} replays on the current interpreter`, async () => {
    assert.ok(bundlePath, 'WORKFLOW_BUNDLE_PATH is set by the test runner');
    const history: unknown = JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8'));
    const events = (history as { events: unknown[] }).events;
    assert.ok(events.length > 5, 'the fixture holds a real history');
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, history, `replay-${basename(file, '.json')}`);
  });
}
