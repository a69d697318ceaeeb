import { ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import { INTERPRETER_WORKFLOW_TYPE, MEMO_KEYS, PRIORITY_KEYS, workflowTaskQueue } from '../common/constants.ts';
import { sha256Hex } from '../common/canonical-json.ts';
import type { Logger } from '../common/logger.ts';
import type { Definition } from '../interpreter/schema.ts';
import { pinRunDependencies, runInputFor, runSearchAttributes } from './run-inputs.ts';
import type { RunInput } from '../workflows/types.ts';
import type { ApiKeyStore } from './auth.ts';
import type { DefinitionsStore, StoredDefinition } from './definitions-store.ts';
import { HttpProblem } from './problem.ts';

type ScheduleTrigger = Extract<NonNullable<Definition['triggers']>[number], { type: 'schedule' }>;

/** Schedule ids carry the tenant and definition, so a tenant only ever sees and touches its own. */
export function scheduleIdPrefix(tenant: string, name: string): string {
  return `sched:${tenant}:${name}:`;
}

/**
 * The parts of a schedule id, or undefined for an id the platform did not make. Tenant names hold
 * no `:` (TENANT_PATTERN) and definition names hold none either, so the split is unambiguous.
 */
export function parseScheduleId(scheduleId: string): { tenant: string; name: string; trigger: number } | undefined {
  const match = /^sched:([^:]+):([^:]+):(\d{1,4})$/.exec(scheduleId);
  return match ? { tenant: match[1]!, name: match[2]!, trigger: Number(match[3]) } : undefined;
}

/** Whether the tenant owns the schedule: its id parses and names exactly this tenant. */
export function scheduleOwnedBy(scheduleId: string, tenant: string): boolean {
  return parseScheduleId(scheduleId)?.tenant === tenant;
}

const OVERLAP = {
  skip: 'SKIP',
  buffer_one: 'BUFFER_ONE',
  buffer_all: 'BUFFER_ALL',
  cancel_other: 'CANCEL_OTHER',
  terminate_other: 'TERMINATE_OTHER',
  allow_all: 'ALLOW_ALL',
} as const;

export interface ScheduleView {
  scheduleId: string;
  definition: { name: string; version: string };
  trigger: number;
  spec: { cron?: string; interval?: number; timezone?: string; jitter?: number };
  /** Temporal's overlap policy in lower case (`SKIP` → `skip`). */
  overlap: keyof typeof OVERLAP;
  catchupWindowSeconds: number;
  pauseOnFailure: boolean;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; startedAt: string; runId: string; status?: string }>;
  missedCatchupWindow: number;
  skippedOverlap: number;
}

/**
 * Temporal Schedules from definitions' `schedule` triggers. Each trigger of the version a
 * definition's runs start (its production alias, else its newest active version) is one schedule;
 * reconciling after a registration, a status change, a promotion or a rollback creates, updates
 * and deletes schedules to match. Temporal names each scheduled run
 * `<workflowId>-<scheduled time>`, so a run is started at most once per scheduled time.
 */
export class SchedulesService {
  constructor(
    private readonly client: Client,
    private readonly definitions: DefinitionsStore,
    private readonly keys: ApiKeyStore,
    private readonly options: { continueAsNewAfterEvents?: number; executionTimeoutSeconds: number; logger: Logger },
  ) {}

