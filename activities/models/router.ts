import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Config } from '../../common/config.ts';

/**
 * The model routing table: which provider and model answers a route name, what it falls back to,
 * and who may use it. Loaded once at startup from MODEL_ROUTES_FILE (JSON or YAML) or MODEL_ROUTES
 * (JSON); seed 003's table is the default. Secrets are never values here: a route names the
 * environment variable or file that holds its API key, and the key is read at call time.
 */

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,99}$/;
const routeName = z.string().regex(ROUTE_NAME, 'route names are letters, digits and . _ : / -');

const timeoutsSchema = z.strictObject({
  /** Until the first streamed token (model loading counts: a cold 14B model may take a while). */
  firstTokenMs: z.number().int().min(1).max(3_600_000).default(120_000),
  /** Longest silence between two streamed chunks; longer means the stream stalled. */
  idleMs: z.number().int().min(1).max(600_000).default(30_000),
  /** The whole call on this route. */
  totalMs: z.number().int().min(1).max(3_600_000).default(600_000),
});
export type RouteTimeouts = z.infer<typeof timeoutsSchema>;

const routeSchema = z
  .strictObject({
    provider: z.enum(['ollama', 'openai']),
    /** The provider's model name, e.g. `qwen3:14b`. */
    providerModel: z.string().min(1).max(200),
    /** Overrides OLLAMA_BASE_URL / OPENAI_BASE_URL. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    description: z.string().max(1000).optional(),
    /** Routes (or aliases) tried in order when this one is unavailable. */
    fallbacks: z.array(routeName).max(10).default([]),
    /** A paid/remote provider: needs an API key reference and a `lanes` list, and is logged with its reason. */
    cloud: z.boolean().default(false),
    /** Seed 003's "task class and reason" logged with every cloud call. */
    reason: z.string().max(500).optional(),
    /** Lanes allowed to use the route (`*` at the end matches a prefix); absent = every lane (local routes only). */
    lanes: z.array(z.string().min(1).max(60)).min(1).optional(),
    /** Name of the environment variable holding the API key. */
    apiKeyEnv: z.string().regex(ENV_NAME, 'an environment variable name (A-Z, 0-9, _)').optional(),
    /** Path of a file holding the API key (a Docker/Kubernetes secret mount). */
    apiKeyFile: z.string().min(1).optional(),
    timeouts: timeoutsSchema.prefault({}),
    /** How structured output is asked for: a JSON Schema (default), plain JSON mode, or only validated. */
    structuredOutput: z.enum(['schema', 'json', 'none']).default('schema'),
    /** Ollama only: `think` for reasoning models (qwen3); false keeps thinking out of the reply. */
    think: z.boolean().optional(),
    /** Kept for old definitions; logged as such. */
    legacy: z.boolean().default(false),
  })
  .superRefine((route, ctx) => {
    if (route.cloud && !route.apiKeyEnv && !route.apiKeyFile) {
      ctx.addIssue({ code: 'custom', path: ['apiKeyEnv'], message: 'a cloud route needs apiKeyEnv or apiKeyFile (a reference, never the key)' });
    }
    if (route.cloud && !route.lanes) {
      ctx.addIssue({ code: 'custom', path: ['lanes'], message: 'a cloud route must list the lanes allowed to use it' });
    }
    if (route.apiKeyEnv && route.apiKeyFile) {
      ctx.addIssue({ code: 'custom', path: ['apiKeyFile'], message: 'name apiKeyEnv or apiKeyFile, not both' });
    }
  });

/** The file format; an `apiKey` field is refused with a pointer to the reference fields. */
export const routingTableSchema = z.strictObject({
  routes: z.record(routeName, z.unknown()).refine((r) => Object.keys(r).length > 0, 'at least one route'),
  aliases: z.record(routeName, routeName).default({}),
  /** What `model: default` means when no alias `default` is given. */
  default: routeName.optional(),
});

export type RouteConfig = z.infer<typeof routeSchema>;

export interface ModelRoute extends Omit<RouteConfig, 'baseUrl'> {
  name: string;
  /** Effective base URL (the route's, else OLLAMA_BASE_URL / OPENAI_BASE_URL). */
  baseUrl: string;
}

export interface ModelRoutingTable {
  routes: Record<string, ModelRoute>;
  aliases: Record<string, string>;
  /** Where the table came from, for logs and errors. */
  source: string;
}

