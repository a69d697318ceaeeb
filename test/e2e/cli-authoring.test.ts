import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));

/**
 * The authoring commands of the `workflow` CLI (issue 16 over issue 15's APIs) as a user runs
 * them: a subprocess of cli/workflow.mjs against a real platform, talking only to the REST API.
 */
describe('workflow CLI: authoring commands', () => {
  let platform: TestPlatform;
  let work: string;

  const cli = (args: string[], key: string = KEYS.submitter) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: key },
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const file = (name: string, content: unknown) => {
    const path = join(work, name);
    writeFileSync(path, JSON.stringify(content, null, 2));
    return path;
  };

  const gated = {
    name: 'cli-dry',
    version: '1.0.0',
    steps: [
      { id: 'fetch', type: 'skill', skill: 'echo', inputs: { amount: '${input.amount}' } },
      {
        id: 'big',
        type: 'conditional',
        condition: '${fetch.amount > 100}',
        then: [{ id: 'sign-off', type: 'approval', approvers: { principals: ['abby'] } }],
      },
      { id: 'done', type: 'skill', skill: 'echo', inputs: { ok: true } },
    ],
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'workflow-cli-authoring-'));
    platform = await startTestPlatform({ database: 'pglite' });
  });

  after(async () => {
    await platform?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('dry-run <file>: the path, the steps and the prediction; a scripted rejection exits 1', async () => {
    const definition = file('gated.json', gated);
    const ok = await cli(['dry-run', definition, '--input', '{"amount": 500}', '--scenario', file('ok.json', { mocks: { fetch: { output: { amount: 500 } } } })]);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /dry run of cli-dry@1\.0\.0 \(inline\): completed/);
    assert.match(ok.stdout, /sign-off\s+\(approval\)/);
    assert.match(ok.stdout, /approval sign-off: approved \(approve by abby\)/);
    assert.match(ok.stdout, /predicted history: \d+ events in 1 run\(s\)/);

    const rejected = await cli([
      'dry-run',
      definition,
      '--input',
      '{"amount": 500}',
      '--json',
      '--scenario',
      file('reject.json', { mocks: { fetch: { output: { amount: 500 } } }, approvals: { 'sign-off': { decision: 'reject', by: 'abby', comment: 'no' } } }),
    ]);
    assert.equal(rejected.code, 1, rejected.stderr);
    const report = JSON.parse(rejected.stdout);
    assert.equal(report.status, 'failed');
    assert.equal(report.error.type, 'ApprovalRejected');
  });

  test('dry-run <name> of a registered version; unknown names and bad scenarios exit with the API problem', async () => {
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: gated });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const small = await cli(['dry-run', 'cli-dry', '--version', '1.0.0', '--input', '{"amount": 5}', '--json']);
    assert.equal(small.code, 0, small.stderr);
    const report = JSON.parse(small.stdout);
    assert.equal(report.definition.source, 'registered');
    assert.deepEqual(report.path.map((p: { step: string }) => p.step), ['fetch', 'big', 'done']);
    // echo has an open output schema: the generated answer is an empty object, so amount is unknown: the else branch.

    const missing = await cli(['dry-run', 'no-such-definition']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /no active version of definition "no-such-definition"/);

    const bad = await cli(['dry-run', 'cli-dry', '--scenario', file('bad.json', { mocks: { 'sign-off': { output: 1 } } })]);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /\/mocks\/sign-off/);
  });

  test('docs <name>: the operator doc of the registered version, from the API; --out writes it', async () => {
    const api = await platform.api('/v1/definitions/cli-dry/versions/1.0.0/operator-doc');
    assert.equal(api.status, 200);
    assert.match(api.headers.get('content-type') ?? '', /^text\/markdown/);
    const printed = await cli(['docs', 'cli-dry']);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, api.body);
    assert.match(printed.stdout, /^# cli-dry$/m);
    assert.match(printed.stdout, /registered by sam at .*status `active`/);
    assert.match(printed.stdout, /\*\*`sign-off`:\*\* `abby`, quorum 1, never the run's starter, no deadline/);
    assert.match(printed.stdout, /## 13\. Rollout and Operations/);
    const out = join(work, 'cli-dry.md');
    const written = await cli(['docs', 'cli-dry', '1.0.0', '--out', out]);
    assert.equal(written.code, 0, written.stderr);
    assert.match(written.stderr, /wrote .*cli-dry\.md \(cli-dry@1\.0\.0; \d+ TODO\(s\) for the owner\)/);
    assert.equal(readFileSync(out, 'utf8'), api.body);
    const missing = await cli(['docs', 'cli-dry', '9.9.9']);
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /no definition "cli-dry" version "9\.9\.9"/);
  });

  test('promote and rollback: the gate over two echo versions, the faster promoted, then rolled back', async () => {
    const slow = { name: 'cli-gate', version: '1.0.0', steps: [{ id: 'pause', type: 'wait', duration: 3 }, { id: 'say', type: 'skill', skill: 'echo', inputs: { p: '${input.p}' } }] };
    const fast = { ...slow, version: '2.0.0', steps: [slow.steps[1]] };
    for (const d of [slow, fast]) assert.equal((await platform.api('/v1/definitions', { method: 'POST', json: d })).status, 201);
    const classes = ['short', 'short', 'short', 'medium', 'medium', 'medium', 'long', 'long', 'workflow', 'workflow'];
    const battery = file('battery.json', classes.map((c, i) => ({ class: c, input: { p: i } })));
    const first = await cli(['promote', 'cli-gate', '1.0.0', '--battery', battery]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /production none in production/);
    assert.match(first.stdout, /promoted: production is now 1\.0\.0/);
    const second = await cli(['promote', 'cli-gate', '2.0.0', '--battery', battery, '--json']);
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const body = JSON.parse(second.stdout);
    assert.equal(body.decision.action, 'promoted', JSON.stringify(body.verdict));
    assert.equal(body.production.version, '1.0.0');
    const again = await cli(['promote', 'cli-gate', '2.0.0', '--battery', battery]);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /already production/);
    const rolled = await cli(['rollback', 'cli-gate', '--reason', 'check']);
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.match(rolled.stdout, /rolled back cli-gate: production 2\.0\.0 -> 1\.0\.0/);
  });
});
