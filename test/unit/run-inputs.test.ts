import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultsFor, runInputFor } from '../../api/run-inputs.ts';
import type { StoredDefinition } from '../../api/definitions-store.ts';
import { definitionSchema, type Definition } from '../../interpreter/schema.ts';

const registered = {
  'skills:echo': { timeoutSeconds: 10, retry: { maxAttempts: 3 } },
  'skills:http-fetch': { timeoutSeconds: 30 },
  'integrations:http.request': { timeoutSeconds: 20 },
  'models:model.generate': { timeoutSeconds: 300 },
};

function def(steps: unknown[]): Definition {
  return definitionSchema.parse({ name: 'd', version: '1.0.0', steps });
}

describe('run inputs', () => {
  test('a run carries the registered defaults of the activities its steps call, and only those', () => {
    const body = def([
      { id: 'a', type: 'skill', skill: 'echo' },
      {
        id: 'p',
        type: 'parallel',
        steps: [
          { id: 'b', type: 'directive', directive: 'http.request' },
          { id: 'm', type: 'model', model: 'local/qwen-14b', user_prompt: 'hi' },
        ],
      },
    ]);
    assert.deepEqual(defaultsFor(registered, [body]), {
      'skills:echo': registered['skills:echo'],
      'integrations:http.request': registered['integrations:http.request'],
      'models:model.generate': registered['models:model.generate'],
    });
    assert.deepEqual(defaultsFor(undefined, [body]), {});
  });

  test('every run the API starts records lifecycle events and carries its pins', () => {
    const body = def([{ id: 'a', type: 'skill', skill: 'echo' }]);
    const stored = { body, hash: 'h', lane: 'prod-critical', name: 'd', version: '1.0.0' } as unknown as StoredDefinition;
    const input = runInputFor(
      stored,
      { x: 1 },
      { tenant: 't', startedBy: 'sam', correlationId: 'c' },
      { subDefinitions: {}, directory: {}, activityDefaults: { 'skills:echo': registered['skills:echo'] } },
      undefined,
    );
    assert.equal(input.recordEvents, true);
    assert.deepEqual(input.activityDefaults, { 'skills:echo': registered['skills:echo'] });
    assert.equal('subDefinitions' in input, false);
  });
});
