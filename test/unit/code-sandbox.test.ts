import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runInSandbox, SandboxError, type SandboxLimits } from '../../activities/sandbox/sandbox.ts';
import { createSkillActivities } from '../../activities/skills/activities.ts';
import { codeInlineSkill, codeSessionSkill, sandboxLimitsFor } from '../../activities/skills/code.ts';
import { boundHistory, MAX_HISTORY_MESSAGES, renderTemplate } from '../../activities/skills/prompt.ts';
import type { SkillCallMeta } from '../../activities/skills/types.ts';
import { createLogger } from '../../common/logger.ts';

const limits: SandboxLimits = { memoryMb: 16, cpuBudgetMs: 2000, wallMs: 20_000 };
const run = (code: string, args: unknown = {}, over: Partial<SandboxLimits> = {}) => runInSandbox({ code, args, limits: { ...limits, ...over } });
const failure = async (code: string, over: Partial<SandboxLimits> = {}): Promise<SandboxError> => {
  try {
    await run(code, {}, over);
  } catch (error) {
    assert.ok(error instanceof SandboxError, String(error));
    return error;
  }
  assert.fail(`expected ${code} to fail`);
};

describe('the limits rule', () => {
  test('memory from max_memory_mb (default 64, clamped 4-1024); CPU = start-to-close × max_cpu_percent / 100; wall stops 0.5 s early', () => {
    assert.deepEqual(sandboxLimitsFor(undefined, 30_000), { memoryMb: 64, cpuBudgetMs: 30_000, wallMs: 29_500 });
    assert.deepEqual(sandboxLimitsFor({ max_memory_mb: 256, max_cpu_percent: 50 }, 10_000), { memoryMb: 256, cpuBudgetMs: 5000, wallMs: 9500 });
    assert.deepEqual(sandboxLimitsFor({ max_memory_mb: 100_000, max_cpu_percent: 0.5 }, 4000), { memoryMb: 1024, cpuBudgetMs: 20, wallMs: 3500 });
    assert.equal(sandboxLimitsFor({ max_memory_mb: 1 }, 4000).memoryMb, 4);
  });
});

