import { z } from 'zod';

/**
 * Seed 003 §5, the promotion gate: a candidate version and the current production version run
 * the same battery of recorded inputs; the candidate is promoted only when every criterion holds,
 * else it stays experimental with the reasons. This module is the pure part: the request, the
 * measures of a set of runs and the verdict. api/authoring/promotions.ts runs the battery.
 */

/** Seed 003's task classes: every battery covers each of them. */
export const TASK_CLASSES = ['short', 'medium', 'long', 'workflow'] as const;
export const MIN_BATTERY = 10;

export const promotionRequestSchema = z
  .strictObject({
    candidate: z.string().min(1).max(100).describe('the version to promote'),
    battery: z
      .array(
        z.strictObject({
          class: z.enum(TASK_CLASSES).describe('seed 003 §5: short response, medium synthesis, long planning, workflow-specific output'),
          input: z.unknown().describe('the recorded run input'),
          name: z.string().max(200).optional(),
        }),
      )
      .min(MIN_BATTERY, `seed 003 §5 asks for a battery of at least ${MIN_BATTERY} tasks`)
      .max(200),
    judge: z
      .strictObject({
        step: z.string().min(1).max(64).describe('the step (a model or agent judge, or a rubric skill) whose output scores the run'),
        field: z.string().min(1).max(200).default('score').describe('dotted path of the numeric score in that step’s output'),
      })
      .optional()
      .describe('quality: the mean score must rise by at least 15% (seed 003 §5)'),
    budget: z
      .strictObject({
        maxTokensPerRun: z.number().positive().optional().describe('mean model tokens (input + output) per run'),
        maxTokenIncrease: z.number().min(0).optional().describe('the most the mean tokens per run may grow over production, as a fraction (0.1 = 10%)'),
      })
      .optional()
      .describe('the approved cost envelope; without one, cost is reported and not judged'),
    timeoutSeconds: z.number().int().positive().max(3600).default(300).describe('how long each battery run may take'),
  })
  .refine((r) => TASK_CLASSES.every((c) => r.battery.some((t) => t.class === c)), {
    message: `the battery must cover every seed 003 task class: ${TASK_CLASSES.join(', ')}`,
    path: ['battery'],
  });

export type PromotionRequest = z.infer<typeof promotionRequestSchema>;

/** One battery run as measured. */
export interface BatteryRun {
  task: number;
  class: (typeof TASK_CLASSES)[number];
  runId: string;
  status: string;
  durationMs?: number;
  tokens: number;
  quality?: number;
  error?: string;
}

export interface Measures {
  runs: number;
  completed: number;
  completionRate: number;
  p50Ms: number | null;
  p95Ms: number | null;
  tokensPerRun: number;
  /** Mean judge score of the completed runs that had one. */
  quality: number | null;
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  // Nearest rank.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? null;
}

export function measure(runs: readonly BatteryRun[]): Measures {
  const completed = runs.filter((r) => r.status === 'completed');
  const durations = completed.map((r) => r.durationMs ?? 0).sort((a, b) => a - b);
  const scored = completed.filter((r) => r.quality !== undefined);
  return {
    runs: runs.length,
    completed: completed.length,
    completionRate: runs.length === 0 ? 0 : completed.length / runs.length,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
    tokensPerRun: runs.length === 0 ? 0 : runs.reduce((n, r) => n + r.tokens, 0) / runs.length,
    quality: scored.length === 0 ? null : scored.reduce((n, r) => n + (r.quality ?? 0), 0) / scored.length,
  };
}

export interface Criterion {
  name: 'reliability' | 'latency' | 'quality' | 'cost' | 'rollback';
  pass: boolean;
  /** Not judged (no judge step, no budget): it neither passes nor blocks. */
  judged: boolean;
  detail: string;
}

