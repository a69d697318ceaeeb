import { type WorkflowHandle } from '@temporalio/client';
import { kindCases, type RawDefinition } from './definitions.ts';
import { type Ctx, type RunOutcome, history, identity, nextId, runInterpreter, signalWhenWaiting, timedRun } from './harness.ts';
import { SETTINGS, stats } from './helpers.ts';

/** Measurement: one run per step kind, interpreter against the hand-written baseline. */

export async function measureKinds(ctx: Ctx, integrationUrl: string) {
  const cases = kindCases(integrationUrl);
  const definitionOf = (kind: string): RawDefinition => {
    const found = cases.find((c) => c.kind === kind);
    if (!found) throw new Error(`no kind case "${kind}"`);
    return found.definition;
  };
  const baselines: Record<string, () => Promise<RunOutcome>> = {
    skill: () => timedRun(ctx, 'baselineSequence', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('skill')), 1]),
    parallel: () => timedRun(ctx, 'baselineParallel', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('parallel'))]),
    for_each: () => timedRun(ctx, 'baselineForEach', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('for_each')), [1, 2, 3]]),
    wait: () => timedRun(ctx, 'baselineWait', nextId(ctx, 'kind', 'b'), [1000]),
    'set-only (empty baseline)': () => timedRun(ctx, 'baselinePureLoop', nextId(ctx, 'kind', 'b'), [0]),
  };
  const rows = [];
  for (const c of cases) {
    const samples: RunOutcome[] = [];
    const childEvents: number[] = [];
    for (let r = 0; r < SETTINGS.kindReps; r += 1) {
      const outcome = await runInterpreter(ctx, 'kind', c.definition, c.input, {
        ...(c.expectFailure ? { expectFailure: true } : {}),
        ...(c.signalWhenWaiting
          ? { whileRunning: (h: WorkflowHandle) => signalWhenWaiting(h, c.signalWhenWaiting!.stepId, c.signalWhenWaiting!.name, c.signalWhenWaiting!.payload) }
          : {}),
      });
      if (c.expectFailure && outcome.failed === undefined) throw new Error(`${c.kind}: the run was expected to fail`);
      samples.push(outcome);
      if (c.childStepId) childEvents.push((await history(ctx, `${outcome.workflowId}/${c.childStepId}`)).events?.length ?? 0);
    }
    const baseline = baselines[c.kind];
    const handWritten: RunOutcome[] = [];
    if (baseline) for (let r = 0; r < SETTINGS.kindReps; r += 1) handWritten.push(await baseline());
    rows.push({
      kind: c.kind,
      note: c.note ?? '',
      events: stats(samples.map((s) => s.events)),
      ms: stats(samples.map((s) => s.ms)),
      ...(childEvents.length ? { childEvents: stats(childEvents) } : {}),
      ...(handWritten.length ? { handWrittenEvents: stats(handWritten.map((s) => s.events)) } : {}),
      ...(samples[0]?.failed ? { failure: samples[0].failed } : {}),
    });
    ctx.logger.warn({ kind: c.kind, events: samples.map((s) => s.events) }, 'kind measured');
  }
  const empty = rows[0]!.events.median;
  return rows.map((r) => ({ ...r, attributable: r.events.median - empty }));
}
