/**
 * Static checks of the Docker topology (Dockerfile, .dockerignore, docker-compose.yml and the API
 * keys secret). No Docker engine is needed: the files are parsed and checked against the code they
 * deploy (the CLI, the config schema, the search attributes, the import graph, package.json), so a
 * rename or a new lane, variable or attribute in the code that the deployment files miss fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { parse } from 'yaml';
import { apiKeysSchema } from '../../api/auth.ts';
import { platformContracts } from '../../api/contracts/platform.ts';
import { LANE_WORKER_KINDS, configSchema, loadConfig, type Config } from '../../common/config.ts';
import { SEARCH_ATTRIBUTES } from '../../common/constants.ts';
import { loadCodecKeys } from '../../common/codec.ts';
import { SecretBox } from '../../api/webhooks/secret-box.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_PATH = fileURLToPath(new URL('../../docker-compose.yml', import.meta.url));
const DOCKERFILE_PATH = fileURLToPath(new URL('../../Dockerfile', import.meta.url));
const DOCKERIGNORE_PATH = fileURLToPath(new URL('../../.dockerignore', import.meta.url));
const CLI_PATH = fileURLToPath(new URL('../../cli/platform.ts', import.meta.url));
const API_APP_PATH = fileURLToPath(new URL('../../api/app.ts', import.meta.url));
const PACKAGE_JSON_PATH = fileURLToPath(new URL('../../package.json', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Compose model (the subset this file uses) and helpers
// ---------------------------------------------------------------------------------------------

type Scalar = string | number | boolean | null;

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
  [key: string]: unknown;
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, Scalar> | string[];
  depends_on?: string[] | Record<string, { condition?: string; [key: string]: unknown }>;
  healthcheck?: Healthcheck;
  ports?: Array<string | number | { target?: number; published?: string | number }>;
  secrets?: Array<string | { source: string; target?: string }>;
  restart?: string;
  [key: string]: unknown;
}

interface ComposeFile {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string; environment?: string; external?: boolean }>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * Compose interpolation as `docker compose config` does it with an empty environment (no `.env`,
 * no shell variables): `$$` is a literal `$`, `${VAR:-x}` / `${VAR-x}` give x, `${VAR}` / `$VAR`
 * give "" and are reported as unset, `${VAR:?msg}` / `${VAR?msg}` are reported as unset.
 */
function interpolate(text: string, unset: Set<string>): string {
  return text.replace(
    /\$(\$)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_match, dollar: string | undefined, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (dollar) return '$';
      const name = (braced ?? bare) as string;
      if (op === ':-' || op === '-') return arg ?? '';
      if (op === ':+' || op === '+') return '';
      unset.add(name);
      return '';
    },
  );
}

function interpolateDeep(value: unknown, unset: Set<string>): unknown {
  if (typeof value === 'string') return interpolate(value, unset);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, unset));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, unset)]));
  }
  return value;
}

const composeSource = readFileSync(COMPOSE_PATH, 'utf8');
/** The raw document (merge keys resolved, `${...}` left as written). */
const rawCompose = parse(composeSource, { merge: true }) as ComposeFile;
/** Variables referenced without a default: each would need a `.env` entry to run the stack. */
const unsetVariables = new Set<string>();
/** The document as Compose runs it with an empty environment. */
const compose = interpolateDeep(rawCompose, unsetVariables) as ComposeFile;

function service(name: string): Service {
  const s = compose.services[name];
  assert.ok(s, `docker-compose.yml has no service "${name}"`);
  return s;
}

function envOf(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function argsOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : value.split(/\s+/).filter(Boolean);
}

function dependenciesOf(s: Service): Array<{ target: string; condition: string }> {
  const deps = s.depends_on ?? [];
  if (Array.isArray(deps)) return deps.map((target) => ({ target, condition: 'service_started' }));
  return Object.entries(deps).map(([target, d]) => ({ target, condition: d.condition ?? 'service_started' }));
}

/** `host:container` port mappings as numbers (short syntax, or long syntax objects). */
function portsOf(s: Service): Array<{ published: number; target: number }> {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') return { published: Number(p.published), target: Number(p.target) };
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    return { published: Number(parts[parts.length - 2]), target: Number(parts[parts.length - 1]) };
  });
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

const defaultConfig: Config = loadConfig({});
const configKeys = new Set(Object.keys(configSchema.shape));

