import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * The workers' log lines of a run (GET /v1/runs/{id}/logs): what a skill writes through its run's
 * logger lands there with the step and attempt, is paged and filtered by level, stays inside the
 * tenant, is bounded per run, and has declared sensitive values scrubbed for callers without
 * `sensitive-reader` (the clear value for one with it).
 */

const keys: Record<'submitter' | 'reader' | 'other', string> = {
  /** The platform's own submitter key, which waitForRun uses. */
  submitter: KEYS.submitter,
  reader: 'runlogs-reader-key-000000',
  other: 'runlogs-other-key-0000000',
};
const SSN = '078-05-1120';

/** Logs what it is given (as a careless skill would), fails its first attempt when asked, then answers. */
const chatty = defineSkill({
  name: 'chatty',
  description: 'logs its note at info and warn; fails the first attempt when `failFirst`',
  input: z.object({ note: z.string(), failFirst: z.boolean().default(false), lines: z.number().int().default(0) }),
  output: z.object({ ok: z.boolean() }),
  sideEffects: false,
  async handler(input, ctx) {
    ctx.logger.info({ note: input.note, token: 'tok-should-be-redacted' }, `noting ${input.note}`);
    for (let i = 0; i < input.lines; i++) ctx.logger.info({ i }, 'filler');
    if (input.failFirst && ctx.attempt === 1) {
      ctx.logger.warn({ attempt: ctx.attempt }, 'first attempt gives up');
      throw new Error('not yet');
    }
    return { ok: true };
  },
});

