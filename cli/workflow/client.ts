import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { CHECKOUT_ROOT } from '../../common/paths.ts';

/**
 * How the `workflow` CLI reaches the platform: only through the REST API. The URL and key come
 * from flags, then the environment, then a profile file, then the embedded platform's defaults
 * (`http://127.0.0.1:8080` and the key `up` writes to `.data/dev-api-key`).
 */

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Exit codes: the same meaning on every command (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The thing asked about is not healthy: the run failed or was cancelled, the definition is invalid. */
  failed: 1,
  /** A usage mistake or a local input the CLI could not read (missing file, malformed JSON). */
  usage: 2,
  /** 401/403: no key, a wrong key, or a key without the role. */
  auth: 3,
  /** 404: no such definition, version or run. */
  notFound: 4,
  /** Another 4xx: 400, 409, 413, 429 … (the API's problem says which). */
  rejected: 5,
  /** The platform is unreachable or answered 5xx. */
  unavailable: 6,
  /** Ctrl-C while following: the CLI detached, the run goes on. */
  detached: 130,
} as const;

/** A failure the CLI reports and exits with (`code` is one of EXIT). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    /** The API's problem+json body, printed as it is with --json. */
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  correlationId?: string;
  errors?: Array<{ path: string; message: string; stepId?: string }>;
  [key: string]: unknown;
}

const profileSchema = z.strictObject({
  url: z.string().url().optional(),
  key: z.string().min(1).optional(),
  /** A file holding the key (first line), e.g. a deployment's secret mount. */
  keyFile: z.string().min(1).optional(),
});
const profilesFileSchema = z.strictObject({
  /** The profile used when none is named. */
  default: z.string().optional(),
  profiles: z.record(z.string(), profileSchema),
});

export interface ConnectionOptions {
  url?: string;
  key?: string;
  profile?: string;
}

export interface Connection {
  url: string;
  key: string | undefined;
  /** Where the key came from, for the 401 hint. */
  keySource: string;
}

/** The profile file: WORKFLOW_CONFIG, else $XDG_CONFIG_HOME/workflow/config.json, else ~/.config/workflow/config.json. */
export function profilesPath(env: NodeJS.ProcessEnv): string {
  if (env.WORKFLOW_CONFIG) return resolve(env.WORKFLOW_CONFIG);
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'workflow', 'config.json');
}

function readKeyFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n')[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The checkout this CLI belongs to (for its `.data/dev-api-key` when run from elsewhere). */
const CHECKOUT = CHECKOUT_ROOT;

/** The embedded platform's development key: `$DATA_DIR/dev-api-key`, `./.data/`, then the checkout's `.data/`. */
function devKey(env: NodeJS.ProcessEnv, cwd: string): { key: string; file: string } | undefined {
  const candidates = [
    ...(env.DATA_DIR ? [join(resolve(cwd, env.DATA_DIR), 'dev-api-key')] : []),
    join(cwd, '.data', 'dev-api-key'),
    join(CHECKOUT, '.data', 'dev-api-key'),
  ];
  for (const file of candidates) {
    const key = existsSync(file) ? readKeyFile(file) : undefined;
    if (key) return { key, file };
  }
  return undefined;
}

