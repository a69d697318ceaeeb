import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ProgressTracker } from '../../api/run-stream.ts';
import type { StepView } from '../../api/runs-service.ts';
import { CliError, EXIT, resolveConnection } from '../../cli/workflow/client.ts';
import { validateOffline } from '../../cli/workflow/definition-file.ts';

describe('progress stream: what changed between two looks at a run', () => {
  test('start, retries (once per attempt), waiting for an approval, then the end with elapsed time', () => {
    let now = 1_000;
    const tracker = new ProgressTracker(() => now);
    const steps = (a: StepView['status'], b: StepView['status']): StepView[] => [
      { id: 'a', status: a },
      { id: 'b', status: b },
    ];
    assert.deepEqual(tracker.next(steps('running', 'pending'), [], []).map((e) => [e.stepId, e.status]), [['a', 'started']]);
    assert.deepEqual(tracker.next(steps('running', 'pending'), [], []), []);
    now = 2_000;
    const retry = tracker.next(steps('running', 'pending'), [{ activityId: '1', activity: 'boom', stepId: 'a', attempt: 2, lastFailure: 'boom #1' }], []);
    assert.deepEqual(retry.map((e) => [e.status, e.attempt, e.error?.message, e.elapsedMs]), [['retrying', 2, 'boom #1', 1000]]);
    assert.deepEqual(tracker.next(steps('running', 'pending'), [{ activityId: '1', activity: 'boom', stepId: 'a', attempt: 2 }], []), []);
    now = 3_500;
    const approval = {
      stepId: 'b', stepPath: 'b', summary: 'ok?', status: 'pending', stage: 0, approvers: { principals: ['abby'], groups: [] }, quorum: 1,
      allowSelfApproval: false, startedBy: 'sam', requestedAt: 'x', decisions: [],
    } as const;
    const next = tracker.next(steps('completed', 'running'), [], [approval as never]);
    assert.deepEqual(next.map((e) => [e.stepId, e.status, e.elapsedMs]), [['a', 'completed', 2500], ['b', 'started', undefined], ['b', 'waiting', 0]]);
    assert.deepEqual(next[2]?.approval?.approvers, { principals: ['abby'], groups: [] });
    assert.deepEqual(tracker.next(steps('completed', 'running'), [], [approval as never]), []);
    const failed = tracker.next([{ id: 'a', status: 'completed' }, { id: 'b', status: 'failed', error: { message: 'rejected', type: 'ApprovalRejected' } }], [], []);
    assert.deepEqual(failed.map((e) => [e.stepId, e.status, e.error?.type]), [['b', 'failed', 'ApprovalRejected']]);
  });
});

describe('workflow CLI configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'workflow-conf-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = (extra: Record<string, string> = {}) => ({ WORKFLOW_CONFIG: join(dir, 'absent.json'), ...extra });

  test('flags beat the environment, which beats the profile, which beats the embedded defaults', () => {
    const profiles = join(dir, 'profiles.json');
    writeFileSync(join(dir, 'ci.key'), 'key-from-file\n');
    writeFileSync(profiles, JSON.stringify({ default: 'ci', profiles: { ci: { url: 'https://ci.example/', keyFile: 'ci.key' }, other: { url: 'http://other:1', key: 'other-key' } } }));
    assert.deepEqual(resolveConnection({}, { WORKFLOW_CONFIG: profiles }, dir), { url: 'https://ci.example', key: 'key-from-file', keySource: 'keyFile ci.key' });
    assert.equal(resolveConnection({ profile: 'other' }, { WORKFLOW_CONFIG: profiles }, dir).key, 'other-key');
    assert.equal(resolveConnection({}, { WORKFLOW_CONFIG: profiles, WORKFLOW_API_KEY: 'env-key' }, dir).key, 'env-key');
    assert.equal(resolveConnection({ key: 'flag-key', url: 'http://flag:2' }, { WORKFLOW_CONFIG: profiles, WORKFLOW_API_KEY: 'env-key' }, dir).url, 'http://flag:2');
    assert.throws(() => resolveConnection({ profile: 'nope' }, { WORKFLOW_CONFIG: profiles }, dir), (e: CliError) => e.code === EXIT.usage && /no profile "nope"/.test(e.message));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ profiles: { x: { url: 'ftp://x', extra: 1 } } }));
    assert.throws(() => resolveConnection({}, { WORKFLOW_CONFIG: join(dir, 'bad.json') }, dir), (e: CliError) => e.code === EXIT.usage && /profiles\/x/.test(e.message));
  });

  test('zero configuration: 127.0.0.1:8080 and the key in .data/dev-api-key', () => {
    const cwd = join(dir, 'checkout');
    mkdirSync(join(cwd, '.data'), { recursive: true });
    writeFileSync(join(cwd, '.data', 'dev-api-key'), 'dev-key-0123456789\n');
    const connection = resolveConnection({}, env(), cwd);
    assert.equal(connection.url, 'http://127.0.0.1:8080');
    assert.equal(connection.key, 'dev-key-0123456789');
    assert.throws(() => resolveConnection({ url: 'localhost:8080' }, env(), cwd), /must start with http/);
  });

  test('offline validation is the API\'s validator without the catalog: structure, references and paths', () => {
    const ok = validateOffline({ name: 'x', version: '1.0.0', lane: 'anything', steps: [{ id: 'a', type: 'skill', skill: 'not-known-offline' }, { id: 'b', type: 'skill', skill: 'echo', inputs: { v: '${a.out}' } }] });
    assert.deepEqual(ok, { valid: true, errors: [] });
    const bad = validateOffline({ name: 'x', version: '1.0.0', steps: [{ id: 'a', type: 'skill', skill: 'echo', inputs: { v: '${later.out}' } }, { id: 'later', type: 'skill', skill: 'echo' }] });
    assert.equal(bad.valid, false);
    assert.equal(bad.errors[0]?.path, '/steps/0/inputs/v');
  });
});
