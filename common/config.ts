import { z } from 'zod';
import { ACTIVITY_KINDS } from './constants.ts';

/**
 * Every setting the platform reads from the environment, parsed once through zod. Workflow code
 * never reads configuration: what a run needs travels in its input.
 */
const csv = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const laneName = z.string().regex(/^[a-z][a-z0-9-]{0,40}$/, 'lane names are lower-case kebab-case');

/**
 * What a lane's workers limit, each on its own task queue: `workflows` (concurrent workflow tasks),
 * the activity kinds of ACTIVITY_KINDS, and `platform` (the platform's own activities).
 */
export const LANE_WORKER_KINDS = ['workflows', ...ACTIVITY_KINDS, 'platform'] as const;
export type LaneWorkerKind = (typeof LANE_WORKER_KINDS)[number];
export type LaneLimits = Record<LaneWorkerKind, number>;

/** Limits of a lane nothing else names. workflows and skills are the SDK's own defaults. */
export const BASE_LANE_LIMITS: LaneLimits = { workflows: 40, skills: 100, integrations: 50, models: 4, agents: 10, platform: 10 };

/** Built-in limits per lane name, over BASE_LANE_LIMITS: experimental work gets a small share. */
export const DEFAULT_LANE_LIMITS: Readonly<Record<string, Partial<LaneLimits>>> = {
  experimental: { workflows: 10, skills: 10, integrations: 10, models: 1, agents: 2, platform: 5 },
};

/** `LANE_LIMITS`: `{"<lane>" | "*": {"<kind>": <max concurrent tasks>}}`, JSON. */
const laneLimitsSchema = z.record(
  z.union([z.literal('*'), laneName]),
  z
    .object({
      // The SDK polls the workflow queue (and the sticky one) with at least 2 slots.
      workflows: z.number().int().min(2).max(10_000),
      skills: z.number().int().min(1).max(10_000),
      integrations: z.number().int().min(1).max(10_000),
      models: z.number().int().min(1).max(10_000),
      agents: z.number().int().min(1).max(10_000),
      platform: z.number().int().min(1).max(10_000),
    } satisfies Record<LaneWorkerKind, z.ZodType>)
    .partial()
    .strict(),
);