/** Seed 003 §3: the local generalist with its fallback, the coding specialist, the legacy route. */
export const DEFAULT_ROUTING_TABLE = {
  routes: {
    'local/qwen-14b': {
      provider: 'ollama',
      providerModel: 'qwen3:14b',
      description: 'Local default generalist',
      fallbacks: ['local/mistral-small'],
    },
    'local/mistral-small': { provider: 'ollama', providerModel: 'mistral-small', description: 'Local fallback' },
    'local/qwen-coder-32b': {
      provider: 'ollama',
      providerModel: 'qwen2.5-coder:32b',
      description: 'Coding specialist',
      fallbacks: ['local/qwen-14b'],
    },
    'local/qwen2.5-14b': {
      provider: 'ollama',
      providerModel: 'qwen2.5:14b',
      description: 'Legacy route',
      legacy: true,
      fallbacks: ['local/qwen-14b'],
    },
  },
  aliases: {
    default: 'local/qwen-14b',
    general: 'local/qwen-14b',
    fallback: 'local/mistral-small',
    coding: 'local/qwen-coder-32b',
    legacy: 'local/qwen2.5-14b',
  },
} as const;

/** Thrown at startup when the table is wrong; the message lists every problem with its JSON pointer. */
export class ModelRoutesError extends Error {
  override name = 'ModelRoutesError';
}

const pointer = (path: readonly PropertyKey[]) =>
  `/${path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

type RoutesConfig = Pick<Config, 'OLLAMA_BASE_URL' | 'OPENAI_BASE_URL'> & Partial<Pick<Config, 'MODEL_ROUTES' | 'MODEL_ROUTES_FILE'>>;

function readSource(config: RoutesConfig): { raw: unknown; source: string } {
  if (config.MODEL_ROUTES && config.MODEL_ROUTES_FILE) {
    throw new ModelRoutesError('set MODEL_ROUTES or MODEL_ROUTES_FILE, not both');
  }
  if (config.MODEL_ROUTES_FILE) {
    const file = config.MODEL_ROUTES_FILE;
    if (!existsSync(file)) throw new ModelRoutesError(`MODEL_ROUTES_FILE: ${file} does not exist`);
    const text = readFileSync(file, 'utf8');
    try {
      return { raw: /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text), source: file };
    } catch (error) {
      throw new ModelRoutesError(`MODEL_ROUTES_FILE: ${file} does not parse: ${(error as Error).message}`);
    }
  }
  if (config.MODEL_ROUTES) {
    try {
      return { raw: JSON.parse(config.MODEL_ROUTES), source: 'MODEL_ROUTES' };
    } catch (error) {
      throw new ModelRoutesError(`MODEL_ROUTES is not valid JSON: ${(error as Error).message}`);
    }
  }
  return { raw: DEFAULT_ROUTING_TABLE, source: 'built-in default (seed 003)' };
}

/** Validates a routing table document; every problem is reported at once with its JSON pointer. */
export function parseRoutingTable(raw: unknown, config: Pick<Config, 'OLLAMA_BASE_URL' | 'OPENAI_BASE_URL'>, source = 'routing table'): ModelRoutingTable {
  const problems: string[] = [];
  const top = routingTableSchema.safeParse(raw);
  if (!top.success) {
    throw new ModelRoutesError(`${source}:\n  ${top.error.issues.map((i) => `${pointer(i.path)}: ${i.message}`).join('\n  ')}`);
  }
  const routes: Record<string, ModelRoute> = {};
  for (const [name, value] of Object.entries(top.data.routes)) {
    if (value && typeof value === 'object' && 'apiKey' in value) {
      problems.push(`${pointer(['routes', name, 'apiKey'])}: keys never go in the table; name the variable (apiKeyEnv) or file (apiKeyFile) that holds it`);
      continue;
    }
    const parsed = routeSchema.safeParse(value);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${pointer(['routes', name, ...i.path])}: ${i.message}`);
      continue;
    }
    const baseUrl = (parsed.data.baseUrl ?? (parsed.data.provider === 'ollama' ? config.OLLAMA_BASE_URL : config.OPENAI_BASE_URL)).replace(/\/+$/, '');
    if (!parsed.data.cloud && /(^|\.)(openai\.com|anthropic\.com|googleapis\.com|mistral\.ai|groq\.com|together\.xyz|openrouter\.ai)$/i.test(new URL(baseUrl).hostname)) {
      problems.push(`${pointer(['routes', name, 'cloud'])}: ${new URL(baseUrl).hostname} is a cloud provider: mark the route "cloud": true (with apiKeyEnv/apiKeyFile and lanes)`);
    }
    routes[name] = { ...parsed.data, name, baseUrl };
  }
  const aliases = { ...top.data.aliases };
  if (top.data.default !== undefined && aliases.default === undefined) aliases.default = top.data.default;
  for (const [alias, target] of Object.entries(aliases)) {
    if (alias in top.data.routes) problems.push(`${pointer(['aliases', alias])}: "${alias}" is already a route name`);
    if (!(target in top.data.routes)) problems.push(`${pointer(['aliases', alias])}: "${target}" is not a route`);
  }
  for (const [name, route] of Object.entries(routes)) {
    route.fallbacks.forEach((fallback, i) => {
      const target = aliases[fallback] ?? fallback;
      if (!(target in top.data.routes)) problems.push(`${pointer(['routes', name, 'fallbacks', i])}: "${fallback}" is not a route or alias`);
      else if (target === name) problems.push(`${pointer(['routes', name, 'fallbacks', i])}: a route cannot fall back to itself`);
    });
  }
  if (problems.length > 0) throw new ModelRoutesError(`${source}:\n  ${problems.join('\n  ')}`);
  return { routes, aliases, source };
}