const platformServices = Object.entries(compose.services).filter(([, s]) => {
  const first = argsOf(s.command)[0];
  return s.build !== undefined && (first === 'api' || first === 'worker');
});
const workerServices = platformServices.filter(([, s]) => argsOf(s.command)[0] === 'worker');

/** The lanes a `worker` command line serves (`--lane a,b` or `--lane=a,b`). */
function lanesOf(args: string[]): string[] {
  const i = args.findIndex((a) => a === '--lane' || a.startsWith('--lane='));
  if (i < 0) return [];
  const arg = args[i] as string;
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : (args[i + 1] ?? '');
  return value.split(',').map((l) => l.trim()).filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// The CLI (cli/platform.ts): command names and their flags, read from the source
// ---------------------------------------------------------------------------------------------

const cliSource = readFileSync(CLI_PATH, 'utf8');

function cliCommands(): Map<string, { required: string[]; optional: string[] }> {
  const commands = new Map<string, { required: string[]; optional: string[] }>();
  const starts = [...cliSource.matchAll(/\.command\(\s*'([a-z-]+)'\s*\)/g)];
  starts.forEach((m, i) => {
    const body = cliSource.slice(m.index, starts[i + 1]?.index ?? cliSource.length);
    const flags = (kind: 'requiredOption' | 'option') =>
      [...body.matchAll(new RegExp(`\\.${kind}\\(\\s*'(--[a-z-]+)`, 'g'))].map((f) => f[1] as string);
    commands.set(m[1] as string, { required: flags('requiredOption'), optional: flags('option') });
  });
  return commands;
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile
// ---------------------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

function dockerfileInstructions(): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const line of readFileSync(DOCKERFILE_PATH, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (current === '' && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (current !== '' && trimmed.startsWith('#')) continue;
    if (trimmed.endsWith('\\')) {
      current += `${trimmed.slice(0, -1)} `;
      continue;
    }
    logical.push(current + trimmed);
    current = '';
  }
  if (current) logical.push(current);
  return logical.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l) as RegExpExecArray;
    return { op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() };
  });
}

const instructions = dockerfileInstructions();

/** Sources of every `COPY` from the build context (not `--from=` stages), without flags. */
function copySources(): string[] {
  return instructions
    .filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))
    .flatMap((i) => {
      const words = i.args.startsWith('[')
        ? (JSON.parse(i.args) as string[])
        : i.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      return words.slice(0, -1);
    });
}

/** Every `ENV` key and value (`ENV K=V K2=V2` and the legacy `ENV K V`). */
function dockerfileEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.op === 'ENV')) {
    if (/^[A-Za-z_][A-Za-z0-9_]*\s+[^=]*$/.test(i.args) && !i.args.includes('=')) {
      const [k, ...rest] = i.args.split(/\s+/);
      env[k as string] = rest.join(' ');
      continue;
    }
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) {
      env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '');
    }
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// The runtime import graph of the CLI: which top-level folders and npm packages it needs
// ---------------------------------------------------------------------------------------------

function runtimeGraph(entry: string): { folders: Set<string>; packages: Set<string> } {
  const folders = new Set<string>();
  const packages = new Set<string>();
  const seen = new Set<string>();
  const addPath = (path: string) => {
    const rel = relative(ROOT, path);
    if (rel === '' || rel.startsWith('..')) return;
    folders.add(rel.split(sep)[0] as string);
  };
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    addPath(file);
    const source = readFileSync(file, 'utf8');
    const specifiers: Array<{ spec: string; typeOnly: boolean }> = [];
    for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
      specifiers.push({ spec: m[3] as string, typeOnly: Boolean(m[2]) });
    }
    for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      specifiers.push({ spec: m[1] as string, typeOnly: false });
    }
    for (const { spec, typeOnly } of specifiers) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (existsSync(target) && statSync(target).isFile() && target.endsWith('.ts')) visit(target);
        else addPath(target);
      } else if (!spec.startsWith('node:') && !typeOnly) {
        const parts = spec.split('/');
        packages.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string));
      }
    }
    // Files read at run time next to the code, e.g. new URL('../db/migrations', import.meta.url).
    for (const m of source.matchAll(/new URL\(\s*['"](\.[^'"]*)['"]\s*,\s*import\.meta\.url\s*\)/g)) {
      const target = resolve(dirname(file), m[1] as string);
      if (existsSync(target) && statSync(target).isFile() && target.endsWith('.ts')) visit(target);
      else addPath(target);
    }
  };
  visit(entry);
  return { folders, packages };
}

// =============================================================================================
// docker-compose.yml
// =============================================================================================

