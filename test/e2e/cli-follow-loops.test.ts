import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { seedCatalog } from '../support/seed-catalog.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));

/**
 * `workflow run --follow` on retries inside a loop and a for_each: the activity summaries carry
 * the step's path (`twice[1]/flaky`), and the stream maps it back to the step it belongs to.
 * A subprocess of the CLI against a real platform (API, workers on the dev server, PostgreSQL).
 */
describe('run --follow: retries inside loops', () => {
  let platform: TestPlatform;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'workflow-loops-'));
    platform = await startTestPlatform({ database: 'postgres', catalog: seedCatalog().catalog });
  });
  after(async () => {
    await platform?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: KEYS.admin },
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  test('each iteration\'s retry shows, under its step (a for_each\'s under the for_each), with the iteration\'s path', async () => {
    // Two seconds between attempts: the API looks at the run every 500 ms, so each retry is seen.
    const retry = { max_attempts: 3, backoff: 'fixed', initial_interval: 2 };
    const definition = {
      name: 'cli-loop-retries',
      version: '1.0.0',
      context: { mutable: { n: 0 } },
      steps: [
        {
          id: 'twice',
          type: 'loop',
          condition: 'n < 2',
          max_iterations: 5,
          steps: [
            { id: 'flaky', type: 'skill', skill: 'boom', inputs: { times: 1 }, retry },
            { id: 'count', type: 'set', values: { n: '${n + 1}' } },
          ],
        },
        { id: 'each', type: 'for_each', items: [1, 2], max_concurrency: 1, steps: [{ id: 'wobbly', type: 'skill', skill: 'boom', inputs: { times: 1 }, retry }] },
      ],
    };
    const file = join(work, 'loops.json');
    writeFileSync(file, JSON.stringify(definition));
    const registered = await cli(['register', file]);
    assert.equal(registered.code, 0, registered.stderr + registered.stdout);

    const result = await cli(['run', 'cli-loop-retries', '--follow', '--json']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const events = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const retries = events.filter((e) => e.event === 'step' && e.data.status === 'retrying').map((e) => [e.data.stepId, e.data.stepPath, e.data.attempt]);
    assert.deepEqual(
      retries.filter((r) => r[0] === 'flaky'),
      [['flaky', 'twice[0]/flaky', 2], ['flaky', 'twice[1]/flaky', 2]],
      JSON.stringify(events.filter((e) => e.event === 'step')),
    );
    // A for_each iteration's steps have no view of their own: the retry shows under the for_each.
    assert.deepEqual(
      retries.filter((r) => String(r[1]).endsWith('/wobbly')),
      [['each', 'each[0]/wobbly', 2], ['each', 'each[1]/wobbly', 2]],
    );
    assert.equal(events.at(-1).event, 'end');
    assert.equal(events.at(-1).data.status, 'completed');
  });
});
