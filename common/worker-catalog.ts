import { z } from 'zod';
import type { ActivityCatalog } from '../activities/catalog.ts';
import { canonicalJson, sha256Hex } from './canonical-json.ts';
import type { ActivityKind } from './constants.ts';
import type { Pool } from './db.ts';

/**
 * What the activity workers of a lane run, per family, as the last worker to start reported it
 * (table worker_catalog). Workers write it; the API reads it at registration, so the two agree on
 * the catalog: a skill the API knows but the lane's workers lack is refused with a clear error.
 */

/** One family's report: name -> fingerprint of its output schema, who reported, when. */
export interface FamilyReport {
  entries: Record<string, string>;
  identity: string;
  reportedAt: string;
}

export type LaneCatalogReport = Partial<Record<ActivityKind, FamilyReport>>;

/** The fingerprint of a spec's output contract: equal on both sides when both run the same code. */
export function outputFingerprint(output: z.ZodType): string {
  try {
    return sha256Hex(canonicalJson(z.toJSONSchema(output, { io: 'output', unrepresentable: 'any' })));
  } catch {
    return 'unrepresentable';
  }
}

/** Name -> fingerprint for one family of a catalog. */
export function familyEntries(catalog: ActivityCatalog, family: ActivityKind): Record<string, string> {
  return Object.fromEntries(catalog[family].map((spec) => [spec.name, outputFingerprint(spec.output)]));
}

export class WorkerCatalogStore {
  constructor(private readonly pool: Pool) {}

  /** Replaces what the lane's workers of a family run (called by each worker as it starts). */
  async report(lane: string, family: ActivityKind, entries: Record<string, string>, identity: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO worker_catalog (lane, family, entries, identity, reported_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (lane, family) DO UPDATE SET entries = EXCLUDED.entries, identity = EXCLUDED.identity, reported_at = EXCLUDED.reported_at`,
      [lane, family, JSON.stringify(entries), identity],
    );
  }

  /** What the lane's workers reported, per family (absent families: no report). */
  async forLane(lane: string): Promise<LaneCatalogReport> {
    const result = await this.pool.query<{ family: ActivityKind; entries: Record<string, string>; identity: string; reported_at: Date }>(
      'SELECT family, entries, identity, reported_at FROM worker_catalog WHERE lane = $1',
      [lane],
    );
    const report: LaneCatalogReport = {};
    for (const row of result.rows) report[row.family] = { entries: row.entries, identity: row.identity, reportedAt: row.reported_at.toISOString() };
    return report;
  }
}