describe('the QuickJS sandbox', () => {
  test('returns the value, the state it left and the console lines; async code works', async () => {
    const out = await runInSandbox({ code: 'console.log("n", args.n, {a: 1}); state.count = (state.count ?? 0) + args.n; await null; return [args.n * 2]', args: { n: 21 }, state: { count: 1 }, limits });
    assert.deepEqual(out.value, [42]);
    assert.deepEqual(out.state, { count: 22 });
    assert.deepEqual(out.logs, ['n 21 {"a":1}']);
    assert.equal(typeof out.cpuMs, 'number');
  });

  test('no way out: host globals are absent, the input global is gone, Function and eval stay inside', async () => {
    const out = await run(
      [
        'const seen = {};',
        'for (const name of ["require", "process", "fetch", "XMLHttpRequest", "WebSocket", "setTimeout", "setInterval", "Buffer", "module", "__input", "std", "os", "Deno", "Bun"])',
        '  seen[name] = typeof globalThis[name];',
        'seen.ctor = (0, globalThis.constructor.constructor)("return typeof process + typeof require")();',
        'seen.evaled = (0, eval)("typeof process");',
        'seen.fnProto = Object.getPrototypeOf(async function () {}).constructor("return typeof fetch")() instanceof Promise;',
        'seen.globals = Object.getOwnPropertyNames(globalThis).filter((n) => !/^[A-Z]/.test(n));',
        'return seen;',
      ].join('\n'),
    );
    const seen = out.value as Record<string, unknown>;
    for (const name of ['require', 'process', 'fetch', 'XMLHttpRequest', 'WebSocket', 'setTimeout', 'setInterval', 'Buffer', 'module', '__input', 'std', 'os', 'Deno', 'Bun']) {
      assert.equal(seen[name], 'undefined', name);
    }
    assert.equal(seen.ctor, 'undefinedundefined');
    assert.equal(seen.evaled, 'undefined');
    assert.equal(seen.fnProto, true);
    // Only the language's own lower-case globals (and the captured console).
    for (const name of seen.globals as string[]) assert.ok(['globalThis', 'console', 'parseInt', 'parseFloat', 'isNaN', 'isFinite', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape', 'unescape', 'eval', 'undefined', 'NaN', 'Infinity'].includes(name), name);

    const imported = await failure('return await import("node:fs")');
    assert.equal(imported.kind, 'error');
    const required = await failure('return require("child_process").execSync("id")');
    assert.equal(required.kind, 'error');
    assert.match(required.message, /ReferenceError: 'require' is not defined/);
  });

  test('a runaway loop stops at the CPU budget; a caught interrupt cannot keep it going', async () => {
    const started = Date.now();
    const loop = await failure('for (;;) {}', { cpuBudgetMs: 300 });
    assert.equal(loop.kind, 'time');
    assert.match(loop.message, /CPU budget of 300 ms/);
    const stubborn = await failure('for (;;) { try { for (;;) {} } catch (e) { } }', { cpuBudgetMs: 300 });
    assert.equal(stubborn.kind, 'time');
    assert.ok(Date.now() - started < 15_000);
  });

  test('the wall limit kills a thread that does not stop by itself', async () => {
    // A budget past the wall limit: the host terminates the thread.
    const killed = await failure('for (;;) {}', { cpuBudgetMs: 60_000, wallMs: 1500 });
    assert.equal(killed.kind, 'time');
    assert.match(killed.message, /time limit \(1500 ms\)/);
  });

  test('allocation bombs of every shape end as memory errors', async () => {
    for (const code of [
      'const a = []; for (;;) a.push(new Float64Array(1e5));',
      'const a = []; for (;;) a.push("x".repeat(1e5) + a.length);',
      'const a = []; for (;;) a.push({ n: a.length, list: [1, 2, 3] });',
      'return "x".repeat(1e9).length',
    ]) {
      const bomb = await failure(code, { cpuBudgetMs: 15_000 });
      assert.equal(bomb.kind, 'memory', `${code}: ${bomb.message}`);
      assert.match(bomb.message, /memory limit of 16 MB/);
    }
    // Below the limit the same shapes complete.
    assert.equal((await run('const a = []; for (let i = 0; i < 50; i++) a.push(new Float64Array(1e4)); return a.length')).value, 50);
  });

  test("the snippet's own errors keep their name and message; a thrown null is an error, not a memory fault", async () => {
    const typed = await failure('null.x');
    assert.equal(typed.kind, 'error');
    assert.equal(typed.jsName, 'TypeError');
    const thrownNull = await failure('throw null');
    assert.equal(thrownNull.kind, 'error');
    assert.match(thrownNull.message, /threw null/);
    const hanging = await failure('await new Promise(() => {})');
    assert.match(hanging.message, /never settles/);
    const large = await failure('return "x".repeat(600 * 1024)', { memoryMb: 64 });
    assert.match(large.message, /CodeOutputTooLarge: the result is \d+ bytes/);
  });

  test('cancellation stops a running snippet at once', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(runInSandbox({ code: 'for (;;) {}', args: {}, limits: { ...limits, cpuBudgetMs: 60_000, wallMs: 60_000 }, signal: controller.signal }), (e: unknown) => e instanceof SandboxError && e.kind === 'cancelled');
    assert.ok(Date.now() - started < 5000);
  });
});

describe('code_inline and code_session as activities', () => {
  const logger = createLogger('test', 'silent');
  const activities = createSkillActivities([codeInlineSkill, codeSessionSkill], logger);
  const meta = (resourceLimits?: SkillCallMeta['resourceLimits']): SkillCallMeta => ({
    stepId: 'code',
    definition: 'unit',
    version: '1.0.0',
    lane: 'prod-critical',
    tenant: 'acme',
    correlationId: 'corr-1',
    idempotencyKey: 'run-1/code',
    ...(resourceLimits ? { resourceLimits } : {}),
  });

  test('limits come from the definition and the attempt timeout; failures are typed and not retried; the next call works', async () => {
    // 10 s × 4 % = a 400 ms CPU budget, well before the wall limit even on a loaded machine.
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 10_000 });
    await assert.rejects(
      env.run(activities.code_inline!, { input: { code: 'for (;;) {}' }, meta: meta({ max_cpu_percent: 4 }) }),
      (e: unknown) => e instanceof ApplicationFailure && e.type === 'CodeTimeLimit' && e.nonRetryable && /CPU budget of 400 ms/.test(e.message),
    );
    await assert.rejects(
      env.run(activities.code_inline!, { input: { code: 'const a = []; for (;;) a.push(new Float64Array(1e5));' }, meta: meta({ max_memory_mb: 8 }) }),
      (e: unknown) => e instanceof ApplicationFailure && e.type === 'CodeMemoryLimit' && e.nonRetryable,
    );
    await assert.rejects(
      env.run(activities.code_inline!, { input: { code: 'throw new RangeError("too far")' }, meta: meta() }),
      (e: unknown) => e instanceof ApplicationFailure && e.type === 'CodeError' && e.nonRetryable && e.message === 'RangeError: too far',
    );
    const out = await env.run(activities.code_session!, { input: { code: 'state.n = (state.n ?? 0) + 1; return state.n', state: { n: 4 } }, meta: meta() });
    assert.deepEqual(out, { result: 5, state: { n: 5 }, logs: [], cpu_ms: (out as { cpu_ms: number }).cpu_ms });
  });

  test('a syntax error is an input error (the validator reports it at registration)', () => {
    const parsed = codeInlineSkill.input.safeParse({ code: 'return )(' });
    assert.equal(parsed.success, false);
    assert.match(JSON.stringify(parsed.error?.issues), /does not parse/);
    assert.equal(codeInlineSkill.input.safeParse({ code: 'return await Promise.resolve(args.x)' }).success, true);
  });
});

describe('prompt_inline templates and conversation history bounds', () => {
  test('{{name}} placeholders fill from vars (non-strings as JSON); a missing var is a non-retryable InvalidPromptTemplate', () => {
    assert.equal(renderTemplate('Hi {{ who }}, totals {{t}}', { who: 'Ada', t: [1, 2] }), 'Hi Ada, totals [1,2]');
    assert.throws(() => renderTemplate('Hi {{who}}', {}), (e: unknown) => e instanceof ApplicationFailure && e.type === 'InvalidPromptTemplate' && e.nonRetryable);
  });

  test('history keeps the newest messages within both bounds and starts with a user turn', () => {
    const turns = Array.from({ length: 30 }, (_, i) => [
      { role: 'user' as const, content: `q${i}` },
      { role: 'assistant' as const, content: `a${i}` },
    ]).flat();
    const bounded = boundHistory(turns);
    assert.equal(bounded.kept.length, MAX_HISTORY_MESSAGES);
    assert.equal(bounded.dropped, 60 - MAX_HISTORY_MESSAGES);
    assert.deepEqual(bounded.kept.at(-1), { role: 'assistant', content: 'a29' });
    assert.equal(bounded.kept[0]?.role, 'user');
    const long = boundHistory([{ role: 'user', content: 'x'.repeat(50) }, { role: 'assistant', content: 'y'.repeat(50) }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], 40, 60);
    assert.deepEqual(long.kept.map((m) => m.content), ['q', 'a']);
    assert.equal(long.dropped, 2);
  });
});