  /** The tenant's schedule ids, of one definition when `name` is given, compared part by part. */
  private async existingIds(tenant: string, name?: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const s of this.client.schedule.list()) {
      const parts = parseScheduleId(s.scheduleId);
      if (parts?.tenant === tenant && (name === undefined || parts.name === name)) ids.push(s.scheduleId);
    }
    return ids;
  }

  /**
   * Makes the tenant's schedules for `name` match the triggers of the version its runs start
   * (DefinitionsStore.startingVersion: the production alias, else the newest active version).
   */
  async reconcile(tenant: string, name: string): Promise<string[]> {
    const prefix = scheduleIdPrefix(tenant, name);
    const active = await this.definitions.startingVersion(tenant, name);
    const triggers = (active?.body.triggers ?? []).flatMap((t, i) => (t.type === 'schedule' ? [{ trigger: t, index: i }] : []));
    const wanted = new Map(triggers.map(({ trigger, index }) => [`${prefix}${index}`, { trigger, index }]));
    for (const id of await this.existingIds(tenant, name)) {
      if (!wanted.has(id)) {
        await this.client.schedule.getHandle(id).delete();
        this.options.logger.info({ scheduleId: id }, 'schedule deleted');
      }
    }
    if (!active) return [];
    for (const [id, { trigger, index }] of wanted) {
      const options = await this.optionsFor(id, active, trigger, index);
      const handle = this.client.schedule.getHandle(id);
      try {
        await handle.describe();
        await handle.update((previous) => ({
          ...previous,
          spec: options.spec,
          action: options.action,
          policies: options.policies,
          state: { ...previous.state, ...(previous.state.paused ? {} : { note: options.state?.note }) },
        }));
        this.options.logger.info({ scheduleId: id, version: active.version }, 'schedule updated');
      } catch (error) {
        if (!(error instanceof ScheduleNotFoundError)) throw error;
        await this.client.schedule.create(options);
        this.options.logger.info({ scheduleId: id, version: active.version }, 'schedule created');
      }
    }
    return [...wanted.keys()];
  }

  private async optionsFor(id: string, definition: StoredDefinition, trigger: ScheduleTrigger, index: number): Promise<ScheduleOptions> {
    const pins = await pinRunDependencies(this.definitions, this.keys, definition.tenant, definition);
    const correlationId = id;
    const who = { tenant: definition.tenant, startedBy: 'schedule', correlationId };
    const input = runInputFor(definition, trigger.input, who, pins, this.options.continueAsNewAfterEvents);
    const priority = definition.body.priority;
    return {
      scheduleId: id,
      spec: {
        ...(trigger.cron ? { cronExpressions: [trigger.cron] } : {}),
        ...(trigger.interval ? { intervals: [{ every: trigger.interval * 1000 }] } : {}),
        ...(trigger.timezone ? { timezone: trigger.timezone } : {}),
        ...(trigger.jitter ? { jitter: trigger.jitter * 1000 } : {}),
      },
      action: {
        type: 'startWorkflow',
        workflowType: INTERPRETER_WORKFLOW_TYPE,
        // The tenant's hash keeps two tenants' same-named definitions from sharing scheduled run ids.
        workflowId: `${definition.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}-scheduled-${index}-${sha256Hex(definition.tenant).slice(0, 8)}`,
        taskQueue: workflowTaskQueue(definition.lane),
        args: [input],
        workflowExecutionTimeout: (definition.body.resource_limits?.max_execution_time ?? this.options.executionTimeoutSeconds) * 1000,
        staticSummary: `${definition.name}@${definition.version} (schedule trigger ${index})`,
        memo: { [MEMO_KEYS.correlationId]: correlationId },
        typedSearchAttributes: runSearchAttributes(definition, who),
        ...(priority ? { priority: { priorityKey: PRIORITY_KEYS[priority] } } : {}),
      },
      policies: {
        overlap: OVERLAP[trigger.overlap ?? 'skip'],
        catchupWindow: (trigger.catchup_window ?? 60) * 1000,
        pauseOnFailure: trigger.pause_on_failure ?? false,
      },
      state: { note: `${definition.name}@${definition.version}, trigger ${index}` },
      memo: { definition: definition.name },
    };
  }

  private owned(tenant: string, scheduleId: string): void {
    if (!scheduleOwnedBy(scheduleId, tenant)) throw new HttpProblem(404, 'Not Found', `no schedule "${scheduleId}"`);
  }

  private async describe(scheduleId: string): Promise<ScheduleDescription> {
    try {
      return await this.client.schedule.getHandle(scheduleId).describe();
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw new HttpProblem(404, 'Not Found', `no schedule "${scheduleId}"`);
      throw error;
    }
  }

  private async view(desc: ScheduleDescription): Promise<ScheduleView> {
    // The action carries the pinned definition; the trigger index ends the schedule id. (The memo
    // cannot change on update, so it is not the source of truth.)
    const input = (desc.action.type === 'startWorkflow' ? desc.action.args?.[0] : undefined) as RunInput | undefined;
    const index = Number(desc.scheduleId.slice(desc.scheduleId.lastIndexOf(':') + 1));
    const trigger = input?.definition.triggers?.[index];
    const spec: ScheduleView['spec'] =
      trigger?.type === 'schedule'
        ? {
            ...(trigger.cron ? { cron: trigger.cron } : {}),
            ...(trigger.interval ? { interval: trigger.interval } : {}),
            ...(trigger.timezone ? { timezone: trigger.timezone } : {}),
            ...(trigger.jitter ? { jitter: trigger.jitter } : {}),
          }
        : {};
    const recent = await Promise.all(
      desc.info.recentActions.slice(-10).map(async (a) => {
        const runId = a.action.workflow.workflowId;
        let status: string | undefined;
        try {
          status = (await this.client.workflow.getHandle(runId).describe()).status.name.toLowerCase();
        } catch {
          status = undefined;
        }
        return { scheduledAt: a.scheduledAt.toISOString(), startedAt: a.takenAt.toISOString(), runId, ...(status ? { status } : {}) };
      }),
    );
    return {
      scheduleId: desc.scheduleId,
      definition: { name: input?.definition.name ?? '', version: input?.definition.version ?? '' },
      trigger: index,
      spec,
      overlap: (desc.policies.overlap ?? 'SKIP').toLowerCase() as keyof typeof OVERLAP,
      catchupWindowSeconds: Math.round(desc.policies.catchupWindow / 1000),
      pauseOnFailure: desc.policies.pauseOnFailure,
      paused: desc.state.paused,
      ...(desc.state.note ? { note: desc.state.note } : {}),
      nextRuns: desc.info.nextActionTimes.map((t) => t.toISOString()),
      recentRuns: recent,
      missedCatchupWindow: desc.info.numActionsMissedCatchupWindow,
      skippedOverlap: desc.info.numActionsSkippedOverlap,
    };
  }

  async list(tenant: string): Promise<ScheduleView[]> {
    const views: ScheduleView[] = [];
    for (const id of (await this.existingIds(tenant)).sort()) views.push(await this.view(await this.describe(id)));
    return views;
  }

  async get(tenant: string, scheduleId: string): Promise<ScheduleView> {
    this.owned(tenant, scheduleId);
    return this.view(await this.describe(scheduleId));
  }

  async pause(tenant: string, scheduleId: string, note: string): Promise<ScheduleView> {
    this.owned(tenant, scheduleId);
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).pause(note);
    return this.get(tenant, scheduleId);
  }

  async resume(tenant: string, scheduleId: string, note: string): Promise<ScheduleView> {
    this.owned(tenant, scheduleId);
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).unpause(note);
    return this.get(tenant, scheduleId);
  }

  async trigger(tenant: string, scheduleId: string): Promise<void> {
    this.owned(tenant, scheduleId);
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).trigger();
  }

  async backfill(tenant: string, scheduleId: string, start: Date, end: Date, overlap: keyof typeof OVERLAP | undefined): Promise<void> {
    this.owned(tenant, scheduleId);
    await this.describe(scheduleId);
    await this.client.schedule.getHandle(scheduleId).backfill({ start, end, ...(overlap ? { overlap: OVERLAP[overlap] } : {}) });
  }
}
