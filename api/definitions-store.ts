import semver from 'semver';
import { canonicalJson, sha256Hex } from '../common/canonical-json.ts';
import type { AgentRegistry } from '../activities/agents/registry.ts';
import type { Pool } from '../common/db.ts';
import type { RunInput } from '../workflows/types.ts';
import type { Definition } from '../interpreter/schema.ts';
import { isCurrentManifest, manifestOf, type Manifest } from '../interpreter/manifest.ts';
import { HttpProblem } from './problem.ts';

export interface StoredDefinition {
  tenant: string;
  name: string;
  version: string;
  hash: string;
  lane: string;
  description: string | null;
  createdBy: string;
  createdAt: string;
  body: Definition;
  status: DefinitionStatus;
  statusChangedAt: string | null;
  statusChangedBy: string | null;
  /** Its dependencies, found once (interpreter/manifest.ts): what a run of it pins. */
  manifest: Manifest;
}

export const DEFINITION_STATUSES = ['active', 'deprecated', 'retired'] as const;

/** The alias the promotion gate moves: runs started without a version start the version it names. */
export const PRODUCTION_ALIAS = 'production';
export type DefinitionStatus = (typeof DEFINITION_STATUSES)[number];

export type RegisterOutcome =
  | { outcome: 'created'; definition: StoredDefinition }
  | { outcome: 'unchanged'; definition: StoredDefinition }
  | { outcome: 'conflict'; existing: StoredDefinition };

interface Row {
  tenant: string;
  name: string;
  version: string;
  hash: string;
  lane: string;
  description: string | null;
  created_by: string;
  created_at: Date;
  body: Definition;
  status: DefinitionStatus;
  status_changed_at: Date | null;
  status_changed_by: string | null;
  manifest: unknown;
}

function fromRow(row: Row): StoredDefinition {
  return {
    tenant: row.tenant,
    name: row.name,
    version: row.version,
    hash: row.hash,
    lane: row.lane,
    description: row.description,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    body: row.body,
    status: row.status,
    statusChangedAt: row.status_changed_at ? row.status_changed_at.toISOString() : null,
    statusChangedBy: row.status_changed_by,
    manifest: isCurrentManifest(row.manifest) ? row.manifest : manifestOf(row.body),
  };
}

/** The hash that pins a run to its definition: sha256 of the canonical JSON. */
export function definitionHash(definition: Definition): string {
  return sha256Hex(canonicalJson(definition));
}

/** Definitions in PostgreSQL: `name@version` per tenant, immutable once written. */
/**
 * What a run of a stored definition pins besides definitions (api/run-inputs.ts): the registry
 * agents its agent steps name, and the registered timeouts and retries of what its steps call.
 */
export interface RunPinning {
  agents?: AgentRegistry;
  /** Per `<family>:<name>`. */
  activityDefaults?: NonNullable<RunInput['activityDefaults']>;
}

export class DefinitionsStore {
  readonly #backfilled = new Set<string>();

  constructor(
    private readonly pool: Pool,
    /** What the API serving this store registered (startApi); none in a store used alone. */
    readonly pinning: RunPinning = {},
  ) {}

  /** A row as read; a version registered before manifests gets its manifest stored, once. */
  #read = (row: Row): StoredDefinition => {
    const definition = fromRow(row);
    const key = `${row.tenant}\u0000${row.name}\u0000${row.version}`;
    if (!isCurrentManifest(row.manifest) && !this.#backfilled.has(key)) {
      this.#backfilled.add(key);
      // Best effort: if it fails, the next process to read the row computes it again.
      this.pool
        .query('UPDATE definitions SET manifest = $4 WHERE tenant = $1 AND name = $2 AND version = $3', [row.tenant, row.name, row.version, JSON.stringify(definition.manifest)])
        .catch(() => this.#backfilled.delete(key));
    }
    return definition;
  };

  /** Inserts, or reports an identical (idempotent) or conflicting existing version. */
  async register(tenant: string, definition: Definition, lane: string, createdBy: string): Promise<RegisterOutcome> {
    const hash = definitionHash(definition);
    const inserted = await this.pool.query<Row>(
      `INSERT INTO definitions (tenant, name, version, body, hash, lane, description, created_by, manifest)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (tenant, name, version) DO NOTHING
       RETURNING *`,
      [tenant, definition.name, definition.version, JSON.stringify(definition), hash, lane, definition.description ?? null, createdBy, JSON.stringify(manifestOf(definition))],
    );
    const row = inserted.rows[0];
    if (row) return { outcome: 'created', definition: fromRow(row) };
    const existing = await this.get(tenant, definition.name, definition.version);
    if (!existing) throw new Error('definition vanished between insert and read');
    return existing.hash === hash ? { outcome: 'unchanged', definition: existing } : { outcome: 'conflict', existing };
  }

  async get(tenant: string, name: string, version: string): Promise<StoredDefinition | undefined> {
    const result = await this.pool.query<Row>('SELECT * FROM definitions WHERE tenant = $1 AND name = $2 AND version = $3', [
      tenant,
      name,
      version,
    ]);
    return result.rows[0] ? this.#read(result.rows[0]) : undefined;
  }

