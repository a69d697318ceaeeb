import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPool, type Pool } from '../../common/db.ts';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Compile once: registration stores each version's manifest (its dependencies) beside it, and a
 * run pins from the manifests. A version registered before manifests existed still starts: its
 * manifest is computed on first read and stored then.
 */
describe('definition manifests', () => {
  let platform: TestPlatform;
  let pool: Pool;

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres' });
    pool = createPool(platform.config.DATABASE_URL!, 1);
  });

  after(async () => {
    await pool?.end();
    await platform?.stop();
  });

  const manifestOf = async (name: string) =>
    (await pool.query<{ manifest: any; tenant: string }>('SELECT manifest, tenant FROM definitions WHERE name = $1', [name])).rows[0];

  test('registration stores the manifest; a version without one starts, pins its child, and gets one', async () => {
    for (const definition of [
      { name: 'mf-child', version: '1.0.0', steps: [{ id: 'hello', type: 'skill', skill: 'echo', inputs: { greeting: 'hi ${input.who}' } }] },
      { name: 'mf-parent', version: '1.0.0', steps: [{ id: 'call', type: 'sub_workflow', definition: 'mf-child', version: '1.0.0', inputs: { who: '${input.name}' } }] },
    ]) {
      const registered = await platform.api('/v1/definitions', { method: 'POST', json: definition });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
    }
    assert.deepEqual((await manifestOf('mf-child'))!.manifest.dependencies.skills, ['echo']);
    assert.deepEqual((await manifestOf('mf-parent'))!.manifest.dependencies.definitions, [{ definition: 'mf-child', version: '1.0.0' }]);

    // As a version registered before this column existed looks.
    await pool.query("UPDATE definitions SET manifest = NULL WHERE name IN ('mf-child', 'mf-parent')");
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'mf-parent', version: '1.0.0', input: { name: 'ada' } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const done = await platform.waitForRun(started.body.runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.output, { greeting: 'hi ada' });
    // What the run pinned, as its start event holds it: the child, and echo's registered defaults.
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const history = await new Client({ connection }).workflow.getHandle(started.body.runId).fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const input = defaultPayloadConverter.fromPayload(payload!) as any;
      assert.deepEqual(Object.keys(input.subDefinitions), ['mf-child@1.0.0']);
      assert.equal(input.activityDefaults?.['skills:echo']?.timeoutSeconds, 10, JSON.stringify(input.activityDefaults));
    } finally {
      await connection.close();
    }
    for (let i = 0; ; i++) {
      const [child, parent] = [await manifestOf('mf-child'), await manifestOf('mf-parent')];
      if (child!.manifest && parent!.manifest) {
        assert.equal(parent!.manifest.format, 1);
        assert.deepEqual(parent!.manifest.dependencies.definitions, [{ definition: 'mf-child', version: '1.0.0' }]);
        assert.deepEqual(child!.manifest.dependencies.skills, ['echo']);
        break;
      }
      assert.ok(i < 50, 'the manifests were stored on first read');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