export interface Verdict {
  promote: boolean;
  criteria: Criterion[];
  reasons: string[];
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** No regression in completion against production (or every task completed, with none yet). */
function reliability(candidate: Measures, baseline: Measures | undefined): Criterion {
  if (baseline) {
    return {
      name: 'reliability',
      pass: candidate.completionRate >= baseline.completionRate,
      judged: true,
      detail: `completion ${pct(candidate.completionRate)} (${candidate.completed}/${candidate.runs}) against production's ${pct(baseline.completionRate)} (${baseline.completed}/${baseline.runs}): no regression allowed`,
    };
  } else {
    return {
      name: 'reliability',
      pass: candidate.completionRate === 1,
      judged: true,
      detail: `no production version yet: every task must complete (${candidate.completed}/${candidate.runs})`,
    };
  }
}

/** The judge step's mean score: 15% better than production's; also the gain, which latency parity needs. */
function quality(candidate: Measures, baseline: Measures | undefined, judge: PromotionRequest['judge']): { criterion: Criterion; qualityGain: number | null } {
  let qualityGain: number | null = null;
  if (judge) {
    if (candidate.quality === null || (baseline && baseline.quality === null)) {
      return { criterion: { name: 'quality', pass: false, judged: true, detail: `step "${judge.step}" gave no numeric "${judge.field}" in the completed runs` }, qualityGain };
    } else if (baseline && baseline.quality !== null) {
      qualityGain = baseline.quality === 0 ? (candidate.quality > 0 ? Infinity : 0) : (candidate.quality - baseline.quality) / Math.abs(baseline.quality);
      return {
        qualityGain,
        criterion: {
          name: 'quality',
          pass: qualityGain >= 0.15,
          judged: true,
          detail: `mean score ${candidate.quality.toFixed(3)} against production's ${baseline.quality.toFixed(3)}: ${Number.isFinite(qualityGain) ? pct(qualityGain) : 'from zero'} (≥ 15% needed)`,
        },
      };
    } else {
      return { criterion: { name: 'quality', pass: true, judged: true, detail: `mean score ${candidate.quality.toFixed(3)}; no production version to compare with` }, qualityGain };
    }
  } else {
    return { criterion: { name: 'quality', pass: true, judged: false, detail: 'no judge step given: quality not judged (latency parity then needs a judged quality gain)' }, qualityGain };
  }
}

/** p50 20% faster than production's, or at parity with a judged quality gain. */
function latency(candidate: Measures, baseline: Measures | undefined, qualityGain: number | null): Criterion {
  if (baseline && candidate.p50Ms !== null && baseline.p50Ms !== null && baseline.p50Ms > 0) {
    const faster = (baseline.p50Ms - candidate.p50Ms) / baseline.p50Ms;
    const parity = candidate.p50Ms <= baseline.p50Ms * 1.05;
    const qualityOk = qualityGain !== null && qualityGain >= 0.15;
    return {
      name: 'latency',
      pass: faster >= 0.2 || (parity && qualityOk),
      judged: true,
      detail: `p50 ${candidate.p50Ms} ms (p95 ${candidate.p95Ms} ms) against production's ${baseline.p50Ms} ms (p95 ${baseline.p95Ms} ms): ${faster >= 0 ? `${pct(faster)} faster` : `${pct(-faster)} slower`}; ≥ 20% faster, or parity (within 5%) with a judged quality gain of ≥ 15%`,
    };
  } else if (baseline) {
    return { name: 'latency', pass: false, judged: true, detail: 'no completed runs to compare latency on' };
  } else {
    return { name: 'latency', pass: true, judged: false, detail: `p50 ${candidate.p50Ms} ms, p95 ${candidate.p95Ms} ms; no production version to compare with` };
  }
}

/** Model tokens per run within the request's budget, when one is given. */
function cost(candidate: Measures, baseline: Measures | undefined, budget: PromotionRequest['budget']): Criterion {
  if (budget && (budget.maxTokensPerRun !== undefined || budget.maxTokenIncrease !== undefined)) {
    const problems: string[] = [];
    if (budget.maxTokensPerRun !== undefined && candidate.tokensPerRun > budget.maxTokensPerRun) problems.push(`over ${budget.maxTokensPerRun} per run`);
    if (budget.maxTokenIncrease !== undefined && baseline && candidate.tokensPerRun > baseline.tokensPerRun * (1 + budget.maxTokenIncrease)) {
      problems.push(`more than ${pct(budget.maxTokenIncrease)} over production's ${Math.round(baseline.tokensPerRun)}`);
    }
    return {
      name: 'cost',
      pass: problems.length === 0,
      judged: true,
      detail: `${Math.round(candidate.tokensPerRun)} model tokens per run${baseline ? ` (production ${Math.round(baseline.tokensPerRun)})` : ''}${problems.length > 0 ? `: ${problems.join(', ')}` : ': within the envelope'}`,
    };
  } else {
    return { name: 'cost', pass: true, judged: false, detail: `${Math.round(candidate.tokensPerRun)} model tokens per run${baseline ? ` (production ${Math.round(baseline.tokensPerRun)})` : ''}; no budget given: not judged` };
  }
}

/**
 * Seed 003 §5's pass criteria. `baseline` is production's measures (undefined when nothing is in
 * production yet: there is nothing to regress from, so the candidate must complete every task).
 */
export function judgePromotion(candidate: Measures, baseline: Measures | undefined, request: Pick<PromotionRequest, 'judge' | 'budget'>, rollbackTo: string | undefined): Verdict {
  const criteria: Criterion[] = [];
  criteria.push(reliability(candidate, baseline));

  const judged = quality(candidate, baseline, request.judge);
  criteria.push(judged.criterion);

  criteria.push(latency(candidate, baseline, judged.qualityGain));

  criteria.push(cost(candidate, baseline, request.budget));

  criteria.push({
    name: 'rollback',
    pass: true,
    judged: true,
    detail: rollbackTo
      ? `POST /v1/definitions/{name}/promotions/rollback moves production back to ${rollbackTo} in one call`
      : 'first production version: rollback clears the production alias (runs then start the highest active version)',
  });

  const failed = criteria.filter((c) => !c.pass);
  return { promote: failed.length === 0, criteria, reasons: failed.map((c) => `${c.name}: ${c.detail}`) };
}

/** Reads a dotted path from a value. */
export function readPath(value: unknown, path: string): unknown {
  let at: unknown = value;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** Model tokens in step outputs: every `usage: {inputTokens, outputTokens}` object found. */
export function tokensIn(value: unknown, depth = 0): number {
  if (depth > 8 || value === null || typeof value !== 'object') return 0;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + tokensIn(v, depth + 1), 0);
  const record = value as Record<string, unknown>;
  let n = 0;
  const usage = record.usage as { inputTokens?: unknown; outputTokens?: unknown } | undefined;
  if (usage && typeof usage === 'object' && (typeof usage.inputTokens === 'number' || typeof usage.outputTokens === 'number')) {
    n += (typeof usage.inputTokens === 'number' ? usage.inputTokens : 0) + (typeof usage.outputTokens === 'number' ? usage.outputTokens : 0);
  }
  for (const [k, v] of Object.entries(record)) if (k !== 'usage') n += tokensIn(v, depth + 1);
  return n;
}