/** Reads and validates the installation's table (MODEL_ROUTES_FILE, MODEL_ROUTES, or seed 003's). */
export function loadModelRoutes(config: RoutesConfig): ModelRoutingTable {
  const { raw, source } = readSource(config);
  return parseRoutingTable(raw, config, source);
}

/**
 * Every name a `model` field may use: route names and aliases, sorted. For the registration-time
 * validator (unknown models are refused there, not at run time).
 */
export function modelRouteNames(config: RoutesConfig): string[] {
  const table = loadModelRoutes(config);
  return [...Object.keys(table.routes), ...Object.keys(table.aliases)].sort();
}

/** Thrown by `resolveRoute` for a name the table does not know. */
export class UnknownModelRoute extends Error {
  override name = 'UnknownModelRoute';
}

/** A route name or alias → the route (aliases may not chain: they name routes). */
export function resolveRoute(table: ModelRoutingTable, nameOrAlias: string): ModelRoute {
  const route = table.routes[table.aliases[nameOrAlias] ?? nameOrAlias];
  if (!route) {
    const known = [...Object.keys(table.routes), ...Object.keys(table.aliases)].sort().join(', ');
    throw new UnknownModelRoute(`model "${nameOrAlias}" is not in the routing table (${table.source}); known: ${known}`);
  }
  return route;
}

/**
 * The routes to try for a request, in order: the route itself, then its fallbacks depth-first
 * (a fallback's own fallbacks follow it), each route once. At most `limit` routes.
 */
export function routeChain(table: ModelRoutingTable, nameOrAlias: string, limit = 8): ModelRoute[] {
  const chain: ModelRoute[] = [];
  const visit = (route: ModelRoute) => {
    if (chain.length >= limit || chain.some((r) => r.name === route.name)) return;
    chain.push(route);
    for (const next of route.fallbacks) visit(resolveRoute(table, next));
  };
  visit(resolveRoute(table, nameOrAlias));
  return chain;
}

/** Whether a lane may use a route: its `lanes` list (exact names, or a prefix ending in `*`); absent = all. */
export function laneAllowed(route: Pick<ModelRoute, 'lanes'>, lane: string): boolean {
  if (!route.lanes) return true;
  return route.lanes.some((pattern) => (pattern.endsWith('*') ? lane.startsWith(pattern.slice(0, -1)) : lane === pattern));
}

/** Where a route's API key lives, for messages (never the key itself). */
export function apiKeyReference(route: Pick<ModelRoute, 'apiKeyEnv' | 'apiKeyFile'>): string | undefined {
  if (route.apiKeyEnv) return `environment variable ${route.apiKeyEnv}`;
  if (route.apiKeyFile) return `file ${route.apiKeyFile}`;
  return undefined;
}

/** Reads a route's API key at call time; undefined when the reference is set but holds nothing. */
export function readApiKey(route: Pick<ModelRoute, 'apiKeyEnv' | 'apiKeyFile'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (route.apiKeyEnv) {
    const value = env[route.apiKeyEnv]?.trim();
    return value ? value : undefined;
  }
  if (route.apiKeyFile) {
    try {
      const value = readFileSync(route.apiKeyFile, 'utf8').trim();
      return value ? value : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Why a route may not serve a lane right now, or undefined when it may. */
export function routeRefusal(route: ModelRoute, lane: string, env: NodeJS.ProcessEnv = process.env): { code: 'LaneNotAllowed' | 'NotConfigured'; reason: string } | undefined {
  if (!laneAllowed(route, lane)) {
    return { code: 'LaneNotAllowed', reason: `route "${route.name}" is not allowed for lane "${lane}" (lanes: ${route.lanes?.join(', ')})` };
  }
  if ((route.cloud || route.apiKeyEnv || route.apiKeyFile) && readApiKey(route, env) === undefined) {
    return { code: 'NotConfigured', reason: `route "${route.name}" has no API key (${apiKeyReference(route) ?? 'no reference'} is empty or missing)` };
  }
  return undefined;
}