  /** Which of these `name@version` references are registered for the tenant. */
  async existing(tenant: string, refs: ReadonlyArray<{ definition: string; version: string }>): Promise<Set<string>> {
    const found = new Set<string>();
    for (const ref of refs) {
      if (await this.get(tenant, ref.definition, ref.version)) found.add(`${ref.definition}@${ref.version}`);
    }
    return found;
  }

  /**
   * Every definition a run of `root` may start through sub_workflow steps, transitively, keyed
   * `name@version`: resolved once at start so child runs are pinned like their parent. Each comes
   * with its stored manifest, and the walk follows the manifests.
   */
  async subDefinitions(tenant: string, root: Manifest): Promise<Record<string, { definition: Definition; hash: string; manifest: Manifest }>> {
    const pinned: Record<string, { definition: Definition; hash: string; manifest: Manifest }> = {};
    const queue = [...root.dependencies.definitions];
    while (queue.length > 0) {
      const ref = queue.shift()!;
      const key = `${ref.definition}@${ref.version}`;
      if (pinned[key]) continue;
      const found = await this.get(tenant, ref.definition, ref.version);
      if (!found) {
        throw new HttpProblem(409, 'Conflict', `sub-workflow definition ${key} is not registered for this tenant`, [
          { path: '/definition', message: `calls ${key}, which is not registered` },
        ]);
      }
      pinned[key] = { definition: found.body, hash: found.hash, manifest: found.manifest };
      queue.push(...found.manifest.dependencies.definitions);
    }
    return pinned;
  }

  /** Every version of a definition, newest semantic version first. */
  async versions(tenant: string, name: string): Promise<StoredDefinition[]> {
    const result = await this.pool.query<Row>('SELECT * FROM definitions WHERE tenant = $1 AND name = $2', [tenant, name]);
    return result.rows.map(this.#read).sort((a, b) => semver.rcompare(a.version, b.version));
  }

  /** The highest semantic version of a definition. */
  async latest(tenant: string, name: string): Promise<StoredDefinition | undefined> {
    return (await this.versions(tenant, name))[0];
  }

  /**
   * The version a run started without one uses, whoever starts it (`POST /v1/runs`, a schedule,
   * an event trigger, a dry run by name): the `production` alias when a promotion set one and that
   * version is active (api/authoring/promotions.ts), else the highest active version (not
   * deprecated or retired). A version registered after a promotion is experimental: it starts
   * only when asked for by version, until the gate promotes it.
   */
  async startingVersion(tenant: string, name: string): Promise<StoredDefinition | undefined> {
    return (await this.starting(tenant, name))[0];
  }

  /** For every definition name of the tenant, the version its runs start (startingVersion), by name. */
  async allStartingVersions(tenant: string): Promise<StoredDefinition[]> {
    return this.starting(tenant);
  }

  private async starting(tenant: string, name?: string): Promise<StoredDefinition[]> {
    const only = name === undefined ? '' : ' AND name = $2';
    const params = name === undefined ? [tenant] : [tenant, name];
    const [active, aliases] = await Promise.all([
      this.pool.query<Row>(`SELECT * FROM definitions WHERE tenant = $1 AND status = 'active'${only}`, params),
      this.pool.query<{ name: string; version: string }>(`SELECT name, version FROM definition_aliases WHERE tenant = $1 AND alias = '${PRODUCTION_ALIAS}'${only}`, params),
    ]);
    const production = new Map(aliases.rows.map((a) => [a.name, a.version]));
    const best = new Map<string, StoredDefinition>();
    for (const d of active.rows.map(this.#read)) {
      const current = best.get(d.name);
      const promoted = production.get(d.name);
      if (current !== undefined && current.version === promoted) continue;
      if (!current || d.version === promoted || semver.gt(d.version, current.version)) best.set(d.name, d);
    }
    return [...best.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Moves a version through its lifecycle: `active` ⇄ `deprecated` → `retired` (final). Returns
   * the updated version, or a reason the move is not allowed.
   */
  async setStatus(tenant: string, name: string, version: string, status: DefinitionStatus, by: string): Promise<StoredDefinition | string | undefined> {
    const current = await this.get(tenant, name, version);
    if (!current) return undefined;
    if (current.status === status) return current;
    if (current.status === 'retired') return `${name}@${version} is retired; retirement is final`;
    const result = await this.pool.query<Row>(
      'UPDATE definitions SET status = $4, status_changed_at = now(), status_changed_by = $5 WHERE tenant = $1 AND name = $2 AND version = $3 RETURNING *',
      [tenant, name, version, status, by],
    );
    return result.rows[0] ? this.#read(result.rows[0]) : undefined;
  }

  /** One summary per definition name: its latest version and how many versions exist. */
  async list(tenant: string): Promise<Array<{ latest: StoredDefinition; versions: string[] }>> {
    const result = await this.pool.query<Row>('SELECT * FROM definitions WHERE tenant = $1 ORDER BY name', [tenant]);
    const byName = new Map<string, StoredDefinition[]>();
    for (const row of result.rows) {
      const d = this.#read(row);
      byName.set(d.name, [...(byName.get(d.name) ?? []), d]);
    }
    return [...byName.values()].map((all) => {
      const sorted = all.sort((a, b) => semver.rcompare(a.version, b.version));
      return { latest: sorted[0]!, versions: sorted.map((d) => d.version) };
    });
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }
}
