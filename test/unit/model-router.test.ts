import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_ROUTING_TABLE,
  laneAllowed,
  loadModelRoutes,
  modelRouteNames,
  parseRoutingTable,
  readApiKey,
  resolveRoute,
  routeChain,
  routeRefusal,
  ModelRoutesError,
  UnknownModelRoute,
} from '../../activities/models/router.ts';

/** The routing table: where it comes from, what it refuses, how names resolve and who may use a route. */

const BASES = { OLLAMA_BASE_URL: 'http://127.0.0.1:11434', OPENAI_BASE_URL: 'https://api.openai.com/v1' };

const cloud = {
  provider: 'openai',
  providerModel: 'gpt-4o-mini',
  cloud: true,
  apiKeyEnv: 'OPENAI_API_KEY',
  lanes: ['prod-critical'],
  reason: 'premium quality for grant drafts',
};

describe('default table (seed 003)', () => {
  test('routes, their provider models, fallbacks and aliases', () => {
    const table = loadModelRoutes(BASES);
    assert.equal(table.source, 'built-in default (seed 003)');
    assert.equal(resolveRoute(table, 'local/qwen-14b').providerModel, 'qwen3:14b');
    assert.equal(resolveRoute(table, 'local/qwen-14b').baseUrl, 'http://127.0.0.1:11434');
    assert.deepEqual(routeChain(table, 'default').map((r) => r.name), ['local/qwen-14b', 'local/mistral-small']);
    assert.equal(resolveRoute(table, 'coding').name, 'local/qwen-coder-32b');
    assert.equal(resolveRoute(table, 'local/qwen2.5-14b').legacy, true);
    // The coder falls back to the generalist, whose own fallback follows it (depth-first, once each).
    assert.deepEqual(routeChain(table, 'coding').map((r) => r.name), ['local/qwen-coder-32b', 'local/qwen-14b', 'local/mistral-small']);
    assert.equal(Object.values(table.routes).some((r) => r.cloud), false);
    assert.equal(resolveRoute(table, 'local/qwen-14b').timeouts.idleMs, 30_000);
  });

  test('modelRouteNames lists routes and aliases for the registration validator', () => {
    assert.deepEqual(modelRouteNames(BASES), [
      'coding',
      'default',
      'fallback',
      'general',
      'legacy',
      'local/mistral-small',
      'local/qwen-14b',
      'local/qwen-coder-32b',
      'local/qwen2.5-14b',
    ]);
  });

  test('OLLAMA_BASE_URL applies to routes without a baseUrl', () => {
    const table = loadModelRoutes({ ...BASES, OLLAMA_BASE_URL: 'http://gpu-box:11434/' });
    assert.equal(resolveRoute(table, 'default').baseUrl, 'http://gpu-box:11434');
  });
});

describe('loading from configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'routes-'));

  test('MODEL_ROUTES_FILE as YAML and MODEL_ROUTES as JSON', () => {
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      [
        'routes:',
        '  local/qwen-14b: { provider: ollama, providerModel: "qwen3:14b", fallbacks: [cloud/gpt] }',
        '  cloud/gpt:',
        '    provider: openai',
        '    providerModel: gpt-4o-mini',
        '    cloud: true',
        '    apiKeyFile: /run/secrets/openai',
        '    lanes: [prod-critical]',
        '    timeouts: { idleMs: 5000 }',
        'default: local/qwen-14b',
      ].join('\n'),
    );
    const table = loadModelRoutes({ ...BASES, MODEL_ROUTES_FILE: file });
    assert.equal(table.source, file);
    assert.equal(resolveRoute(table, 'default').name, 'local/qwen-14b');
    const gpt = resolveRoute(table, 'cloud/gpt');
    assert.deepEqual(gpt.timeouts, { firstTokenMs: 120_000, idleMs: 5000, totalMs: 600_000 });
    assert.equal(gpt.baseUrl, 'https://api.openai.com/v1');

    const inline = loadModelRoutes({ ...BASES, MODEL_ROUTES: JSON.stringify({ routes: { a: { provider: 'ollama', providerModel: 'x' } }, aliases: { b: 'a' } }) });
    assert.deepEqual(Object.keys(inline.routes), ['a']);
    assert.equal(resolveRoute(inline, 'b').name, 'a');
  });

  test('both sources, a missing file, bad JSON are startup errors', () => {
    assert.throws(() => loadModelRoutes({ ...BASES, MODEL_ROUTES: '{}', MODEL_ROUTES_FILE: '/x' }), /not both/);
    assert.throws(() => loadModelRoutes({ ...BASES, MODEL_ROUTES_FILE: join(dir, 'nope.json') }), /does not exist/);
    assert.throws(() => loadModelRoutes({ ...BASES, MODEL_ROUTES: '{routes' }), /MODEL_ROUTES is not valid JSON/);
  });
});

