import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Seed 002's code skills (`code_inline`, `code_session`) through the real API, workers, Temporal
 * and PostgreSQL: the snippet runs in the QuickJS sandbox under the definition's resource limits,
 * and a snippet that breaks a limit fails its step without retry while the same workers go on.
 */

let platform: TestPlatform;

before(async () => {
  platform = await startTestPlatform({ database: 'postgres' });
});
after(async () => {
  await platform?.stop();
});

async function register(name: string, steps: unknown[], extra: Record<string, unknown> = {}) {
  return platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps, ...extra } });
}

async function runDefinition(name: string, steps: unknown[], extra: Record<string, unknown> = {}, input: unknown = {}): Promise<any> {
  const registered = await register(name, steps, extra);
  assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
  const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input } });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  return platform.waitForRun(started.body.runId ?? started.body.id, 60_000);
}

const stepOf = (view: any, id: string) => (view.steps as any[]).find((s) => s.id === id);

describe('code_inline and code_session end to end', () => {
  test('code_inline computes over args from the run input; code_session keeps its state across steps', async () => {
    const view = await runDefinition(
      'code-happy',
      [
        {
          id: 'total',
          type: 'skill',
          skill: 'code_inline',
          inputs: { code: 'console.log("items", args.items.length); return args.items.reduce((s, i) => s + i.price * i.qty, 0);', args: { items: '${input.items}' } },
        },
        { id: 'open', type: 'skill', skill: 'code_session', inputs: { code: 'state.seen = [args.total]; return state.seen.length;', args: { total: '${steps.total.output.result}' } } },
        {
          id: 'more',
          type: 'skill',
          skill: 'code_session',
          inputs: { code: 'state.seen.push(args.n); return state.seen.reduce((a, b) => a + b, 0);', args: { n: 5 }, state: '${steps.open.output.state}' },
        },
      ],
      { resource_limits: { max_memory_mb: 32, max_cpu_percent: 50 } },
      { items: [{ price: 2.5, qty: 4 }, { price: 1, qty: 3 }] },
    );
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.equal(stepOf(view, 'total').output.result, 13);
    assert.deepEqual(stepOf(view, 'total').output.logs, ['items 2']);
    assert.equal(typeof stepOf(view, 'total').output.cpu_ms, 'number');
    assert.deepEqual(stepOf(view, 'open').output.state, { seen: [13] });
    assert.equal(stepOf(view, 'more').output.result, 18);
    assert.deepEqual(stepOf(view, 'more').output.state, { seen: [13, 5] });
  });

  test('a runaway loop ends with CodeTimeLimit after timeout × max_cpu_percent, once; an allocation bomb with CodeMemoryLimit; the worker keeps serving', async () => {
    const started = Date.now();
    // 10 s step timeout × 10 % = a 1 s CPU budget.
    const loop = await runDefinition('code-loop', [{ id: 'spin', type: 'skill', skill: 'code_inline', timeout: 10, retry: { max_attempts: 3 }, inputs: { code: 'for (;;) {}' } }], {
      resource_limits: { max_cpu_percent: 10 },
    });
    assert.equal(loop.status, 'failed', JSON.stringify(loop));
    const text = JSON.stringify(loop);
    assert.match(text, /CodeTimeLimit/);
    assert.match(text, /CPU budget of 1000 ms/);
    // Non-retryable: one attempt although the step allows three, well inside the step timeout.
    assert.doesNotMatch(text, /after [23] attempts/);
    assert.ok(Date.now() - started < 30_000);

    const bomb = await runDefinition(
      'code-bomb',
      [{ id: 'grow', type: 'skill', skill: 'code_inline', timeout: 20, inputs: { code: 'const a = []; for (;;) a.push(new Array(1e5).fill(a.length));' } }],
      { resource_limits: { max_memory_mb: 16 } },
    );
    assert.equal(bomb.status, 'failed', JSON.stringify(bomb));
    assert.match(JSON.stringify(bomb), /CodeMemoryLimit/);
    assert.match(JSON.stringify(bomb), /memory limit of 16 MB/);

    // The same platform's workers run the next snippet to completion.
    const next = await runDefinition('code-after', [{ id: 'ok', type: 'skill', skill: 'code_inline', inputs: { code: 'return 6 * 7' } }]);
    assert.equal(next.status, 'completed', JSON.stringify(next));
    assert.equal(stepOf(next, 'ok').output.result, 42);
  });

  test('no filesystem, network or process: escapes find nothing, and require fails the step with CodeError', async () => {
    const probe = await runDefinition('code-probe', [
      {
        id: 'probe',
        type: 'skill',
        skill: 'code_inline',
        inputs: {
          code: [
            'const viaCtor = (0, globalThis.constructor.constructor)("return [typeof process, typeof require, typeof fetch, typeof this]")();',
            'const viaFn = Function("return typeof globalThis.process")();',
            'return { require: typeof require, process: typeof process, fetch: typeof fetch, xhr: typeof XMLHttpRequest, importFn: typeof importScripts,',
            '  setTimeout: typeof setTimeout, viaCtor, viaFn, globals: Object.getOwnPropertyNames(globalThis) };',
          ].join('\n'),
        },
      },
    ]);
    assert.equal(probe.status, 'completed', JSON.stringify(probe));
    const found = stepOf(probe, 'probe').output.result;
    for (const name of ['require', 'process', 'fetch', 'xhr', 'importFn', 'setTimeout']) assert.equal(found[name], 'undefined', name);
    assert.deepEqual(found.viaCtor.slice(0, 3), ['undefined', 'undefined', 'undefined']);
    assert.equal(found.viaFn, 'undefined');
    for (const name of ['process', 'require', 'fetch', 'Deno', 'Bun', 'std', 'os']) assert.ok(!found.globals.includes(name), name);

    const required = await runDefinition('code-require', [{ id: 'fs', type: 'skill', skill: 'code_inline', inputs: { code: 'return require("fs").readFileSync("/etc/passwd", "utf8")' } }]);
    assert.equal(required.status, 'failed', JSON.stringify(required));
    assert.match(JSON.stringify(required), /CodeError/);
    assert.match(JSON.stringify(required), /ReferenceError: 'require' is not defined/);

    const imported = await runDefinition('code-import', [{ id: 'imp', type: 'skill', skill: 'code_inline', inputs: { code: 'const m = await import("node:fs"); return typeof m' } }]);
    assert.equal(imported.status, 'failed', JSON.stringify(imported));
    assert.match(JSON.stringify(imported), /CodeError/);
  });

  test('bad definitions are refused at registration with the JSON path at fault', async () => {
    const syntax = await register('code-syntax', [{ id: 'a', type: 'skill', skill: 'code_inline', inputs: { code: 'return )(' } }]);
    assert.equal(syntax.status, 400, JSON.stringify(syntax.body));
    assert.match(JSON.stringify(syntax.body), /\/steps\/0\/inputs\/code/);
    assert.match(JSON.stringify(syntax.body), /does not parse/);

    const missing = await register('code-missing', [{ id: 'a', type: 'skill', skill: 'code_session', inputs: { args: {}, stat: {} } }]);
    assert.equal(missing.status, 400, JSON.stringify(missing.body));
    assert.match(JSON.stringify(missing.body), /\/steps\/0\/inputs\/code/);
    assert.match(JSON.stringify(missing.body), /\/steps\/0\/inputs\/stat/);

    const memory = await register('code-memory', [{ id: 'a', type: 'skill', skill: 'code_inline', inputs: { code: 'return 1' } }], { resource_limits: { max_memory_mb: 0 } });
    assert.equal(memory.status, 400, JSON.stringify(memory.body));
    assert.match(JSON.stringify(memory.body), /\/resource_limits\/max_memory_mb/);
  });
});
