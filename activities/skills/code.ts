import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { runInSandbox, SandboxError, type SandboxLimits } from '../sandbox/sandbox.ts';
import { defineSkill, type SkillContext } from './skill.ts';

/**
 * Seed 002's `code_inline` and `code_session`: a JavaScript snippet from the definition, run in a
 * QuickJS sandbox (activities/sandbox/) under the definition's resource limits:
 *
 * - memory: `resource_limits.max_memory_mb` (default 64, at most 1024, at least 4) is the
 *   snippet's heap;
 * - CPU: the evaluation may run for `step timeout × max_cpu_percent / 100` (default 100 %);
 * - the step timeout itself: the thread is stopped just before Temporal's start-to-close timeout.
 *
 * Going over a limit fails the step without retry: `CodeMemoryLimit`, `CodeTimeLimit`; the
 * snippet's own exceptions are `CodeError` with its message. The worker keeps serving: the
 * snippet runs on a thread of its own, which is thrown away after each call.
 */

export const CODE_DEFAULT_MEMORY_MB = 64;
export const CODE_MAX_MEMORY_MB = 1024;
const CODE_MIN_MEMORY_MB = 4;
/** The sandbox stops this long before Temporal's timeout, so the step reports why. */
const TIMEOUT_MARGIN_MS = 500;

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (...params: string[]) => unknown;

/** Compiles (never runs) the snippet as the async function body it becomes, for a registration-time syntax check. */
function syntaxProblem(code: string): string | undefined {
  try {
    new AsyncFunction('args', 'state', code);
    return undefined;
  } catch (error) {
    return error instanceof SyntaxError ? `the code does not parse: ${error.message}` : undefined;
  }
}

const codeField = z
  .string()
  .min(1)
  .max(100_000)
  .superRefine((code, ctx) => {
    const problem = syntaxProblem(code);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** The limits of one call, from the definition's resource limits and the attempt's timeout. */
export function sandboxLimitsFor(resourceLimits: SkillContext['meta']['resourceLimits'], startToCloseMs: number): SandboxLimits {
  const memoryMb = Math.min(CODE_MAX_MEMORY_MB, Math.max(CODE_MIN_MEMORY_MB, resourceLimits?.max_memory_mb ?? CODE_DEFAULT_MEMORY_MB));
  const wallMs = Math.max(1000, startToCloseMs - TIMEOUT_MARGIN_MS);
  const percent = resourceLimits?.max_cpu_percent ?? 100;
  return { memoryMb, cpuBudgetMs: Math.max(1, Math.floor((startToCloseMs * percent) / 100)), wallMs };
}

const FAILURE_TYPE = { memory: 'CodeMemoryLimit', time: 'CodeTimeLimit', error: 'CodeError' } as const;

async function runCode(input: { code: string; args: Record<string, unknown>; state?: Record<string, unknown> }, ctx: SkillContext) {
  const limits = sandboxLimitsFor(ctx.meta.resourceLimits, Context.current().info.startToCloseTimeoutMs);
  try {
    const result = await runInSandbox({ code: input.code, args: input.args, ...(input.state ? { state: input.state } : {}), limits, signal: ctx.signal });
    ctx.logger.info({ cpuMs: result.cpuMs, memoryMb: limits.memoryMb, cpuBudgetMs: limits.cpuBudgetMs }, 'code ran');
    return result;
  } catch (error) {
    if (error instanceof SandboxError && error.kind !== 'cancelled') {
      throw ApplicationFailure.create({
        message: error.message,
        type: FAILURE_TYPE[error.kind],
        nonRetryable: true,
        details: [{ limits, ...(error.jsName ? { name: error.jsName } : {}), logs: error.logs }],
      });
    }
    throw error;
  }
}

const logsField = z.array(z.string());

export const codeInlineSkill = defineSkill({
  name: 'code_inline',
  description:
    'Runs `code`, the body of an async JavaScript function of `args`, in a QuickJS sandbox (no filesystem, network, process or timers; console.log is captured) ' +
    'and returns {result, logs, cpu_ms}: `result` is the return value (JSON). resource_limits.max_memory_mb is its heap (default 64); it may compute for ' +
    'step timeout × max_cpu_percent / 100. Over a limit: CodeMemoryLimit / CodeTimeLimit; a thrown error: CodeError. None is retried.',
  input: z.strictObject({
    code: codeField,
    args: z.record(z.string(), z.unknown()).default({}),
  }),
  output: z.strictObject({ result: z.unknown(), logs: logsField, cpu_ms: z.number() }),
  sideEffects: false,
  defaults: { timeoutSeconds: 30, retry: { maxAttempts: 1 } },
  async handler(input, ctx) {
    const ran = await runCode(input, ctx);
    return { result: ran.value ?? null, logs: ran.logs, cpu_ms: ran.cpuMs };
  },
});

export const codeSessionSkill = defineSkill({
  name: 'code_session',
  description:
    'code_inline with a session: the snippet also gets `state` (an object; pass a previous code_session step\'s `${steps.<id>.output.state}`) and ' +
    'whatever it leaves in `state` is returned as {result, state, logs, cpu_ms}, so later steps of the run continue the session. Same sandbox and limits as code_inline.',
  input: z.strictObject({
    code: codeField,
    args: z.record(z.string(), z.unknown()).default({}),
    state: z.record(z.string(), z.unknown()).default({}),
  }),
  output: z.strictObject({ result: z.unknown(), state: z.record(z.string(), z.unknown()), logs: logsField, cpu_ms: z.number() }),
  sideEffects: false,
  defaults: { timeoutSeconds: 30, retry: { maxAttempts: 1 } },
  async handler(input, ctx) {
    const ran = await runCode(input, ctx);
    return { result: ran.value ?? null, state: ran.state, logs: ran.logs, cpu_ms: ran.cpuMs };
  },
});