const COMPOSE_TOP_LEVEL = new Set(['version', 'name', 'include', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models']);
const COMPOSE_SERVICE_KEYS = new Set([
  'annotations', 'attach', 'blkio_config', 'build', 'cap_add', 'cap_drop', 'cgroup', 'cgroup_parent', 'command',
  'configs', 'container_name', 'cpu_count', 'cpu_percent', 'cpu_period', 'cpu_quota', 'cpu_rt_period',
  'cpu_rt_runtime', 'cpu_shares', 'cpus', 'cpuset', 'credential_spec', 'depends_on', 'deploy', 'develop',
  'device_cgroup_rules', 'devices', 'dns', 'dns_opt', 'dns_search', 'domainname', 'entrypoint', 'env_file',
  'environment', 'expose', 'extends', 'external_links', 'extra_hosts', 'gpus', 'group_add', 'healthcheck',
  'hostname', 'image', 'init', 'ipc', 'isolation', 'label_file', 'labels', 'links', 'logging', 'mac_address',
  'mem_limit', 'mem_reservation', 'mem_swappiness', 'memswap_limit', 'network_mode', 'networks',
  'oom_kill_disable', 'oom_score_adj', 'pid', 'pids_limit', 'platform', 'ports', 'post_start', 'pre_stop',
  'privileged', 'profiles', 'pull_policy', 'read_only', 'restart', 'runtime', 'scale', 'secrets', 'security_opt',
  'shm_size', 'stdin_open', 'stop_grace_period', 'stop_signal', 'storage_opt', 'sysctls', 'tmpfs', 'tty',
  'ulimits', 'user', 'userns_mode', 'uts', 'volumes', 'volumes_from', 'working_dir',
]);
const HEALTHCHECK_KEYS = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable']);
const DEPENDENCY_CONDITIONS = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);

test('docker-compose.yml parses and uses only Compose Specification keys', () => {
  assert.equal(typeof rawCompose, 'object');
  assert.ok(rawCompose.services && typeof rawCompose.services === 'object', 'no services');
  for (const key of Object.keys(rawCompose)) {
    assert.ok(COMPOSE_TOP_LEVEL.has(key) || key.startsWith('x-'), `unknown top-level key "${key}"`);
  }
  for (const [name, s] of Object.entries(compose.services)) {
    for (const key of Object.keys(s)) {
      assert.ok(COMPOSE_SERVICE_KEYS.has(key) || key.startsWith('x-'), `service ${name}: unknown key "${key}"`);
    }
    for (const key of Object.keys(s.healthcheck ?? {})) {
      assert.ok(HEALTHCHECK_KEYS.has(key), `service ${name}: unknown healthcheck key "${key}"`);
    }
    if (s.restart !== undefined) {
      assert.match(s.restart, /^(no|always|unless-stopped|on-failure(:\d+)?)$/, `service ${name}: restart`);
    }
  }
});

test('docker-compose.yml runs without a .env file (every variable has a default)', () => {
  assert.deepEqual([...unsetVariables], [], 'variables used without a ${VAR:-default}');
});

test('the expected services exist, with one worker per configured lane', () => {
  for (const name of ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'api']) service(name);
  for (const lane of defaultConfig.LANES) {
    const worker = service(`worker-${lane}`);
    assert.deepEqual(lanesOf(argsOf(worker.command)), [lane], `worker-${lane} serves another lane`);
  }
  // Lanes configured in the compose file itself (it may add lanes to the defaults) need workers too.
  const served = new Set(workerServices.flatMap(([, s]) => lanesOf(argsOf(s.command))));
  for (const [name, s] of platformServices) {
    for (const lane of loadConfig(envOf(s)).LANES) {
      assert.ok(served.has(lane), `${name} configures lane "${lane}" but no worker service serves it`);
    }
  }
});

test('every kind of every lane is served by a worker service (worker --kinds, all by default)', () => {
  const served = new Set<string>();
  for (const [name, s] of workerServices) {
    const args = argsOf(s.command);
    const i = args.findIndex((a) => a === '--kinds' || a.startsWith('--kinds='));
    const arg = i < 0 ? undefined : (args[i] as string);
    const kinds = arg === undefined ? [...LANE_WORKER_KINDS] : (arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : (args[i + 1] ?? '')).split(',').map((k) => k.trim());
    for (const kind of kinds) assert.ok((LANE_WORKER_KINDS as readonly string[]).includes(kind), `${name}: unknown kind "${kind}"`);
    for (const lane of lanesOf(args)) for (const kind of kinds) served.add(`${lane}.${kind}`);
  }
  for (const lane of loadConfig(envOf(service('api'))).LANES) {
    for (const kind of LANE_WORKER_KINDS) assert.ok(served.has(`${lane}.${kind}`), `no worker service serves ${lane}.${kind}`);
  }
});

