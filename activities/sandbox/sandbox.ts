import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { checkoutPath } from '../../common/paths.ts';

/**
 * Runs a JavaScript snippet in QuickJS (WebAssembly) on a worker thread of its own, so a runaway
 * snippet never blocks the activity worker's event loop (heartbeats, other activities) and can
 * always be killed. Three limits bind, each ending the evaluation with a typed SandboxError:
 *
 * | limit        | enforced by                                                        | error kind |
 * |--------------|--------------------------------------------------------------------|------------|
 * | memoryMb     | the WebAssembly heap's maximum (and QuickJS's `setMemoryLimit`)     | `memory`   |
 * | cpuBudgetMs  | QuickJS's interrupt handler: evaluation time on the thread           | `time`     |
 * | wallMs       | the host terminates the thread (step timeout, cancellation)          | `time`     |
 *
 * The thread itself runs with small V8 heap limits, so a fault in the host-side glue cannot take
 * more than that from the worker process either.
 */

export type SandboxErrorKind = 'memory' | 'time' | 'error' | 'cancelled';

export class SandboxError extends Error {
  override name = 'SandboxError';
  constructor(
    readonly kind: SandboxErrorKind,
    message: string,
    /** The snippet's own error name (`TypeError`, `ReferenceError`, ...), when it threw. */
    readonly jsName?: string,
    readonly logs: string[] = [],
  ) {
    super(message);
  }
}

export interface SandboxLimits {
  /** QuickJS heap for the snippet, in MiB. */
  memoryMb: number;
  /** Evaluation time before the interrupt handler stops it, in ms. */
  cpuBudgetMs: number;
  /** Hard stop for the whole call (thread start included), in ms. */
  wallMs: number;
}

export interface SandboxRun {
  code: string;
  args: unknown;
  /** code_session: the state the snippet reads and mutates as `state`. */
  state?: Record<string, unknown>;
  limits: SandboxLimits;
  signal?: AbortSignal;
}

export interface SandboxResult {
  value: unknown;
  state: Record<string, unknown>;
  logs: string[];
  /** Evaluation time on the sandbox thread, ms. */
  cpuMs: number;
}

/** Largest JSON result (value and state) a snippet may return: it is stored in the run's history. */
export const MAX_OUTPUT_BYTES = 512 * 1024;
export const MAX_LOG_LINES = 100;
const STACK_BYTES = 512 * 1024;

interface ThreadReply {
  ok: boolean;
  json?: string;
  kind?: SandboxErrorKind;
  error?: { name: string; message: string; stack?: string };
  logs: string[];
  logsDropped: number;
  cpuMs: number;
}

const THREAD = pathToFileURL(checkoutPath('activities/sandbox/thread.mjs'));

/** A compiled WebAssembly.Module (the project's TypeScript lib has no WebAssembly types). */
type WasmModule = object;
const { WebAssembly: wasm } = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } };

let compiled: Promise<WasmModule> | undefined;
/** QuickJS's WebAssembly, compiled once per process and handed to each thread (modules clone cheaply). */
function quickJsModule(): Promise<WasmModule> {
  compiled ??= readFile(createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm')).then((bytes) => wasm.compile(bytes));
  return compiled;
}

export async function runInSandbox(run: SandboxRun): Promise<SandboxResult> {
  if (run.signal?.aborted) throw new SandboxError('cancelled', 'cancelled before the code started');
  const wasmModule = await quickJsModule();
  const { limits } = run;
  return new Promise<SandboxResult>((resolve, reject) => {
    const worker = new Worker(THREAD, {
      workerData: {
        code: run.code,
        args: run.args,
        state: run.state ?? {},
        memoryBytes: Math.round(limits.memoryMb * 1024 * 1024),
        cpuBudgetMs: limits.cpuBudgetMs,
        stackBytes: STACK_BYTES,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        maxLogLines: MAX_LOG_LINES,
        wasmModule,
      },
      // The snippet's heap is WebAssembly memory bounded by memoryMb; V8's own heap only holds glue.
      resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
    });
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      outcome();
    };
    const timer = setTimeout(
      () => settle(() => reject(new SandboxError('time', `the code ran past the step's time limit (${Math.round(limits.wallMs)} ms) and was stopped`))),
      limits.wallMs,
    );
    const onAbort = () => settle(() => reject(new SandboxError('cancelled', 'the step was cancelled')));
    run.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (reply: ThreadReply) =>
      settle(() => {
        const logs = reply.logsDropped > 0 ? [...reply.logs, `(${reply.logsDropped} more lines dropped)`] : reply.logs;
        if (reply.ok && reply.json !== undefined) {
          const parsed = JSON.parse(reply.json) as { value: unknown; state: Record<string, unknown> };
          resolve({ value: parsed.value, state: parsed.state, logs, cpuMs: reply.cpuMs });
          return;
        }
        const error = reply.error ?? { name: 'Error', message: 'the code failed' };
        const kind = reply.kind ?? 'error';
        const message =
          kind === 'time'
            ? `the code used its CPU budget of ${limits.cpuBudgetMs} ms and was stopped`
            : kind === 'memory'
              ? `the code went over its memory limit of ${limits.memoryMb} MB and was stopped`
              : `${error.name}: ${error.message}`;
        reject(new SandboxError(kind, message, error.name, logs));
      }),
    );
    worker.on('error', (error: Error & { code?: string }) =>
      settle(() =>
        reject(
          error.code === 'ERR_WORKER_OUT_OF_MEMORY' || /out of memory|memory access out of bounds/i.test(error.message)
            ? new SandboxError('memory', `the sandbox thread ran out of memory: ${error.message}`)
            : new SandboxError('error', `the sandbox failed: ${error.message}`),
        ),
      ),
    );
    worker.on('exit', (code) => settle(() => reject(new SandboxError('error', `the sandbox thread exited (code ${code}) without a result`))));
  });
}
