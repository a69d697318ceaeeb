import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));
const plain = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

/**
 * Drives `workflow create` like a person at the keyboard: waits for each prompt of the real
 * @inquirer/prompts UI on the subprocess's stdout, then types the answer (a digit picks a choice
 * of a list, Enter takes the default).
 */
async function script(args: string[], env: NodeJS.ProcessEnv, cwd: string, steps: Array<[RegExp, string]>) {
  const child = spawn(process.execPath, [BIN, ...args], { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let pending = '';
  let stderr = '';
  let index = 0;
  const answered: string[] = [];
  const advance = () => {
    while (index < steps.length) {
      const [expected, keys] = steps[index]!;
      if (!expected.test(plain(pending))) return;
      answered.push(expected.source);
      pending = '';
      index++;
      child.stdin.write(keys);
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk;
    pending += chunk;
    advance();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGTERM'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, output: plain(output), stderr, answered: index, waitingFor: steps[index]?.[0].source };
}

describe('workflow create: the wizard with scripted answers', () => {
  let platform: TestPlatform;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'workflow-wizard-'));
    platform = await startTestPlatform({ database: 'pglite' });
  });
  after(async () => {
    await platform?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('seven steps from purpose to a registered definition: catalog suggestions, data flow, failure strategies, server validation', async () => {
    const env = { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: KEYS.submitter };
    const out = join(work, 'greeting.json');
    const result = await script(['create'], env, work, [
      [/What should this workflow accomplish\?/, 'Greet a customer and get a sign-off\r'],
      [/Name/, 'wizard-greeting\r'],
      [/Version/, '\r'],
      [/Lane/, '\r'],
      [/Fields of the run's input/, 'name, amount\r'],
      // Step 1: a skill from the catalog, found by typing
      [/What does the first step do\?/, '1\r'],
      [/Which skill\?/, 'ech'],
      [/❯ echo\s*\n\s*\n\s*Returns its inputs/, '\r'], // filtered down to echo
      [/Step id/, 'greet\r'],
      [/takes any input\. Pass it something\?/, 'y\r'],
      [/Field name/, 'greeting\r'],
      [/greeting: any/, '1\r'], // the run's input: name
      [/Output fields later steps will read/, 'greeting\r'],
      [/If this step fails[\s\S]*Then/, '2\r'], // retry
      [/Attempts in all/, '\u0008\u00084\r'],
      [/Backoff/, '3\r'], // fixed
      // Step 2: an approval that shows the first step's output
      [/Add another step\?/, '4\r'],
      [/Step id/, '\r'],
      [/What the approvers are asked/, 'Send ${steps.greet.output.greeting}?\r'],
      [/Approvers by name/, 'abby\r'],
      [/Approver groups/, '\r'],
      [/How many must approve\?/, '\r'],
      [/If this step fails[\s\S]*Then/, '1\r'], // halt
      // Step 3: a second skill wired to the first step's declared output
      [/Add another step\?/, '1\r'],
      [/Which skill\?/, 'ech'],
      [/❯ echo\s*\n\s*\n\s*Returns its inputs/, '\r'],
      [/Step id/, 'deliver\r'],
      [/takes any input\. Pass it something\?/, '\r'],
      [/Field name/, 'message\r'],
      [/message: any/, '3\r'], // output of greet: greeting (after name, amount)
      [/Output fields later steps will read/, '\r'],
      [/If this step fails[\s\S]*Then/, '3\r'], // skip
      [/Add another step\?/, '5\r'], // done
      [/Save to/, `${out}\r`],
      [/Register it on the platform now\?/, '\r'],
    ]);
    assert.equal(result.code, 0, `stopped waiting for ${result.waitingFor}\n${result.output}\n${result.stderr}`);
    assert.match(result.output, /6\/7 {2}Review/);
    assert.match(result.output, /The server validated it: no problems\./);
    assert.match(result.output, /Registered wizard-greeting@1\.0\.0\. Run it: workflow run "wizard-greeting" --follow/);

    const saved = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(saved, {
      name: 'wizard-greeting',
      version: '1.0.0',
      description: 'Greet a customer and get a sign-off',
      steps: [
        { id: 'greet', type: 'skill', skill: 'echo', inputs: { greeting: '${input.name}' }, outputs: ['greeting'] },
        { id: 'sign-off', type: 'approval', summary: 'Send ${steps.greet.output.greeting}?', approvers: { principals: ['abby'] } },
        { id: 'deliver', type: 'skill', skill: 'echo', inputs: { message: '${steps.greet.output.greeting}' } },
      ],
      error_handling: { default: 'halt', per_step: { greet: { strategy: 'retry', max_attempts: 4, backoff: 'fixed' }, deliver: { strategy: 'skip', continue_on_error: true } } },
    });
    const registered = await platform.api('/v1/definitions/wizard-greeting');
    assert.equal(registered.status, 200);
    assert.deepEqual(registered.body.definition, saved);

    // The definition it wrote runs: input → greet → approval → deliver.
    const run = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'wizard-greeting', input: { name: 'Ada', amount: 3 } } });
    assert.equal(run.status, 201);
    let decided = { status: 0 };
    for (let i = 0; i < 100 && decided.status !== 200; i++) {
      decided = await platform.api(`/v1/runs/${run.body.runId}/approvals/sign-off`, { method: 'POST', key: KEYS.approver, json: { decision: 'approve' } });
      if (decided.status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    const final = await platform.waitForRun(run.body.runId);
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.output, { message: 'Ada' });
  });

  test('Ctrl-C in a prompt saves nothing and exits 130', async () => {
    const env = { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: KEYS.submitter };
    const result = await script(['create'], env, work, [[/What should this workflow accomplish\?/, '\u0003']]);
    assert.equal(result.code, 130, result.output + result.stderr);
    assert.match(result.stderr, /cancelled; nothing was saved/);
  });
});