describe('run logs: the workers\' lines of a run through the API', () => {
  let platform: TestPlatform;

  before(async () => {
    platform = await startTestPlatform({
      database: 'postgres',
      catalog: { skills: [chatty] },
      env: (lanes) => {
        const tenant = `logs-${lanes[0]!.slice(-6)}`;
        return {
          RUN_LOGS_MAX_PER_RUN: '20',
          API_KEYS: JSON.stringify([
            { key: keys.submitter, principal: 'sam', roles: ['submit'], tenant },
            { key: keys.reader, principal: 'sre', roles: ['submit', 'sensitive-reader'], tenant },
            { key: keys.other, principal: 'olga', roles: ['submit', 'sensitive-reader'], tenant: `other-${tenant}` },
          ]),
        };
      },
    });
    for (const definition of [
      {
        name: 'chatter',
        version: '1.0.0',
        steps: [
          { id: 'first', type: 'skill', skill: 'chatty', inputs: { note: 'hello', failFirst: true }, retry: { max_attempts: 3, initial_interval: 0.1 } },
          { id: 'second', type: 'skill', skill: 'echo', inputs: { text: 'done' } },
        ],
      },
      {
        name: 'chatter-sensitive',
        version: '1.0.0',
        sensitive: { input: ['/ssn'] },
        steps: [{ id: 'note', type: 'skill', skill: 'chatty', inputs: { note: 'ssn ${input.ssn}' } }],
      },
      { name: 'chatter-long', version: '1.0.0', steps: [{ id: 'flood', type: 'skill', skill: 'chatty', inputs: { note: 'many', lines: 60 } }] },
    ]) {
      const registered = await platform.api('/v1/definitions', { method: 'POST', key: keys.submitter, json: definition });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
    }
  });

  after(async () => {
    await platform?.stop();
  });

  async function run(definition: string, input: Record<string, unknown> = {}): Promise<string> {
    const started = await platform.api('/v1/runs', { method: 'POST', key: keys.submitter, json: { definition, input } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const done = await platform.waitForRun(started.body.runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return started.body.runId;
  }

  /** The run's lines once `until` holds (workers write them in batches, a little after the step). */
  async function linesOf(runId: string, query = '', until: (lines: any[]) => boolean = (l) => l.length > 0, key = keys.submitter): Promise<any[]> {
    for (let i = 0; ; i++) {
      const answer = await platform.api(`/v1/runs/${runId}/logs${query}`, { key });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      if (until(answer.body.lines) || i >= 100) return answer.body.lines;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('each attempt\'s lines, with step, attempt, level and fields; redacted; paged; filtered by level', async () => {
    const runId = await run('chatter');
    const lines = await linesOf(runId, '', (l) => l.some((x: any) => x.stepId === 'second' && x.msg === 'skill completed'));
    const of = (stepId: string, attempt: number) => lines.filter((l) => l.stepId === stepId && l.attempt === attempt).map((l) => `${l.level} ${l.msg}`);
    assert.deepEqual(of('first', 1), ['info skill started', 'info noting hello', 'warn first attempt gives up', 'warn skill failed'], JSON.stringify(lines));
    assert.deepEqual(of('first', 2), ['info skill started', 'info noting hello', 'info skill completed']);
    assert.deepEqual(of('second', 1), ['info skill started', 'info skill completed']);
    const failed = lines.find((l) => l.msg === 'skill failed');
    assert.equal(failed.fields.errorType, 'Error');
    assert.equal(failed.fields.err, 'not yet');
    assert.equal(failed.fields.skill, 'chatty');
    assert.ok(lines.every((l) => l.lane === platform.lanes[0] || platform.lanes.includes(l.lane)), 'each line names its lane');
    const noting = lines.find((l) => l.msg === 'noting hello');
    assert.equal(noting.fields.note, 'hello');
    assert.equal(noting.fields.token, '[redacted]', 'the workers\' redaction applies to kept lines too');
    assert.ok(lines.every((l, i) => i === 0 || l.id > lines[i - 1].id), 'ordered by id');

    const warnings = await linesOf(runId, '?level=warn');
    assert.deepEqual(warnings.map((l) => l.msg), ['first attempt gives up', 'skill failed']);

    const page1 = await platform.api(`/v1/runs/${runId}/logs?limit=3`, { key: keys.submitter });
    assert.equal(page1.body.lines.length, 3);
    assert.equal(page1.body.next, page1.body.lines[2].id);
    const page2 = await platform.api(`/v1/runs/${runId}/logs?limit=1000&after=${page1.body.next}`, { key: keys.submitter });
    assert.deepEqual([...page1.body.lines, ...page2.body.lines].map((l: any) => l.id), lines.map((l) => l.id));
    assert.equal(page2.body.next, undefined);

    const bad = await platform.api(`/v1/runs/${runId}/logs?level=chatter`, { key: keys.submitter });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].path, 'level');
    const otherTenant = await platform.api(`/v1/runs/${runId}/logs`, { key: keys.other });
    assert.equal(otherTenant.status, 404, 'another tenant\'s run has no logs to show');
  });

  test('a declared sensitive value is scrubbed from the lines for a caller without sensitive-reader', async () => {
    const runId = await run('chatter-sensitive', { ssn: SSN });
    const clear = await linesOf(runId, '', (l) => l.some((x: any) => x.msg === 'skill completed'), keys.reader);
    assert.ok(clear.some((l) => l.msg === `noting ssn ${SSN}` && l.fields.note === `ssn ${SSN}`), JSON.stringify(clear));
    const masked = await linesOf(runId, '', (l) => l.some((x: any) => x.msg === 'skill completed'));
    assert.ok(masked.length >= 3);
    assert.ok(!JSON.stringify(masked).includes(SSN), JSON.stringify(masked));
    assert.ok(masked.some((l) => l.msg.startsWith('noting ssn ') && l.msg.includes('[sensitive]')), JSON.stringify(masked));
  });

  test('a run keeps at most RUN_LOGS_MAX_PER_RUN lines per worker, and says so', async () => {
    const runId = await run('chatter-long');
    const lines = await linesOf(runId, '', (l) => l.length >= 21);
    await new Promise((r) => setTimeout(r, 600));
    const settled = await linesOf(runId);
    assert.equal(settled.length, 21, JSON.stringify(settled.map((l) => l.msg)));
    assert.deepEqual(settled.slice(0, 20).map((l) => l.id), lines.slice(0, 20).map((l) => l.id));
    assert.equal(settled[20].level, 'warn');
    assert.match(settled[20].msg, /further log lines of this run are not kept.*RUN_LOGS_MAX_PER_RUN=20/);
  });
});