test('every service has an image or a build, and pulled images are pinned', () => {
  for (const [name, s] of Object.entries(compose.services)) {
    assert.ok(s.image !== undefined || s.build !== undefined, `service ${name} has neither image nor build`);
    if (s.image !== undefined && s.build === undefined) {
      const tag = /:([^/:@]+)$/.exec(s.image)?.[1];
      assert.ok(tag && tag !== 'latest', `service ${name}: image ${s.image} is not pinned to a tag`);
    }
  }
  assert.match(service('postgresql').image ?? '', /^postgres:\d+/);
  assert.match(service('temporal').image ?? '', /^temporalio\/auto-setup:1\.2\d\.\d+$/);
  assert.match(service('temporal-setup').image ?? '', /^temporalio\/admin-tools:1\.2\d\.\d+/);
  assert.match(service('temporal-ui').image ?? '', /^temporalio\/ui:\d+\.\d+\.\d+$/);
  // The admin tools should speak the server's version.
  const serverVersion = /:(1\.\d+\.\d+)/.exec(service('temporal').image ?? '')?.[1];
  assert.ok((service('temporal-setup').image ?? '').includes(`:${serverVersion}`), 'admin-tools and server versions differ');
});

test('depends_on targets exist, are healthy-checkable or one-shot as required, and have no cycle', () => {
  for (const [name, s] of Object.entries(compose.services)) {
    for (const { target, condition } of dependenciesOf(s)) {
      const dep = compose.services[target];
      assert.ok(dep, `${name} depends on missing service "${target}"`);
      assert.ok(DEPENDENCY_CONDITIONS.has(condition), `${name} -> ${target}: unknown condition "${condition}"`);
      if (condition === 'service_healthy') {
        assert.ok(dep.healthcheck?.test && !dep.healthcheck.disable, `${name} waits for ${target} to be healthy, but ${target} has no healthcheck`);
      }
      if (condition === 'service_completed_successfully') {
        assert.ok(dep.restart === undefined || dep.restart === 'no', `${name} waits for ${target} to complete, but ${target} restarts`);
      }
    }
  }
  // Depth-first search for a cycle, which Compose would refuse.
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    assert.notEqual(state.get(name), 'visiting', `dependency cycle: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const { target } of dependenciesOf(compose.services[name] as Service)) visit(target, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(compose.services)) visit(name, []);
  // The platform processes start only once Temporal is up and the search attributes exist.
  for (const [name, s] of platformServices) {
    const deps = new Map(dependenciesOf(s).map((d) => [d.target, d.condition]));
    assert.equal(deps.get('temporal'), 'service_healthy', `${name} must wait for temporal to be healthy`);
    assert.equal(deps.get('temporal-setup'), 'service_completed_successfully', `${name} must wait for temporal-setup`);
  }
  assert.equal(new Map(dependenciesOf(service('api')).map((d) => [d.target, d.condition])).get('postgresql'), 'service_healthy');
});

test('api and worker services run commands that cli/platform.ts defines', () => {
  const commands = cliCommands();
  assert.ok(commands.has('api') && commands.has('worker') && commands.has('bundle'), 'cli/platform.ts commands not found');
  const api = argsOf(service('api').command);
  assert.deepEqual(api, ['api']);
  assert.ok(workerServices.length >= defaultConfig.LANES.length, 'too few worker services');
  for (const [name, s] of platformServices) {
    const args = argsOf(s.command);
    const spec = commands.get(args[0] as string);
    assert.ok(spec, `${name}: "${args[0]}" is not a command of cli/platform.ts`);
    const flags = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0] as string);
    for (const flag of flags) {
      assert.ok([...spec.required, ...spec.optional].includes(flag), `${name}: ${args[0]} has no option ${flag}`);
    }
    for (const flag of spec.required) assert.ok(flags.includes(flag), `${name}: ${args[0]} requires ${flag}`);
    if (args[0] === 'worker') {
      const lanes = lanesOf(args);
      const configured = loadConfig(envOf(s)).LANES;
      assert.ok(lanes.length > 0, `${name}: no lane`);
      for (const lane of lanes) {
        assert.ok(configured.includes(lane), `${name}: lane "${lane}" is not in LANES (${configured.join(', ')})`);
      }
    }
  }
});

test('api and worker environments only set variables of common/config.ts, and they parse', () => {
  // Variables outside configSchema that platform services may set, each with its reason. None:
  // every setting the platform reads goes through common/config.ts.
  const allowed = new Set<string>([]);
  for (const [name, s] of platformServices) {
    const env = envOf(s);
    for (const key of Object.keys(env)) {
      assert.ok(configKeys.has(key) || allowed.has(key), `${name}: ${key} is not a variable of common/config.ts`);
    }
    assert.doesNotThrow(() => loadConfig(env), `${name}: environment does not parse`);
  }
  // The API validates lanes and starts runs; the workers serve them: they must agree.
  const reference = loadConfig(envOf(service('api')));
  for (const [name, s] of workerServices) {
    const cfg = loadConfig(envOf(s));
    for (const key of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'LANES', 'DEFAULT_LANE'] as const) {
      assert.deepEqual(cfg[key], reference[key], `${name} and api disagree on ${key}`);
    }
  }
  // startApi refuses to start without these.
  assert.ok(reference.DATABASE_URL, 'api: DATABASE_URL is not set');
  assert.ok(reference.API_KEYS || reference.API_KEYS_FILE, 'api: no API_KEYS or API_KEYS_FILE');
  assert.equal(reference.API_HOST, '0.0.0.0', 'api: API_HOST must listen on all interfaces inside a container');
});

test('platform services reach PostgreSQL, Temporal and the UI through the compose network', () => {
  const api = loadConfig(envOf(service('api')));
  const temporal = hostPort(api.TEMPORAL_ADDRESS);
  assert.ok(compose.services[temporal.host], `TEMPORAL_ADDRESS host "${temporal.host}" is not a service`);
  assert.equal(temporal.host, 'temporal');
  assert.equal(temporal.port, 7233);
  assert.equal(envOf(service('temporal-ui')).TEMPORAL_ADDRESS, api.TEMPORAL_ADDRESS);
  assert.equal(envOf(service('temporal-setup')).TEMPORAL_ADDRESS, api.TEMPORAL_ADDRESS);

  const pg = envOf(service('postgresql'));
  const db = new URL(api.DATABASE_URL as string);
  assert.equal(db.protocol, 'postgres:');
  assert.equal(db.hostname, 'postgresql');
  assert.equal(db.port || '5432', '5432');
  assert.equal(decodeURIComponent(db.username), pg.POSTGRES_USER, 'DATABASE_URL user');
  assert.equal(decodeURIComponent(db.password), pg.POSTGRES_PASSWORD, 'DATABASE_URL password');
  assert.equal(db.pathname.slice(1), pg.POSTGRES_DB ?? pg.POSTGRES_USER, 'DATABASE_URL database');

  const t = envOf(service('temporal'));
  assert.equal(t.DB, 'postgres12');
  assert.equal(t.DB_PORT, '5432');
  assert.equal(t.POSTGRES_SEEDS, 'postgresql');
  assert.equal(t.POSTGRES_USER, pg.POSTGRES_USER);
  assert.equal(t.POSTGRES_PWD, pg.POSTGRES_PASSWORD);
  assert.ok(portsOf(service('temporal')).some((p) => p.target === 7233), 'temporal does not publish 7233');

  // Links the API renders point at the UI's published port.
  const ui = portsOf(service('temporal-ui')).find((p) => p.target === 8080);
  assert.ok(ui, 'temporal-ui does not publish its port 8080');
  assert.equal(Number(new URL(api.TEMPORAL_UI_URL as string).port), ui.published, 'TEMPORAL_UI_URL port');

  // The API listens where it is published and probed, and the probed route exists.
  assert.ok(portsOf(service('api')).some((p) => p.target === api.API_PORT), 'api does not publish API_PORT');
  const probe = argsOf(service('api').healthcheck?.test).join(' ');
  const url = /https?:\/\/[^'"\s)]+/.exec(probe)?.[0];
  assert.ok(url, 'api healthcheck has no URL');
  assert.equal(Number(new URL(url).port), api.API_PORT, 'api healthcheck port');
  assert.equal(new URL(url).pathname, '/readyz');
  // The route is declared once (api/contracts/platform.ts) and mounted by api/app.ts.
  assert.equal(platformContracts.readyz.path, '/readyz');
  assert.equal(platformContracts.readyz.method, 'get');
  assert.ok(readFileSync(API_APP_PATH, 'utf8').includes('platformContracts.readyz'), 'api/app.ts does not mount the /readyz contract');
  assert.ok(probe.includes('process.exit(1)'), 'api healthcheck must fail on errors');
});

test('temporal-setup creates every search attribute of common/constants.ts with its type', () => {
  const setup = service('temporal-setup');
  assert.equal(setup.restart, 'no');
  assert.equal(
    new Map(dependenciesOf(setup).map((d) => [d.target, d.condition])).get('temporal'),
    'service_healthy',
  );
  const script = [...argsOf(setup.entrypoint), ...(Array.isArray(setup.command) ? setup.command : [setup.command ?? ''])]
    .join('\n')
    .replace(/\\\n/g, ' ');
  const created = new Map<string, string>();
  const namespaces = new Set<string>();
  for (const line of script.split('\n')) {
    const words = line.trim().split(/\s+/);
    const at = words.findIndex((w, i) => w === 'temporal' && words[i + 1] === 'operator' && words[i + 2] === 'search-attribute' && words[i + 3] === 'create');
    if (at < 0) continue;
    const names: string[] = [];
    const types: string[] = [];
    for (let i = at + 4; i < words.length; i++) {
      const w = words[i] as string;
      if (w === '--name') names.push(words[++i] as string);
      else if (w === '--type') types.push(words[++i] as string);
      else if (w === '--namespace' || w === '-n') namespaces.add(words[++i] as string);
      else if (/^(\|\||&&|;|\|)$/.test(w)) break;
    }
    assert.equal(names.length, types.length, `unpaired --name/--type in: ${line.trim()}`);
    names.forEach((n, i) => {
      assert.ok(!created.has(n), `${n} is created twice`);
      created.set(n, types[i] as string);
    });
  }
  const expected = new Map(Object.values(SEARCH_ATTRIBUTES).map((a) => [a.name as string, a.type as string]));
  assert.deepEqual(created, expected, 'search attributes created by temporal-setup differ from SEARCH_ATTRIBUTES');
  const namespace = loadConfig(envOf(service('api'))).TEMPORAL_NAMESPACE;
  assert.deepEqual([...namespaces], [namespace], 'temporal-setup must register them in TEMPORAL_NAMESPACE');
});

test('the api secret is mounted where API_KEYS_FILE points and holds valid hashed keys', () => {
  const api = service('api');
  const file = loadConfig(envOf(api)).API_KEYS_FILE;
  assert.ok(file, 'api: API_KEYS_FILE is not set');
  const mounted = (api.secrets ?? []).map((s) =>
    typeof s === 'string' ? { source: s, path: `/run/secrets/${s}` } : { source: s.source, path: s.target?.startsWith('/') ? s.target : `/run/secrets/${s.target ?? s.source}` },
  );
  const secret = mounted.find((m) => m.path === file);
  assert.ok(secret, `api: no secret is mounted at ${file}`);
  const definition = compose.secrets?.[secret.source];
  assert.ok(definition?.file, `top-level secret "${secret.source}" has no file`);
  const path = resolve(dirname(COMPOSE_PATH), definition.file);
  assert.ok(existsSync(path), `${definition.file} does not exist`);
  const parsed = apiKeysSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  assert.ok(parsed.success, `${definition.file}: ${parsed.error?.message}`);
  assert.ok(parsed.data.length > 0, `${definition.file} lists no keys`);
  // A committed file carries digests only, never a usable plaintext key.
  for (const entry of parsed.data) assert.ok(entry.sha256 && !entry.key, `${definition.file}: use "sha256", not "key"`);
  assert.ok(parsed.data.some((e) => e.roles.includes('admin')), `${definition.file}: no admin key`);
});

/** Where each of a service's secrets is mounted: path in the container → the secret's file on the host. */
function mountedSecrets(s: Service): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of s.secrets ?? []) {
    const { source, target } = typeof entry === 'string' ? { source: entry, target: undefined } : entry;
    const file = compose.secrets?.[source]?.file;
    assert.ok(file, `top-level secret "${source}" has no file`);
    out.set(target?.startsWith('/') ? target : `/run/secrets/${target ?? source}`, resolve(dirname(COMPOSE_PATH), file));
  }
  return out;
}

test('every process that talks to Temporal reads the same payload codec keys; the api has a webhook-secret key that outlives its container', () => {
  const platform = [service('api'), ...loadConfig(envOf(service('api'))).LANES.map((lane) => service(`worker-${lane}`))];
  const keyFiles = new Set<string>();
  for (const s of platform) {
    const config = loadConfig(envOf(s));
    assert.ok(config.SECRETS_DIR, 'SECRETS_DIR is not set');
    // Loaded exactly as the process loads them (common/codec.ts), from where Docker mounts them.
    const mounted = mountedSecrets(s).get(join(config.SECRETS_DIR, 'PAYLOAD_CODEC_KEYS'));
    assert.ok(mounted, 'no payload codec keys are mounted at <SECRETS_DIR>/PAYLOAD_CODEC_KEYS: payloads would go to Temporal in clear');
    const keys = loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: mounted });
    assert.ok(keys && keys.length > 0 && keys.every((k) => k.key.length === 32));
    keyFiles.add(mounted);
  }
  assert.equal(keyFiles.size, 1, 'the api and the workers must share one key file');
  const api = service('api');
  const apiConfig = loadConfig(envOf(api));
  const webhookKey = mountedSecrets(api).get(join(apiConfig.SECRETS_DIR!, 'WEBHOOK_SECRET_KEY'));
  assert.ok(webhookKey, 'no WEBHOOK_SECRET_KEY is mounted: a re-created api container would make a new key and lose every stored webhook secret');
  // Mounted as Docker mounts it; the data folder stays empty (a key there would mean the mount was ignored).
  const secretsDir = mkdtempSync(join(tmpdir(), 'compose-secrets-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'compose-data-'));
  try {
    copyFileSync(webhookKey, join(secretsDir, 'WEBHOOK_SECRET_KEY'));
    const box = SecretBox.fromConfig({ SECRETS_DIR: secretsDir, DATA_DIR: dataDir });
    const again = SecretBox.fromConfig({ SECRETS_DIR: secretsDir, DATA_DIR: mkdtempSync(join(tmpdir(), 'compose-data-')) });
    assert.equal(again.open(box.seal('whsec_x', 'sub-1'), 'sub-1'), 'whsec_x', 'a second replica opens what the first sealed');
    assert.deepEqual(readdirSync(dataDir), []);
  } finally {
    rmSync(secretsDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// =============================================================================================
// Dockerfile and .dockerignore
// =============================================================================================

/** The instructions of the image's last stage (what runs), and of the stages before it. */
function stages(): { build: Instruction[]; runtime: Instruction[] } {
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  return { build: instructions.slice(0, lastFrom), runtime: instructions.slice(lastFrom) };
}

test('the Dockerfile builds on a maintained Node LTS line that engines admits, and runs with runtime dependencies only', () => {
  const from = instructions.filter((i) => i.op === 'FROM');
  assert.equal(from.length, 2, 'a build stage and a runtime stage');
  for (const f of from) assert.match(f.args, /^node:24-bookworm-slim(\s+AS\s+\w+)?$/i);
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON_PATH, 'utf8')) as {
    engines?: { node?: string };
    dependencies: Record<string, string>;
    devDependencies?: Record<string, string>;
    scripts: Record<string, string>;
  };
  assert.ok(semver.satisfies('24.11.0', pkg.engines?.node ?? ''), `node:24 does not satisfy engines.node ${pkg.engines?.node}`);
  assert.ok(semver.satisfies(process.versions.node, pkg.engines?.node ?? ''), `this machine's Node ${process.versions.node} does not satisfy engines.node`);

  const { build, runtime } = stages();
  assert.ok(build.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)), 'the build stage runs `npm run build`');
  const runs = runtime.filter((i) => i.op === 'RUN').map((i) => i.args);
  assert.ok(runs.some((r) => /\bnpm (ci|install)\b.*--omit=dev/.test(r)), 'no `npm install --omit=dev` in the runtime stage');
  // With --omit=dev, everything the CLI loads at run time must be a production dependency.
  const { packages } = runtimeGraph(CLI_PATH);
  assert.ok(packages.size > 0);
  for (const name of packages) {
    assert.ok(pkg.dependencies[name], `${name} is needed at run time but is not in "dependencies"`);
  }
});

