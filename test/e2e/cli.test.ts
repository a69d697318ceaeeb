import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { seedCatalog } from '../support/seed-catalog.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The `workflow` CLI as a user runs it: a subprocess of cli/workflow.mjs against a real platform
 * (API over HTTP, workers on the dev server, PostgreSQL). Its only channel is the REST API.
 */
describe('workflow CLI against a real platform', () => {
  let platform: TestPlatform;
  let work: string;
  const env = (extra: Record<string, string> = {}) => ({
    PATH: process.env.PATH ?? '',
    HOME: work,
    WORKFLOW_CONFIG: join(work, 'no-profiles.json'),
    WORKFLOW_API_URL: platform.url,
    WORKFLOW_API_KEY: KEYS.lena,
    ...extra,
  });

  /** Starts the CLI; `lines` sees stdout line by line while it runs. */
  const start = (args: string[], options: { env?: Record<string, string>; cwd?: string; input?: string; lines?: (line: string) => void } = {}) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: options.env ?? env(), cwd: options.cwd ?? work, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      pending += chunk;
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        options.lines?.(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
    const done = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    return { child, done };
  };
  const cli = (args: string[], options: Parameters<typeof start>[1] = {}) => start(args, options).done;
  const file = (name: string, content: unknown) => {
    const path = join(work, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return path;
  };

  const retryAndApproval = {
    name: 'cli-flow',
    version: '1.0.0',
    description: 'A step that fails twice before it succeeds, then an approval',
    steps: [
      { id: 'flaky', type: 'skill', skill: 'boom', inputs: { times: 2 }, retry: { max_attempts: 3, backoff: 'fixed', initial_interval: 1 } },
      { id: 'sign-off', type: 'approval', summary: 'ship ${input.what}?', approvers: { principals: ['abby'] } },
      { id: 'done', type: 'skill', skill: 'echo', inputs: { shipped: '${input.what}' } },
    ],
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'workflow-cli-'));
    platform = await startTestPlatform({ database: 'postgres', catalog: seedCatalog().catalog });
  });

  after(async () => {
    await platform?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('validate works offline with JSON paths; a bad file and an invalid definition exit non-zero', async () => {
    const good = await cli(['validate', file('good.json', retryAndApproval)], { env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_API_URL: 'http://127.0.0.1:9' } });
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /valid/);

    const invalid = await cli(['validate', '--json', file('bad.json', { name: 'x', version: '1', steps: [{ id: 'a', type: 'skill' }] })]);
    assert.equal(invalid.code, 1);
    const body = JSON.parse(invalid.stdout);
    assert.equal(body.valid, false);
    assert.deepEqual(body.errors.map((e: any) => e.path).sort(), ['/steps/0/skill', '/version']);

    const missing = await cli(['validate', join(work, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.json: no such file/);
    const malformed = await cli(['validate', file('broken.json', '{"name": ')]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /not valid JSON/);

    // The server knows the catalog: an unknown skill is refused there, with its path.
    const remote = await cli(['validate', '--remote', file('unknown-skill.json', { name: 'x', version: '1.0.0', steps: [{ id: 'a', type: 'skill', skill: 'nosuch' }] })]);
    assert.equal(remote.code, 1);
    assert.match(remote.stdout, /\/steps\/0\/skill: unknown skill "nosuch"/);
  });

  test('register, list, history, diff; registering an invalid definition shows the server\'s paths', async () => {
    const first = await cli(['register', file('flow.json', retryAndApproval)]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /registered cli-flow@1\.0\.0/);
    const again = await cli(['register', join(work, 'flow.json')]);
    assert.match(again.stdout, /already registered/);
    const v2 = { ...retryAndApproval, version: '1.1.0', description: 'second' };
    assert.equal((await cli(['register', file('flow-v2.json', v2)])).code, 0);

    const list = await cli(['list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^NAME\s+LATEST\s+VERSIONS/m);
    assert.match(list.stdout, /cli-flow\s+1\.1\.0\s+2/);
    const listJson = JSON.parse((await cli(['list', '--json'])).stdout);
    assert.ok(listJson.definitions.some((d: any) => d.name === 'cli-flow'));

    const history = await cli(['history', 'cli-flow', '--json']);
    assert.deepEqual(JSON.parse(history.stdout).versions.map((v: any) => [v.version, v.status]), [['1.1.0', 'active'], ['1.0.0', 'active']]);
    const diff = await cli(['diff', 'cli-flow', '1.0.0', '1.1.0']);
    assert.equal(diff.code, 0);
    assert.match(diff.stdout, /~ replace\s+\/version\s+"1\.1\.0"/);
    assert.match(diff.stdout, /\/description\s+"second"/);

    const bad = await cli(['register', file('bad-skill.json', { name: 'y', version: '1.0.0', steps: [{ id: 'a', type: 'skill', skill: 'nosuch' }] })]);
    assert.equal(bad.code, 5);
    assert.match(bad.stderr, /400 Invalid definition/);
    assert.match(bad.stderr, /\/steps\/0\/skill: unknown skill "nosuch"/);
    const graph = await cli(['graph', 'cli-flow', '1.0.0']);
    assert.equal(graph.code, 0, graph.stderr);
    assert.match(graph.stdout, /^flowchart TD/m);
    assert.match(graph.stdout, /sign-off/);
    const unknown = await cli(['history', 'no-such-definition']);
    assert.equal(unknown.code, 4);
  });

  test('wrong key, unknown run, unreachable platform: distinct exit codes and clear messages', async () => {
    const wrong = await cli(['list'], { env: env({ WORKFLOW_API_KEY: 'not-a-valid-key-at-all' }) });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /401 .*the API key is not valid/);
    assert.match(wrong.stderr, /the key came from WORKFLOW_API_KEY/);

    const unknownRun = await cli(['status', 'no-such-run']);
    assert.equal(unknownRun.code, 4);
    assert.match(unknownRun.stderr, /404 .*no run "no-such-run"/);
    const json = await cli(['status', 'no-such-run', '--json']);
    assert.equal(JSON.parse(json.stdout).status, 404);

    const down = await cli(['list', '--url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 6);
    assert.match(down.stderr, /not reachable at http:\/\/127\.0\.0\.1:9/);

    const noRole = await cli(['run', 'cli-flow'], { env: env({ WORKFLOW_API_KEY: KEYS.approver }) });
    assert.equal(noRole.code, 3);
    assert.match(noRole.stderr, /403 .*this needs the role "submit"/);

    const badInput = await cli(['run', 'cli-flow', '--input', '{not json']);
    assert.equal(badInput.code, 2);
    assert.match(badInput.stderr, /--input is neither JSON nor a readable file/);
  });

  test('zero configuration: the key comes from .data/dev-api-key; a profile file names URL and key', async () => {
    const checkout = join(work, 'checkout');
    mkdirSync(join(checkout, '.data'), { recursive: true });
    writeFileSync(join(checkout, '.data', 'dev-api-key'), `${KEYS.submitter}\n`);
    const dev = await cli(['list', '--json'], { cwd: checkout, env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_API_URL: platform.url } });
    assert.equal(dev.code, 0, dev.stderr);

    const profiles = file('profiles.json', { default: 'staging', profiles: { staging: { url: platform.url, key: KEYS.submitter }, broken: { url: 'http://127.0.0.1:9' } } });
    const viaProfile = await cli(['list', '--json'], { env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: profiles } });
    assert.equal(viaProfile.code, 0, viaProfile.stderr);
    const named = await cli(['list', '--profile', 'broken'], { env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: profiles } });
    assert.equal(named.code, 6);
    const missing = await cli(['list', '--profile', 'nope'], { env: { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: profiles } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no profile "nope".*profiles: staging, broken/);
  });

  test('run --follow streams a retry and an approval as JSON lines; approve from another key; exit 0', async () => {
    const seen: any[] = [];
    let approved: Promise<Result> | undefined;
    const follow = start(['run', 'cli-flow', '--version', '1.0.0', '--input', '{"what":"v2"}', '--follow', '--json'], {
      lines: (line) => {
        const event = JSON.parse(line);
        seen.push(event);
        if (event.event === 'step' && event.data.status === 'waiting' && !approved) {
          approved = cli(['approve', runIdOf(seen), 'sign-off', '--comment', 'looks good'], { env: env({ WORKFLOW_API_KEY: KEYS.approver }) });
        }
      },
    });
    const result = await follow.done;
    assert.equal(result.code, 0, result.stderr);
    const approval = await approved;
    assert.equal(approval?.code, 0, approval?.stderr);
    assert.match(approval?.stdout ?? '', /approved sign-off/);

    const steps = seen.filter((e) => e.event === 'step').map((e) => e.data);
    const retries = steps.filter((s) => s.stepId === 'flaky' && s.status === 'retrying');
    assert.ok(retries.length >= 1, JSON.stringify(steps));
    assert.match(retries[0].error.message, /boom #1/);
    assert.ok(retries[0].attempt >= 2);
    const waiting = steps.find((s) => s.status === 'waiting');
    assert.deepEqual(waiting.approval.approvers.principals, ['abby']);
    assert.equal(waiting.approval.summary, 'ship v2?');
    const completed = steps.filter((s) => s.status === 'completed').map((s) => s.stepId);
    assert.deepEqual(completed, ['flaky', 'sign-off', 'done']);
    assert.ok(steps.find((s) => s.stepId === 'flaky' && s.status === 'completed').elapsedMs >= 1000);
    const end = seen.at(-1);
    assert.equal(end.event, 'end');
    assert.equal(end.data.status, 'completed');
    assert.deepEqual(end.data.output, { shipped: 'v2' });
    assert.ok(seen.some((e) => e.event === 'lifecycle' && e.data.type === 'workflow.approval.decided'));

    const runId = runIdOf(seen);
    const status = await cli(['status', runId]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /status\s+completed/);
    assert.match(status.stdout, /Temporal\s+http.*\/workflows\//);
    assert.match(status.stdout, /flaky\s+completed/);
    const logs = await cli(['logs', runId]);
    assert.equal(logs.code, 0);
    assert.match(logs.stdout, /run\.started .*by lena/);
    assert.match(logs.stdout, /approval\.decided\s+sign-off\s+approved/);
    assert.match(logs.stdout, /run\.completed/);
    // The workers' lines of the run, merged with its events by time: the failed first attempt, the retry's success.
    assert.match(logs.stdout, /log warn\s+flaky\s+skill failed\s.*errorType=/);
    assert.match(logs.stdout, /log info\s+flaky#\d\s+skill completed\s.*ms=\d+/);
    assert.ok(logs.stdout.indexOf('run.started') < logs.stdout.indexOf('skill started'), logs.stdout);
    assert.ok(logs.stdout.indexOf('skill completed') < logs.stdout.indexOf('run.completed'), logs.stdout);
    const logsJson = JSON.parse((await cli(['logs', runId, '--json', '--level', 'warn'])).stdout);
    assert.ok(logsJson.lines.length >= 1 && logsJson.lines.every((l: any) => l.level === 'warn'), JSON.stringify(logsJson.lines));
    assert.ok(logsJson.events.some((e: any) => e.type === 'workflow.run.completed'));
    const eventsOnly = await cli(['logs', runId, '--events-only']);
    assert.doesNotMatch(eventsOnly.stdout, /log info/);
    const runGraph = JSON.parse((await cli(['graph', '--run', runId, '--json'])).stdout);
    assert.equal(runGraph.steps.flaky, 'completed');
    const runs = JSON.parse((await cli(['runs', '--definition', 'cli-flow', '--json'])).stdout);
    assert.ok(runs.runs.some((r: any) => r.runId === runId));
  });

  test('a failed run exits 1 from run --follow and from status; stop cancels a waiting run; inbox lists it first', async () => {
    const failing = { name: 'cli-fails', version: '1.0.0', steps: [{ id: 'explode', type: 'skill', skill: 'boom', inputs: { nonRetryable: true, type: 'Kaboom' } }] };
    assert.equal((await cli(['register', file('fails.json', failing)])).code, 0);
    const run = await cli(['run', 'cli-fails', '--follow', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.at(-1).data.status, 'failed');
    assert.match(events.at(-1).data.error.message, /boom #1/);
    assert.ok(events.some((e) => e.event === 'step' && e.data.stepId === 'explode' && e.data.status === 'failed'));
    const runId = events[0].data.runId;
    const status = await cli(['status', runId]);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /status\s+failed/);
    assert.match(status.stdout, /error\s+step "explode" failed after 1 attempt\(s\): boom #1\s+\[Kaboom\]/);
    // logs --follow on an ended run: its lifecycle events and its workers' lines (`type: log`), then it returns.
    const followed = await cli(['logs', runId, '--follow', '--json']);
    const items = followed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(items.some((i) => i.type === 'workflow.run.failed'), followed.stdout);
    const failedLine = items.find((i) => i.type === 'log' && i.msg === 'skill failed');
    assert.equal(failedLine?.stepId, 'explode', followed.stdout);
    assert.equal(failedLine.fields.errorType, 'Kaboom');

    // On a terminal (a pseudo-terminal from util-linux `script`): persisted lines with symbols, no JSON.
    if (existsSync('/usr/bin/script')) {
      const command = [process.execPath, BIN, 'status', runId, '--follow'].map((a) => `'${a}'`).join(' ');
      const tty = await new Promise<Result>((resolve) => {
        const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { env: env(), cwd: work, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
        child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
      });
      assert.equal(tty.code, 1, tty.stdout);
      assert.match(tty.stdout, /▶ cli-fails@1\.0\.0 {2}run /);
      assert.match(tty.stdout, /Temporal Web: http/);
      assert.match(tty.stdout, /✖ explode {2}failed/);
      assert.match(tty.stdout, /✖ run failed: step "explode" failed/);
      assert.doesNotMatch(tty.stdout, /"event"/);
    }

    // A run waiting for abby: in abby's inbox, then stopped.
    const started = await cli(['run', 'cli-flow', '--version', '1.0.0', '--input', file('input.json', { what: 'inbox' })]);
    assert.equal(started.code, 0, started.stderr);
    const waitingRun = started.stdout.trim();
    let inbox: any;
    for (let i = 0; i < 100; i++) {
      inbox = JSON.parse((await cli(['inbox', '--json'], { env: env({ WORKFLOW_API_KEY: KEYS.approver }) })).stdout);
      if (inbox.approvals.some((a: any) => a.runId === waitingRun)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(inbox.approvals.some((a: any) => a.runId === waitingRun && a.step === 'sign-off'), JSON.stringify(inbox));
    const table = await cli(['inbox'], { env: env({ WORKFLOW_API_KEY: KEYS.approver }) });
    assert.match(table.stdout, new RegExp(`${waitingRun}\\s+sign-off\\s+cli-flow@1\\.0\\.0\\s+ship inbox\\?`));
    const stop = await cli(['stop', waitingRun]);
    assert.equal(stop.code, 0, stop.stderr);
    const final = await platform.waitForRun(waitingRun);
    assert.equal(final.status, 'cancelled');
    assert.equal((await cli(['status', waitingRun])).code, 1);
    const again = await cli(['stop', waitingRun]);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /409 .*already cancelled/);
  });
});

function runIdOf(events: any[]): string {
  return events.find((e) => e.event === 'run').data.runId;
}