/** Resolves URL and key: flags, then WORKFLOW_API_URL / WORKFLOW_API_KEY, then the profile, then the embedded defaults. */
export function resolveConnection(options: ConnectionOptions, env: NodeJS.ProcessEnv, cwd: string): Connection {
  const file = profilesPath(env);
  let profile: z.infer<typeof profileSchema> = {};
  const profileName = options.profile ?? env.WORKFLOW_PROFILE;
  if (existsSync(file)) {
    let parsed: z.infer<typeof profilesFileSchema>;
    try {
      parsed = profilesFileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch (error) {
      const message = error instanceof z.ZodError ? error.issues.map((i) => `/${i.path.join('/')}: ${i.message}`).join('; ') : (error as Error).message;
      throw new CliError(`the profile file ${file} is not valid: ${message}`, EXIT.usage);
    }
    const name = profileName ?? parsed.default;
    if (name !== undefined) {
      const found = parsed.profiles[name];
      if (!found) throw new CliError(`no profile "${name}" in ${file}; profiles: ${Object.keys(parsed.profiles).join(', ') || '(none)'}`, EXIT.usage);
      profile = found;
    }
  } else if (profileName !== undefined) {
    throw new CliError(`no profile file at ${file} (profile "${profileName}" was asked for)`, EXIT.usage);
  }
  const url = (options.url ?? env.WORKFLOW_API_URL ?? profile.url ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw new CliError(`the API URL must start with http:// or https:// (got "${url}")`, EXIT.usage);
  if (options.key) return { url, key: options.key, keySource: '--key' };
  if (env.WORKFLOW_API_KEY) return { url, key: env.WORKFLOW_API_KEY, keySource: 'WORKFLOW_API_KEY' };
  if (profile.key) return { url, key: profile.key, keySource: `profile in ${file}` };
  if (profile.keyFile) return { url, key: readKeyFile(resolve(dirname(file), profile.keyFile)), keySource: `keyFile ${profile.keyFile}` };
  const dev = devKey(env, cwd);
  return dev ? { url, key: dev.key, keySource: dev.file } : { url, key: undefined, keySource: 'nowhere (no --key, WORKFLOW_API_KEY, profile or .data/dev-api-key)' };
}

function exitCodeFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status >= 500) return EXIT.unavailable;
  return EXIT.rejected;
}

/** Formats a problem+json answer as one readable message with its JSON paths. */
export function problemMessage(status: number, problem: Problem | undefined, fallback: string): string {
  const head = problem?.detail ?? problem?.title ?? fallback;
  const lines = [`${status} ${problem?.title ?? ''}: ${head}`.replace(/ : /, ': ')];
  for (const e of problem?.errors ?? []) lines.push(`  ${e.path || '(body)'}: ${e.message}`);
  return lines.join('\n');
}

/** A thin REST client: JSON in, JSON out, problem+json turned into CliError with a fitting exit code. */
export class ApiClient {
  constructor(readonly connection: Connection) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.connection.key ? { authorization: `Bearer ${this.connection.key}` } : {}), ...extra };
  }

  async fetch(path: string, init: { method?: string; json?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const url = `${this.connection.url}${path}`;
    try {
      return await fetch(url, {
        method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
        headers: this.headers({ ...(init.json === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers }),
        ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `the platform is not reachable at ${this.connection.url} (${cause?.code ?? cause?.message ?? (error as Error).message}); start it with \`npm start\` or pass --url`,
        EXIT.unavailable,
      );
    }
  }

  /** Sends a request and returns the parsed body; any non-2xx becomes a CliError. */
  async request<T = any>(path: string, init: { method?: string; json?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: T }> {
    const response = await this.fetch(path, init);
    const text = await response.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const problem = body && typeof body === 'object' ? (body as Problem) : undefined;
      let message = problemMessage(response.status, problem, text.slice(0, 300) || response.statusText);
      if (response.status === 401) message += `\n  (the key came from ${this.connection.keySource})`;
      throw new CliError(message, exitCodeFor(response.status), problem ?? { status: response.status, detail: text.slice(0, 300) });
    }
    return { status: response.status, body: body as T };
  }

  get<T = any>(path: string): Promise<T> {
    return this.request<T>(path).then((r) => r.body);
  }

  /** A GET whose answer is text (e.g. Markdown); a problem answer throws like `request`. */
  async text(path: string): Promise<string> {
    const response = await this.fetch(path, {});
    const text = await response.text();
    if (!response.ok) {
      let problem: Problem | undefined;
      try {
        problem = JSON.parse(text) as Problem;
      } catch {
        problem = undefined;
      }
      throw new CliError(problemMessage(response.status, problem, text.slice(0, 300) || response.statusText), exitCodeFor(response.status), problem ?? { status: response.status, detail: text.slice(0, 300) });
    }
    return text;
  }
}

/** Percent-encodes one path segment. */
export const seg = (value: string): string => encodeURIComponent(value);
