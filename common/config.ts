import { z } from 'zod';

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
  LANES: csv.pipe(z.array(laneName).min(1)).default(['prod-critical', 'experimental']),
  /** Lane of definitions that name none; the first of LANES when unset. */
  DEFAULT_LANE: laneName.optional(),
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().optional(),
  HTTP_FETCH_ALLOWED_HOSTS: csv.default([]),
  /** Agent definitions (JSON or YAML) for the agent registry; see docs/agents.md. */
  AGENTS_FILE: z.string().optional(),
  /** MCP servers agents' tools may call, as JSON `{"<name>": {"url": ..., "headers": ...}}`; or MCP_SERVERS_FILE. */
  MCP_SERVERS: z.string().optional(),
  MCP_SERVERS_FILE: z.string().optional(),
  RUN_EXECUTION_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(7 * 24 * 3600),
  /** Runs continue as new once their history holds this many events (or when Temporal suggests it). */
  RUN_CONTINUE_AS_NEW_EVENTS: z.coerce.number().int().min(100).max(50_000).default(10_000),
  WORKFLOW_BUNDLE_PATH: z.string().optional(),
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
  return config;
}

/** The Temporal Web address links point at; the dev server's UI by default. */
export function temporalUiUrl(config: Config): string {
  return (config.TEMPORAL_UI_URL ?? `http://127.0.0.1:${config.TEMPORAL_UI_PORT}`).replace(/\/$/, '');
}