describe('validation names every problem with its JSON pointer', () => {
  const problems = (raw: unknown): string => {
    try {
      parseRoutingTable(raw, BASES);
    } catch (error) {
      assert.ok(error instanceof ModelRoutesError);
      return error.message;
    }
    assert.fail('expected the table to be refused');
  };

  test('shape errors', () => {
    const message = problems({
      routes: {
        a: { provider: 'vllm', providerModel: 'x' },
        b: { provider: 'ollama' },
        c: { provider: 'ollama', providerModel: 'x', timeouts: { idleMs: -1 } },
        d: { provider: 'ollama', providerModel: 'x', colour: 'blue' },
      },
    });
    assert.match(message, /\/routes\/a\/provider: /);
    assert.match(message, /\/routes\/b\/providerModel: /);
    assert.match(message, /\/routes\/c\/timeouts\/idleMs: /);
    assert.match(message, /\/routes\/d: .*colour/);
    assert.match(problems({ routes: {} }), /\/routes: at least one route/);
  });

  test('references: fallbacks and aliases must name routes; no self fallback; aliases do not shadow routes', () => {
    const message = problems({
      routes: { a: { provider: 'ollama', providerModel: 'x', fallbacks: ['ghost', 'a'] }, b: { provider: 'ollama', providerModel: 'y' } },
      aliases: { x: 'nowhere', b: 'a' },
    });
    assert.match(message, /\/routes\/a\/fallbacks\/0: "ghost" is not a route or alias/);
    assert.match(message, /\/routes\/a\/fallbacks\/1: a route cannot fall back to itself/);
    assert.match(message, /\/aliases\/x: "nowhere" is not a route/);
    assert.match(message, /\/aliases\/b: "b" is already a route name/);
  });

  test('secrets by reference only; cloud routes need a key reference and lanes; cloud hosts must say cloud', () => {
    assert.match(problems({ routes: { c: { ...cloud, apiKey: 'sk-live-123' } } }), /\/routes\/c\/apiKey: keys never go in the table/);
    assert.doesNotMatch(problems({ routes: { c: { ...cloud, apiKey: 'sk-live-123' } } }), /sk-live-123/);
    assert.match(problems({ routes: { c: { ...cloud, apiKeyEnv: undefined } } }), /\/routes\/c\/apiKeyEnv: a cloud route needs apiKeyEnv or apiKeyFile/);
    assert.match(problems({ routes: { c: { ...cloud, lanes: undefined } } }), /\/routes\/c\/lanes: a cloud route must list the lanes/);
    assert.match(problems({ routes: { c: { ...cloud, apiKeyEnv: 'lower-case' } } }), /\/routes\/c\/apiKeyEnv: an environment variable name/);
    assert.match(
      problems({ routes: { c: { provider: 'openai', providerModel: 'gpt-4o' } } }),
      /\/routes\/c\/cloud: api\.openai\.com is a cloud provider/,
    );
    // A local OpenAI-compatible server is not cloud.
    const local = parseRoutingTable({ routes: { v: { provider: 'openai', providerModel: 'qwen', baseUrl: 'http://10.0.0.5:8000/v1' } } }, BASES);
    assert.equal(resolveRoute(local, 'v').cloud, false);
  });
});

describe('names, chains and lanes', () => {
  const table = parseRoutingTable(
    {
      routes: {
        a: { provider: 'ollama', providerModel: 'a', fallbacks: ['b', 'gpt'] },
        b: { provider: 'ollama', providerModel: 'b', fallbacks: ['a'] },
        gpt: cloud,
      },
      aliases: { fast: 'b' },
    },
    BASES,
  );

  test('unknown names list what is known; cycles are walked once', () => {
    assert.throws(() => resolveRoute(table, 'c'), (e: Error) => e instanceof UnknownModelRoute && /known: a, b, fast, gpt/.test(e.message));
    assert.deepEqual(routeChain(table, 'a').map((r) => r.name), ['a', 'b', 'gpt']);
    assert.deepEqual(routeChain(table, 'fast').map((r) => r.name), ['b', 'a', 'gpt']);
  });

  test('lane rules and API keys by reference', () => {
    const gpt = resolveRoute(table, 'gpt');
    assert.equal(laneAllowed(gpt, 'prod-critical'), true);
    assert.equal(laneAllowed(gpt, 'experimental'), false);
    assert.equal(laneAllowed({ lanes: ['prod-*'] }, 'prod-critical-x1'), true);
    assert.equal(laneAllowed({ lanes: undefined }, 'anything'), true);

    assert.equal(routeRefusal(gpt, 'experimental', { OPENAI_API_KEY: 'k' })?.code, 'LaneNotAllowed');
    const missing = routeRefusal(gpt, 'prod-critical', {});
    assert.equal(missing?.code, 'NotConfigured');
    assert.match(missing?.reason ?? '', /environment variable OPENAI_API_KEY/);
    assert.equal(routeRefusal(gpt, 'prod-critical', { OPENAI_API_KEY: 'sk-1' }), undefined);
    assert.equal(routeRefusal(resolveRoute(table, 'a'), 'experimental', {}), undefined);

    const dir = mkdtempSync(join(tmpdir(), 'key-'));
    writeFileSync(join(dir, 'key'), 'sk-file\n');
    assert.equal(readApiKey({ apiKeyFile: join(dir, 'key') }), 'sk-file');
    assert.equal(readApiKey({ apiKeyFile: join(dir, 'absent') }), undefined);
    assert.equal(readApiKey({ apiKeyEnv: 'K' }, { K: '  ' }), undefined);
  });

  test('the default table document itself validates', () => {
    assert.doesNotThrow(() => parseRoutingTable(DEFAULT_ROUTING_TABLE, BASES));
  });
});
