import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));
const exec = promisify(execFile);

/** The operator's `workflow` commands as a user runs them, against a real platform. */
describe('workflow CLI: lanes, pause, resume, retry', () => {
  let platform: TestPlatform;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'workflow-operate-cli-'));
    platform = await startTestPlatform({ database: 'postgres' });
  });

  after(async () => {
    await platform?.api(`/v1/lanes/${platform.lanes[1]}/resume`, { method: 'POST', key: KEYS.operator, json: {} }).catch(() => undefined);
    await platform?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const cli = async (args: string[], key: string = KEYS.operator): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], {
        cwd: work,
        env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: key },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  test('lanes lists every lane; lanes pause and resume change one; a submitter key exits 3', async () => {
    const lane = platform.lanes[1]!;
    const table = await cli(['lanes']);
    assert.equal(table.code, 0, table.stderr);
    for (const l of platform.lanes) assert.match(table.stdout, new RegExp(`${l}\\s+running`));
    const paused = await cli(['lanes', 'pause', lane, '--reason', 'cli test']);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, new RegExp(`${lane}: paused \\(cli test\\)`));
    const json = JSON.parse((await cli(['lanes', '--json'])).stdout);
    assert.equal(json.lanes.find((l: any) => l.lane === lane).paused, true);
    const resumed = await cli(['lanes', 'resume', lane]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, new RegExp(`${lane}: running`));
    const denied = await cli(['lanes'], KEYS.submitter);
    assert.equal(denied.code, 3);
    assert.match(denied.stderr, /operator/);
  });

  test('retry --rerun starts a failed run again as a new run; retry of an unknown run exits 4', async () => {
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: { name: 'cli-retry', version: '1.0.0', steps: [{ id: 'stop', type: 'fail', if: 'input.fail', error: 'asked to fail', error_type: 'Asked' }] },
    });
    assert.ok([200, 201].includes(registered.status), JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'cli-retry', input: { fail: true } } });
    const failed = await platform.waitForRun(started.body.runId);
    assert.equal(failed.status, 'failed');
    // A `fail` step runs no activity: there is no step to reset to, and the CLI says to re-run.
    const reset = await cli(['retry', failed.runId]);
    assert.equal(reset.code, 5);
    assert.match(reset.stderr, /rerun/);
    const rerun = await cli(['retry', failed.runId, '--rerun', '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    const body = JSON.parse(rerun.stdout);
    assert.equal(body.mode, 'rerun');
    assert.equal((await platform.waitForRun(body.newRunId)).status, 'failed');
    assert.equal((await cli(['retry', 'no-such-run'])).code, 4);
  });
});
