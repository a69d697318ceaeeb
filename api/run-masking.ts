import type { Principal } from './auth.ts';
import type { DefinitionsStore } from './definitions-store.ts';
import type { RunsService, RunView } from './runs-service.ts';
import { Masker } from '../common/sensitive.ts';
import type { SensitiveSpec } from '../interpreter/schema.ts';
import type { LifecycleEvent } from '../workflows/types.ts';

/** The role that reads declared sensitive values in the clear (docs/sensitive-data.md). */
export const SENSITIVE_READER = 'sensitive-reader';

/** Whether a caller sees declared sensitive values: only with the role (admin alone does not). */
export function readsSensitive(principal: Principal): boolean {
  return principal.roles.includes(SENSITIVE_READER);
}

/** How long a run's masker is reused by the webhook dispatcher and the events route. */
const CACHE_MS = 30_000;
const CACHE_MAX = 500;

/**
 * Builds a run's Masker (common/sensitive.ts) from its pinned definition's `sensitive` field and
 * the values the run holds (its input, the declared steps' outputs), and applies it to what the
 * API answers: run views, lifecycle events, their webhook deliveries, the approval audit.
 */
export class RunMasking {
  readonly #specs = new Map<string, SensitiveSpec | null>();
  readonly #maskers = new Map<string, { at: number; masker: Promise<Masker> }>();

  constructor(
    private readonly definitions: DefinitionsStore,
    private readonly runs: RunsService,
  ) {}

  /** The definition version's spec (versions are immutable, so it is kept). */
  async spec(tenant: string, name: string, version: string): Promise<SensitiveSpec | undefined> {
    const key = `${tenant}\u0000${name}\u0000${version}`;
    if (!this.#specs.has(key)) {
      const stored = await this.definitions.get(tenant, name, version);
      const spec = stored?.body.sensitive;
      const declared = spec && ((spec.input?.length ?? 0) > 0 || Object.keys(spec.steps ?? {}).length > 0);
      // Unknown versions are not cached: a definition registered later must be seen.
      if (stored) this.#specs.set(key, declared ? spec : null);
      return declared ? spec : undefined;
    }
    return this.#specs.get(key) ?? undefined;
  }

  /** A run view with every declared value, and every copy of one, masked. */
  async view(view: RunView, tenant: string): Promise<RunView> {
    const spec = await this.spec(tenant, view.definition.name, view.definition.version);
    if (!spec) return view;
    const masker = new Masker(spec, {
      ...(spec.input?.length ? { input: await this.runs.runInput(view.runId) } : {}),
      outputs: Object.fromEntries((view.steps ?? []).map((s) => [s.id, s.output])),
    });
    const masked = masker.scrub({ ...view, steps: view.steps?.map((s) => (s.output === undefined ? s : { ...s, output: masker.stepOutput(s.id, s.output) })) });
    return { ...masked, runId: view.runId, definition: view.definition };
  }

  /** The masker of a run (cached briefly: the dispatcher sends a run's events in bursts). */
  async maskerFor(runId: string, tenant: string, definition: { name: string; version: string }): Promise<Masker | undefined> {
    const spec = await this.spec(tenant, definition.name, definition.version);
    if (!spec) return undefined;
    const now = Date.now();
    const cached = this.#maskers.get(runId);
    if (cached && now - cached.at < CACHE_MS) return cached.masker;
    const masker = (async () => {
      const view = await this.runs.get(runId, tenant);
      return new Masker(spec, {
        ...(spec.input?.length ? { input: await this.runs.runInput(runId) } : {}),
        outputs: Object.fromEntries((view.steps ?? []).map((s) => [s.id, s.output])),
      });
    })();
    if (this.#maskers.size >= CACHE_MAX) this.#maskers.delete(this.#maskers.keys().next().value as string);
    this.#maskers.set(runId, { at: now, masker });
    masker.catch(() => this.#maskers.delete(runId));
    return masker;
  }

  /**
   * A lifecycle event as a caller without the role sees it (and as webhooks always send it):
   * its data scrubbed of the run's sensitive values. When the run cannot be read (no worker
   * answers), the free-text fields (`error`) are withheld rather than risked.
   */
  async event<E extends Pick<LifecycleEvent, 'runId' | 'tenant' | 'definition' | 'version' | 'data'>>(event: E): Promise<E> {
    const definition = { name: event.definition, version: event.version };
    const spec = await this.spec(event.tenant, definition.name, definition.version);
    if (!spec) return event;
    try {
      const masker = await this.maskerFor(event.runId, event.tenant, definition);
      return masker ? { ...event, data: masker.scrub(event.data) } : event;
    } catch {
      const { error: _error, ...data } = event.data;
      return { ...event, data: 'error' in event.data ? { ...data, error: { message: '[withheld: the run declares sensitive data]' } } : data };
    }
  }
}