test('the runtime stage copies the compiled build and every file the platform reads from the checkout', () => {
  const { runtime } = stages();
  const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
  assert.ok(copies.some((c) => /^--from=build\s+\/app\/dist\s+\.\/dist$/.test(c)), 'COPY --from=build /app/dist ./dist');
  // Every checkoutPath('<path>') in the platform's sources names a file or folder the image must hold.
  const named = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/checkoutPath\('([^']+)'\)/g)) named.add(m[1] as string);
    }
  };
  for (const folder of ['api', 'activities', 'cli', 'common', 'embedded', 'importers', 'interpreter', 'workers', 'workflows']) walk(join(ROOT, folder));
  assert.ok(named.size >= 3, [...named].join(', '));
  const copied = copies.filter((c) => !c.startsWith('--from=')).map((c) => c.split(/\s+/)[0]!.replace(/^\.\//, '').replace(/\/$/, ''));
  for (const path of named) {
    assert.ok(copied.some((c) => path === c || path.startsWith(`${c}/`)), `the runtime stage does not COPY ${path} (read through checkoutPath)`);
  }
});

test('the Dockerfile copies every source folder the CLI loads, and only existing paths', () => {
  const sources = copySources();
  for (const source of sources) {
    assert.ok(existsSync(join(ROOT, source)), `COPY source ${source} does not exist`);
  }
  const copied = new Set(sources.map((s) => s.replace(/^\.\//, '').replace(/\/$/, '').split('/')[0]));
  for (const required of ['package.json', 'package-lock.json', 'tsconfig.json', 'api', 'activities', 'cli', 'common', 'db', 'embedded', 'interpreter', 'workers', 'workflows']) {
    assert.ok(copied.has(required), `the Dockerfile does not COPY ${required}`);
  }
  const { folders } = runtimeGraph(CLI_PATH);
  for (const folder of folders) assert.ok(copied.has(folder), `cli/platform.ts loads ${folder}/ but the Dockerfile does not COPY it`);
});

test('the Dockerfile prebuilds the workflow bundle and runs the compiled CLI as a non-root user', () => {
  const entrypoint = instructions.filter((i) => i.op === 'ENTRYPOINT');
  assert.equal(entrypoint.length, 1);
  const argv = JSON.parse(entrypoint[0]?.args ?? '') as string[];
  assert.deepEqual(argv, ['node', 'dist/cli/platform.js'], 'ENTRYPOINT must be exec-form `node dist/cli/platform.js`; the command (api, worker --lane …) comes from compose');
  const buildConfig = readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8');
  assert.match(buildConfig, /"outDir":\s*"dist"/);
  assert.ok(existsSync(CLI_PATH), 'dist/cli/platform.js is compiled from cli/platform.ts');

  const pkg = JSON.parse(readFileSync(PACKAGE_JSON_PATH, 'utf8')) as { scripts: Record<string, string> };
  const bundle = /platform\.js bundle --out (\S+)/.exec(pkg.scripts.build ?? '');
  assert.ok(bundle, 'npm run build prebuilds the workflow bundle');
  const env = dockerfileEnv();
  assert.equal(env.WORKFLOW_BUNDLE_PATH, `/app/${bundle[1]}`, 'WORKFLOW_BUNDLE_PATH must point at the prebuilt bundle');
  // Image variables outside configSchema, each with its reason. NODE_ENV: read by express and npm
  // (production mode), not by the platform.
  const allowed = new Set(['NODE_ENV']);
  for (const key of Object.keys(env)) {
    assert.ok(configKeys.has(key) || allowed.has(key), `Dockerfile ENV ${key} is not a variable of common/config.ts`);
  }

  const users = instructions.filter((i) => i.op === 'USER');
  const user = users[users.length - 1]?.args;
  assert.ok(user && !/^(root|0)(:|$)/.test(user), 'the image must run as a non-root USER');
  const last = (op: string) => instructions.map((i) => i.op).lastIndexOf(op);
  assert.ok(last('USER') < last('ENTRYPOINT'), 'USER must come before ENTRYPOINT');
  assert.ok(last('RUN') < last('USER'), 'build steps after USER would run unprivileged');
});

test('.dockerignore keeps local state out of the build context but not the sources', () => {
  const patterns = readFileSync(DOCKERIGNORE_PATH, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/^\.?\//, '').replace(/\/$/, ''));
  for (const required of ['node_modules', '.data', '.git', 'test', 'bench', 'docs']) {
    assert.ok(patterns.includes(required), `.dockerignore does not exclude ${required}`);
  }
  for (const source of copySources()) {
    const top = source.replace(/^\.\//, '').replace(/\/$/, '').split('/')[0] as string;
    assert.ok(!patterns.includes(top), `.dockerignore excludes ${top}, which the Dockerfile COPYs`);
  }
});
