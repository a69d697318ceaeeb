import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { HttpProblem } from './problem.ts';

/** `operator`: lanes, retries and reports (docs/OPERATIONS.md); `admin` holds every role. */
export const ROLES = ['submit', 'approve', 'admin', 'sensitive-reader', 'operator'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: resolved from the bearer key, never from the request body. */
export interface Principal {
  principal: string;
  roles: Role[];
  tenant: string;
  groups: string[];
}

/**
 * Tenant names end up in schedule ids (`sched:<tenant>:<name>:<i>`), visibility queries and run
 * ids, so they are plain: no `:` (which made `t1` own `t1:x`'s schedules), no spaces, no quotes.
 */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TENANT_RULE = 'tenant names are 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
const PRINTABLE = /^[^\u0000-\u001f\u007f-\u009f]*$/;

const keyEntrySchema = z
  .strictObject({
    /** The key itself. Prefer `sha256` in files that are shared or committed. */
    key: z.string().min(16, 'API keys must be at least 16 characters').optional(),
    /** Hex sha256 of the key. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    principal: z.string().min(1).max(200).regex(PRINTABLE, 'principals hold no control characters'),
    roles: z.array(z.enum(ROLES)).min(1),
    tenant: z.string().regex(TENANT_PATTERN, TENANT_RULE).default('default'),
    groups: z.array(z.string().min(1).max(200).regex(PRINTABLE, 'groups hold no control characters')).default([]),
  })
  .refine((e) => Boolean(e.key) !== Boolean(e.sha256), 'give exactly one of "key" or "sha256"');

export const apiKeysSchema = z.array(keyEntrySchema);

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Resolves bearer keys to principals. Keys are kept only as sha256 digests in memory. */
export class ApiKeyStore {
  private readonly entries: Array<{ digest: Buffer; id: string; principal: Principal }>;

  constructor(entries: z.infer<typeof apiKeysSchema>) {
    this.entries = entries.map((e) => {
      const digest = e.key ? sha256(e.key) : Buffer.from(e.sha256 ?? '', 'hex');
      return { digest, id: digest.toString('hex').slice(0, 16), principal: { principal: e.principal, roles: e.roles, tenant: e.tenant, groups: e.groups } };
    });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Members of each named group within a tenant (a run's approval directory, captured at start). */
  groupMembers(tenant: string, groups: readonly string[]): Record<string, string[]> {
    const members: Record<string, string[]> = {};
    for (const group of groups) {
      members[group] = [
        ...new Set(this.entries.filter((e) => e.principal.tenant === tenant && e.principal.groups.includes(group)).map((e) => e.principal.principal)),
      ].sort();
    }
    return members;
  }

  /** Constant-time comparison against every configured key. */
  resolve(key: string): Principal | undefined {
    return this.resolveEntry(key)?.principal;
  }

  /** The principal of a key and the key's id (a digest prefix: rate limits count per key, logs never see the key). */
  resolveEntry(key: string): { id: string; principal: Principal } | undefined {
    const digest = sha256(key);
    let found: { id: string; principal: Principal } | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest)) found = entry;
    }
    return found;
  }
}

/** Loads keys from `API_KEYS` (JSON) or `API_KEYS_FILE`; refuses to start with none. */
export function loadApiKeys(source: { API_KEYS?: string | undefined; API_KEYS_FILE?: string | undefined }): ApiKeyStore {
  let raw: string;
  let origin: string;
  if (source.API_KEYS) {
    raw = source.API_KEYS;
    origin = 'API_KEYS';
  } else if (source.API_KEYS_FILE) {
    raw = readFileSync(source.API_KEYS_FILE, 'utf8');
    origin = source.API_KEYS_FILE;
  } else {
    throw new Error('no API keys configured: set API_KEYS (JSON) or API_KEYS_FILE; the API never runs as an open door');
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new Error(`${origin} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = apiKeysSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`${origin}: ${parsed.error.issues.map((i) => `/${i.path.join('/')}: ${i.message}`).join('; ')}`);
  }
  if (parsed.data.length === 0) throw new Error(`${origin} lists no keys`);
  return new ApiKeyStore(parsed.data);
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
    /** The id of the API key that authenticated the request (see ApiKeyStore.resolveEntry). */
    apiKeyId?: string;
  }
}

/** Requires a valid `Authorization: Bearer <key>`; 401 otherwise. */
export function authenticate(store: ApiKeyStore) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      next(new HttpProblem(401, 'Unauthorized', 'send "Authorization: Bearer <api key>"'));
      return;
    }
    const entry = store.resolveEntry(match[1]);
    if (!entry) {
      next(new HttpProblem(401, 'Unauthorized', 'the API key is not valid'));
      return;
    }
    req.principal = entry.principal;
    req.apiKeyId = entry.id;
    next();
  };
}

/** Requires one of the roles (admin always passes); 403 otherwise. */
export function requireRole(...roles: Role[]) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const held = req.principal?.roles ?? [];
    if (held.includes('admin') || roles.some((r) => held.includes(r))) {
      next();
      return;
    }
    next(new HttpProblem(403, 'Forbidden', `this needs the role ${roles.map((r) => `"${r}"`).join(' or ')}`));
  };
}

/** The authenticated principal of a request that passed `authenticate`. */
export function principalOf(req: Request): Principal {
  if (!req.principal) throw new HttpProblem(401, 'Unauthorized', 'not authenticated');
  return req.principal;
}
