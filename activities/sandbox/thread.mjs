// @ts-check
/**
 * One sandboxed evaluation, on its own worker thread (activities/sandbox/sandbox.ts starts it).
 * The snippet runs in QuickJS compiled to WebAssembly: the interpreter has no `require`, no
 * `process`, no `fetch`, no file or socket API (quickjs-emscripten exposes none of QuickJS's std/os
 * modules), so the only ways out are the values posted back. Limits, all enforced here:
 * - memory: the WebAssembly heap may grow by at most `memoryBytes` past its 16 MiB start, and
 *   `runtime.setMemoryLimit` refuses any single allocation larger than that ("out of memory");
 * - time: the interrupt handler stops the evaluation once `cpuBudgetMs` of evaluation time passed
 *   (the thread does nothing else, so this is the evaluation's CPU time, or more on a busy machine);
 * - stack: `setMaxStackSize`.
 * Plain JavaScript (not TypeScript) because worker threads do not inherit tsx's loader.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { newQuickJSWASMModuleFromVariant, newVariant } from 'quickjs-emscripten-core';
import baseVariant from '@jitl/quickjs-wasmfile-release-sync';

/** @typedef {{ code: string, args: unknown, state?: unknown, memoryBytes: number, cpuBudgetMs: number, stackBytes: number, maxOutputBytes: number, maxLogLines: number, wasmModule?: WebAssembly.Module }} Job */

const job = /** @type {Job} */ (workerData);
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

const PAGE = 65536;
/** The emscripten build starts with 16 MiB (its stack and static data live there). */
const BASE_PAGES = 256;
// QuickJS's own allocator limit only sees the sizes it asks for, not what the WebAssembly heap
// really takes, so the heap itself is capped: it cannot grow past its start plus the limit, and
// malloc then fails, which QuickJS reports as "out of memory".
const maxPages = BASE_PAGES + Math.ceil(job.memoryBytes / PAGE);
const memory = new WebAssembly.Memory({ initial: BASE_PAGES, maximum: maxPages });
const variant = newVariant(baseVariant, { wasmMemory: memory, ...(job.wasmModule ? { wasmModule: job.wasmModule } : {}) });
const module = await newQuickJSWASMModuleFromVariant(variant);
const runtime = module.newRuntime();
runtime.setMemoryLimit(job.memoryBytes);
runtime.setMaxStackSize(job.stackBytes);
const vm = runtime.newContext();

/** @type {string[]} */
const logs = [];
let logsDropped = 0;
const log = vm.newFunction('log', (...handles) => {
  const line = handles.map((h) => {
    const v = vm.dump(h);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }).join(' ');
  if (logs.length < job.maxLogLines) logs.push(line.slice(0, 2000));
  else logsDropped++;
});
const consoleObject = vm.newObject();
for (const name of ['log', 'info', 'warn', 'error']) vm.setProp(consoleObject, name, log);
vm.setProp(vm.global, 'console', consoleObject);
consoleObject.dispose();
log.dispose();

// Inputs cross as JSON text and are parsed inside, so no host object is ever reachable.
const inputJson = vm.newString(JSON.stringify({ args: job.args ?? {}, state: job.state ?? {} }));
vm.setProp(vm.global, '__input', inputJson);
inputJson.dispose();

let started = 0;
let interrupted = false;
runtime.setInterruptHandler(() => {
  if (performance.now() - started > job.cpuBudgetMs) {
    interrupted = true;
    return true;
  }
  return false;
});

// The snippet is the body of an (async-capable) function of `args` and `state`; its return value
// and the state it leaves, JSON-serialised inside the sandbox, are the result.
const source = `"use strict";
const { args, state } = JSON.parse(globalThis.__input); delete globalThis.__input;
(async function (args, state) {
${job.code}
})(args, state).catch((e) => {
  throw e === null || e === undefined ? new Error("the code threw " + e) : e;
}).then((value) => {
  // state (code_session) goes back as the snippet left it: mutations persist to the next step.
  globalThis.__result = JSON.stringify({ value: value === undefined ? null : value, state });
});`;

/** @param {unknown} error */
function describe(error) {
  if (error && typeof error === 'object') {
    const e = /** @type {{ name?: unknown, message?: unknown, stack?: unknown }} */ (error);
    return { name: String(e.name ?? 'Error'), message: String(e.message ?? ''), stack: typeof e.stack === 'string' ? e.stack.slice(0, 2000) : undefined };
  }
  return { name: 'Error', message: String(error) };
}

/**
 * QuickJS throws "out of memory", or, when even that error cannot be allocated, a bare null; a
 * heap grown to its cap means the same, whatever the snippet made of the error afterwards.
 * @param {unknown} raw
 * @param {{ name: string, message: string }} e
 */
function kindOf(raw, e) {
  if (interrupted) return 'time';
  // malloc's last request can fail a little short of the cap.
  const exhausted = memory.buffer.byteLength - BASE_PAGES * PAGE >= 0.85 * job.memoryBytes;
  if (exhausted || raw === null || raw === undefined || /out of memory/i.test(e.message)) return 'memory';
  return 'error';
}

/** @param {import('quickjs-emscripten-core').QuickJSHandle} handle */
function fail(handle) {
  const raw = vm.dump(handle);
  handle.dispose();
  const e = describe(raw);
  finish({ ok: false, kind: kindOf(raw, e), error: e });
}

function finish(/** @type {Record<string, unknown>} */ message) {
  port.postMessage({ ...message, logs, logsDropped, cpuMs: Math.round(performance.now() - started) });
}

started = performance.now();
const evaluated = vm.evalCode(source, 'code_inline.js');
if (evaluated.error) {
  fail(evaluated.error);
} else {
  const promise = evaluated.value;
  // Runs the snippet's awaited continuations; the interrupt handler bounds them too.
  const jobs = runtime.executePendingJobs(-1);
  const state = vm.getPromiseState(promise);
  promise.dispose();
  if (jobs.error) {
    fail(jobs.error);
  } else if (state.type === 'rejected') {
    fail(state.error);
  } else if (state.type === 'pending') {
    finish({ ok: false, kind: 'error', error: { name: 'CodeError', message: 'the code awaited something that never settles (the sandbox has no timers or I/O)' } });
  } else {
    if (state.type === 'fulfilled' && !state.notAPromise) state.value.dispose();
    const resultHandle = vm.getProp(vm.global, '__result');
    const text = vm.typeof(resultHandle) === 'string' ? vm.getString(resultHandle) : 'null';
    resultHandle.dispose();
    if (text.length > job.maxOutputBytes) {
      finish({ ok: false, kind: 'error', error: { name: 'CodeOutputTooLarge', message: `the result is ${text.length} bytes of JSON; the limit is ${job.maxOutputBytes}` } });
    } else {
      finish({ ok: true, json: text });
    }
  }
}
