/**
 * Hand-written Temporal workflows that do exactly what the benchmark's interpreter definitions do,
 * so the benchmark compares the interpreter with the code a developer would write by hand.
 *
 * Every activity call mirrors workflows/interpreter.ts for a default skill step: the same activity
 * name (`echo`) on the same task queue (`<lane>.skills`), the same SkillRequest envelope with the
 * same metadata (idempotency key `<workflowId>/<stepPath>`), the same summary, and the same
 * timeouts and retry policy (30 s start-to-close, 30 s heartbeat, 3 attempts, 1 s initial
 * interval, 30 s maximum interval, coefficient 2).
 *
 * This is workflow code: deterministic, no clocks, no randomness, no I/O (the same discipline
 * eslint enforces for interpreter/ and workflows/).
 */
import { continueAsNew, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import { activityTaskQueue } from '../common/constants.ts';
import type { SkillRequest } from '../activities/skills/types.ts';

/** Who runs the workflow: the same identity fields the interpreter copies into every call's meta. */
export interface BaselineIdentity {
  lane: string;
  tenant: string;
  correlationId: string;
  /** The `name` and `version` of the interpreter definition this baseline stands for. */
  definition: string;
  version: string;
}

/** The interpreter's defaults for an activity step (interpreter/compile.ts STEP_DEFAULTS). */
const TIMEOUT_SECONDS = 30;

type EchoActivity = (request: SkillRequest) => Promise<unknown>;

/** One `echo` call exactly as the interpreter makes it for a step `stepId` at `stepPath`. */
function echo(who: BaselineIdentity, stepId: string, stepPath: string, input: Record<string, unknown>): Promise<unknown> {
  const { echo: call } = proxyActivities<{ echo: EchoActivity }>({
    taskQueue: activityTaskQueue(who.lane, 'skills'),
    startToCloseTimeout: TIMEOUT_SECONDS * 1000,
    heartbeatTimeout: Math.min(TIMEOUT_SECONDS, 30) * 1000,
    retry: {
      maximumAttempts: 3,
      initialInterval: 1000,
      maximumInterval: 30_000,
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [],
    },
    summary: `step ${stepId}`,
  });
  return call({
    input,
    meta: {
      stepId,
      definition: who.definition,
      version: who.version,
      lane: who.lane,
      tenant: who.tenant,
      correlationId: who.correlationId,
      idempotencyKey: `${workflowInfo().workflowId}/${stepPath}`,
    },
  });
}

/**
 * `steps` sequential echo calls, step ids `s1`..`sN` with input `{n: i}`: the same as the
 * interpreter definition `sequence(N)` in bench/definitions.ts.
 */
export async function baselineSequence(who: BaselineIdentity, steps: number): Promise<{ output: unknown }> {
  let last: unknown = null;
  for (let i = 1; i <= steps; i += 1) {
    last = await echo(who, `s${i}`, `s${i}`, { n: i });
  }
  return { output: last };
}

/** Two echo calls in parallel (the interpreter's `parallel` step with two echo branches). */
export async function baselineParallel(who: BaselineIdentity): Promise<{ output: unknown }> {
  const [a, b] = await Promise.all([echo(who, 'a', 'a', { branch: 'a' }), echo(who, 'b', 'b', { branch: 'b' })]);
  return { output: { a, b } };
}

/** One echo per item, one after another (the interpreter's `for_each`, max_concurrency 1). */
export async function baselineForEach(who: BaselineIdentity, items: unknown[]): Promise<{ output: unknown }> {
  const results: unknown[] = [];
  for (let index = 0; index < items.length; index += 1) {
    results.push(await echo(who, 'each', `fe[${index}]/each`, { item: items[index], index }));
  }
  return { output: results };
}

/** A one-second timer (the interpreter's `wait` step). */
export async function baselineWait(ms: number): Promise<{ output: unknown }> {
  await sleep(ms);
  return { output: null };
}

/** A pure loop: what a `loop` of `set` steps computes, written by hand (no history of its own). */
export async function baselinePureLoop(iterations: number): Promise<{ output: unknown }> {
  let counter = 0;
  for (let i = 0; i < iterations; i += 1) counter += 1;
  return { output: { counter } };
}

export interface BaselineLoopArgs {
  who: BaselineIdentity;
  iterations: number;
  /** Continue as new once the history holds this many events (the interpreter's default is 10,000). */
  continueAsNewAfterEvents: number;
  /** Carried across continue-as-new. */
  next?: number;
  continuedAsNew?: number;
  last?: unknown;
}

/**
 * `iterations` echo calls in a loop, continuing as new with the interpreter's policy: before each
 * call, when Temporal suggests it or the history holds `continueAsNewAfterEvents` events. Step id
 * `call` at path `loop[i]/call`, input `{iteration: i}`, like the interpreter definition
 * `echoLoop(N)`.
 */
export async function baselineEchoLoop(args: BaselineLoopArgs): Promise<{ output: unknown; continuedAsNew: number }> {
  const { who, iterations, continueAsNewAfterEvents } = args;
  let last: unknown = args.last ?? null;
  const continued = args.continuedAsNew ?? 0;
  for (let i = args.next ?? 0; i < iterations; i += 1) {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= continueAsNewAfterEvents) {
      return continueAsNew<typeof baselineEchoLoop>({ ...args, next: i, continuedAsNew: continued + 1, last });
    }
    last = await echo(who, 'call', `loop[${i}]/call`, { iteration: i });
  }
  return { output: last, continuedAsNew: continued };
}
