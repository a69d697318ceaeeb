import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCurrentManifest, manifestOf } from '../../interpreter/manifest.ts';
import { definitionSchema } from '../../interpreter/schema.ts';

test('a manifest names every dependency once, nested steps, compensations and escalations included', () => {
  const definition = definitionSchema.parse({
    name: 'm',
    version: '1.0.0',
    steps: [
      { id: 'a', type: 'skill', skill: 'echo', inputs: {}, compensate: [{ id: 'undo', type: 'integration', integration: 'http.request', inputs: { url: 'https://example.com' } }] },
      {
        id: 'each',
        type: 'for_each',
        items: '${input.items}',
        steps: [
          { id: 'again', type: 'skill', skill: 'echo', inputs: {} },
          { id: 'child', type: 'sub_workflow', definition: 'kid', version: '2.0.0' },
          { id: 'child-2', type: 'sub_workflow', definition: 'kid', version: '2.0.0' },
        ],
      },
      {
        id: 'ok',
        type: 'approval',
        approvers: { groups: ['finance'] },
        timeout: 3600,
        on_timeout: 'escalate',
        escalation: { timeout: 60, approvers: { groups: ['cfo'] } },
      },
    ],
  });
  const manifest = manifestOf(definition);
  assert.ok(isCurrentManifest(manifest));
  assert.deepEqual(manifest.dependencies, {
    definitions: [{ definition: 'kid', version: '2.0.0' }],
    skills: ['echo'],
    integrations: ['http.request'],
    agents: [],
    models: false,
    approverGroups: ['finance', 'cfo'],
  });
  assert.deepEqual(JSON.parse(JSON.stringify(manifest)), manifest, 'it is plain JSON, stored as is');
  assert.equal(isCurrentManifest(null), false);
  assert.equal(isCurrentManifest({ format: 0 }), false);
});