const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not valid JSON: ${(error as Error).message}` });
    return z.NEVER;
  }
});

export const configSchema = z.object({
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_API_KEY: z.string().optional(),
  TEMPORAL_TLS: bool.optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_TLS_CA_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  TEMPORAL_CLI_PATH: z.string().optional(),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  TEMPORAL_UI_URL: z.string().optional(),
  DATABASE_URL: z.string().optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  DATA_DIR: z.string().default('.data'),
  /** Port of the embedded Temporal dev server (`up` without TEMPORAL_ADDRESS). */
  TEMPORAL_DEV_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  /** Port of the embedded PostgreSQL (`up` without DATABASE_URL). */
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(5433),
  /** `up` restarts a part that dies (Temporal, a lane worker, the API) at most this many times per window, then stops the platform. */
  SUPERVISOR_MAX_RESTARTS: z.coerce.number().int().min(0).max(1000).default(5),
  SUPERVISOR_RESTART_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** Set by `up` for its children: the supervisor's state file, which the API's /readyz reads (`supervisor` check). */
  PLATFORM_SUPERVISOR_STATE: z.string().optional(),
  LANES: csv.pipe(z.array(laneName).min(1)).default(['prod-critical', 'experimental']),
  /** Lane of definitions that name none; the first of LANES when unset. */
  DEFAULT_LANE: laneName.optional(),
  /** Per-lane, per-kind worker concurrency over the defaults (see laneLimits, docs/lanes.md). */
  LANE_LIMITS: json.pipe(laneLimitsSchema).optional(),
  /** Largest request body the API reads, in bytes (after decompression); larger answers 413. */
  API_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Deepest nesting of arrays and objects a request body may have; deeper answers 400. */
  API_MAX_JSON_DEPTH: z.coerce.number().int().min(8).max(1000).default(64),
  /** Requests one API key may make per API_RATE_LIMIT_WINDOW_SECONDS on one API process; 0 turns the limit off. */
  API_RATE_LIMIT: z.coerce.number().int().min(0).default(1200),
  API_RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /**
   * Key of the decision tokens that prove who decides an approval (docs/approvals.md, trust
   * model): the same on the API and every worker. Unset: a random key kept in the database.
   */
  APPROVAL_SIGNING_KEY: z.string().min(32, 'APPROVAL_SIGNING_KEY needs at least 32 characters').optional(),
  /** Accept approval signals and updates without a decision token, trusting Temporal's own authorization (workers). */
  APPROVAL_TRUST_TEMPORAL: bool.default(false),
  /** How long a decision token from the inbox is valid, in seconds. */
  APPROVAL_TOKEN_TTL: z.coerce.number().int().min(60).max(31_622_400).default(86_400),
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().optional(),
  HTTP_FETCH_ALLOWED_HOSTS: csv.default([]),
  /** Folder of secret files: `{"secret": "NAME"}` reads `<SECRETS_DIR>/NAME` when env SECRET_NAME is unset. */
  SECRETS_DIR: z.string().optional(),
  /** Agent definitions (JSON or YAML) for the agent registry; see docs/agents.md. */
  AGENTS_FILE: z.string().optional(),
  /** MCP servers agents' tools may call, as JSON `{"<name>": {"url": ..., "headers": ...}}`; or MCP_SERVERS_FILE. */
  MCP_SERVERS: z.string().optional(),
  MCP_SERVERS_FILE: z.string().optional(),
  /** Model routing table (JSON or YAML file) for `model` steps and agents; see docs/models.md. */
  MODEL_ROUTES_FILE: z.string().optional(),
  /** The routing table inline, as JSON (instead of MODEL_ROUTES_FILE). */
  MODEL_ROUTES: z.string().optional(),
  /** Ollama's native API, for routes that name no baseUrl. */
  OLLAMA_BASE_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:11434'),
  /** An OpenAI-compatible API (ending in /v1), for routes that name no baseUrl. */
  OPENAI_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.openai.com/v1'),
  /**
   * Prometheus metrics (common/metrics.ts), on by default: the API serves them at `/metrics` on its own
   * port; a worker process on METRICS_PORT (default 9464; `up` gives each worker a free port).
   */
  METRICS_ENABLED: bool.default(true),
  METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Where a worker's metrics endpoint listens (default: API_HOST). */
  METRICS_HOST: z.string().optional(),
  /**
   * Optional protection of every `/metrics` endpoint (the API's and each worker's; default open, as
   * on the embedded platform): a scrape must send `Authorization: Bearer <METRICS_BEARER_TOKEN>`, or
   * Basic credentials matching METRICS_BASIC_AUTH (`user:password`); either one is enough when both are set.
   */
  METRICS_BEARER_TOKEN: z.string().min(16, 'METRICS_BEARER_TOKEN needs at least 16 characters').optional(),
  METRICS_BASIC_AUTH: z
    .string()
    .regex(/^[^:]+:.{8,}$/, 'METRICS_BASIC_AUTH is user:password, the password at least 8 characters')
    .optional(),
  RUN_EXECUTION_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
  /** Runs continue as new once their history holds this many events (or when Temporal suggests it). */
  RUN_CONTINUE_AS_NEW_EVENTS: z.coerce.number().int().min(100).max(50_000).default(10_000),
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
  /** Lifecycle-event webhooks (docs/lifecycle-events.md): attempts before a delivery is dead-lettered. */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  /** First retry delay; doubles per attempt (with jitter) up to WEBHOOK_RETRY_MAX_MS. */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).default(5000),
  WEBHOOK_RETRY_MAX_MS: z.coerce.number().int().min(1).default(3_600_000),
  /** Per-request timeout of a webhook POST. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  /** How often the dispatcher looks for due deliveries besides being woken by NOTIFY. */
  WEBHOOK_POLL_MS: z.coerce.number().int().min(10).max(600_000).default(1000),
  /** Hosts (`host`, `host:port`, `*.domain`, an IP or CIDR) webhook URLs may point at; empty = none. A name resolving to a non-public address needs that address listed too. */
  WEBHOOK_ALLOWED_HOSTS: csv.default([]),
  /** Lets webhooks reach loopback receivers (localhost, 127.0.0.1, [::1]) besides WEBHOOK_ALLOWED_HOSTS; `up` sets it for the embedded platform. */
  WEBHOOK_ALLOW_LOOPBACK: bool.default(false),
  /** 32 bytes (base64 or 64 hex digits) sealing webhook signing secrets at rest (AES-256-GCM); unset: `<DATA_DIR>/webhook-secret.key`, created once. The same on every API replica. */
  WEBHOOK_SECRET_KEY: z.string().optional(),
  /**
   * Admission (api/admission.ts, docs/lanes.md "Admission"): lanes whose starts may be deferred
   * under congestion. Every other lane is protected: its starts are never deferred, and its task
   * queues are what congestion is measured on. `none`: no lane is deferred.
   */
  ADMISSION_DEFERRABLE_LANES: csv
    .transform((lanes) => (lanes.length === 1 && lanes[0] === 'none' ? [] : lanes))
    .pipe(z.array(laneName))
    .default(['experimental']),
  /** Deferred starts one deferrable lane may hold; one more answers 429 with Retry-After. */
  ADMISSION_QUEUE_MAX: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** Starts per second a deferrable lane sends to Temporal (per API process), directly or from its queue. */
  ADMISSION_START_RATE: z.coerce.number().positive().max(10_000).default(5),
  /** Starts a deferrable lane may send at once above ADMISSION_START_RATE (token bucket size). */
  ADMISSION_START_BURST: z.coerce.number().int().min(1).max(10_000).default(5),
  /** A protected lane is congested when one of its task queues holds more tasks than this. */
  ADMISSION_PROTECTED_BACKLOG_MAX: z.coerce.number().int().min(0).default(10),
  /** ... or when its oldest task waited longer than this (schedule-to-start), in ms. */
  ADMISSION_PROTECTED_BACKLOG_AGE_MS: z.coerce.number().int().min(0).default(500),
  /** ... or when more of its runs started in the last second than this (per API process). */
  ADMISSION_PROTECTED_START_RATE: z.coerce.number().int().min(1).default(20),
  /** A deferrable lane gets no new starts while one of its own task queues holds more tasks than this. */
  ADMISSION_LANE_BACKLOG_MAX: z.coerce.number().int().min(0).default(50),
  /** How long one measurement of the task queues (DescribeTaskQueue) is used, in ms. */
  ADMISSION_PROBE_MS: z.coerce.number().int().min(50).max(60_000).default(500),
  /**
   * Lane yield (workers/lane-yield.ts, docs/lanes.md "Yield"): new tasks per second each worker of
   * a deferrable lane takes while a protected lane is busy (its admitted, scheduled and child runs
   * go on, slowly). 0: deferrable lanes never yield.
   */
  LANE_YIELD_RATE: z.coerce.number().min(0).max(10_000).default(2),
  /** How often a deferrable lane's workers measure the protected lanes' task queues, in ms. */
  LANE_YIELD_PROBE_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** Tasks per second added to a protected queue (the server's 30-s average) above which that lane is busy. */
  LANE_YIELD_BUSY_RATE: z.coerce.number().min(0).default(0.05),
  /**
   * Payload encryption (common/codec.ts, docs/sensitive-data.md): the key list as JSON
   * `[{"id": "...", "key": "<base64, 32 bytes>"}]`, first key seals; or a file holding it, or
   * `<SECRETS_DIR>/PAYLOAD_CODEC_KEYS`. None of them: payloads go to Temporal unencrypted (`up` makes a key file).
   */
  PAYLOAD_CODEC_KEYS: z.string().optional(),
  PAYLOAD_CODEC_KEYS_FILE: z.string().optional(),
  /** The codec server's path for Temporal Web (`/codec/ui/<token>/decode`): who knows it may decode from the UI's origin. */
  CODEC_UI_TOKEN: z.string().min(24, 'CODEC_UI_TOKEN needs at least 24 characters').optional(),
  /** Origins whose pages may call the codec server (CORS); the Temporal Web address by default. */
  CODEC_CORS_ORIGINS: csv.optional(),
  /** Retention (api/retention.ts, docs/OPERATIONS.md "Retention"), run by the API: days kept; 0 = forever. */
  RETENTION_EVENTS_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  RETENTION_DELIVERIES_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  RETENTION_DEFERRED_DAYS: z.coerce.number().int().min(0).max(36_500).default(0),
  /** Seconds between retention rounds; 0 = none. */
  RETENTION_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(604_800).default(3600),
  /** Workers keep each run's log lines (info and above) for GET /v1/runs/{id}/logs; needs DATABASE_URL. */
  RUN_LOGS_ENABLED: bool.default(true),
  /** Lines kept per run by one worker process (one more says the rest were not kept). */
  RUN_LOGS_MAX_PER_RUN: z.coerce.number().int().min(1).max(100_000).default(1000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Omit<z.infer<typeof configSchema>, 'DEFAULT_LANE'> & { DEFAULT_LANE: string };

/** Thrown when the environment does not parse; the message lists every bad variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses configuration from an environment map (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config = { ...parsed.data, DEFAULT_LANE: parsed.data.DEFAULT_LANE ?? parsed.data.LANES[0]! };
  if (!config.LANES.includes(config.DEFAULT_LANE)) {
    throw new ConfigError(
      `invalid configuration:\n  DEFAULT_LANE: "${config.DEFAULT_LANE}" is not one of LANES (${config.LANES.join(', ')})`,
    );
  }
  const unknownDeferrable = config.ADMISSION_DEFERRABLE_LANES.filter((l) => !config.LANES.includes(l));
  // The default names `experimental`; a deployment whose lanes are named otherwise defers nothing.
  if (unknownDeferrable.length > 0 && cleaned.ADMISSION_DEFERRABLE_LANES !== undefined) {
    throw new ConfigError(
      `invalid configuration:\n  ADMISSION_DEFERRABLE_LANES: ${unknownDeferrable.map((l) => `"${l}"`).join(', ')} not in LANES (${config.LANES.join(', ')})`,
    );
  }
  const strangers = Object.keys(config.LANE_LIMITS ?? {}).filter((l) => l !== '*' && !config.LANES.includes(l));
  if (strangers.length > 0) {
    throw new ConfigError(
      `invalid configuration:\n  LANE_LIMITS: ${strangers.map((l) => `"${l}"`).join(', ')} not in LANES (${config.LANES.join(', ')})`,
    );
  }
  return config;
}

/**
 * The worker limits of one lane: BASE_LANE_LIMITS, then the lane name's DEFAULT_LANE_LIMITS, then
 * LANE_LIMITS["*"], then LANE_LIMITS[lane]; each level overrides only the kinds it names.
 */
export function laneLimits(config: Pick<Config, 'LANE_LIMITS'>, lane: string): LaneLimits {
  return {
    ...BASE_LANE_LIMITS,
    ...DEFAULT_LANE_LIMITS[lane],
    ...config.LANE_LIMITS?.['*'],
    ...config.LANE_LIMITS?.[lane],
  };
}

/** The Temporal Web address links point at; the dev server's UI by default. */
export function temporalUiUrl(config: Config): string {
  return (config.TEMPORAL_UI_URL ?? `http://127.0.0.1:${config.TEMPORAL_UI_PORT}`).replace(/\/$/, '');
}
