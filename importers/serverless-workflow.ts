/**
 * Serverless Workflow 1.0 (the CNCF DSL, now the Open Workflow Specification) → a native definition.
 *
 * A workflow is a list of named tasks (`do`); each task reads its input (the previous task's
 * output, filtered by `input.from`), produces a raw output, filtered by `output.as`, which is the
 * next task's input. The translation keeps that data flow in variables, as the ASL importer does:
 * `_d<k>` is the document flowing through task list k and `_s<k>` the task to run next.
 *
 * - A task list without jumps (no `then:` other than `continue`, no `switch`) becomes its tasks'
 *   steps in order; otherwise a bounded `loop` over a `switch` on `_s<k>`, so every `then:` jump,
 *   backwards too, is exact.
 * - jq runtime expressions are translated to native expressions (importers/jq.ts), checked at
 *   registration and evaluated deterministically inside the workflow.
 * - Errors are the spec's problem details, carried natively: a `raise` (or an HTTP call answering
 *   4xx/5xx) is a `fail` step with the problem's type, status, title, detail and instance;
 *   `try`/`catch` matches the caught `error` (types compared by their last segment, since the spec
 *   spells them three ways), `catch.as` binds its problem, and no match raises it again as it was.
 *
 * Pure: no I/O.
 */
import { dispatchLoop, END, endsInFail, guarded, isObj, Refusal, seg, slugName, TranslatorBase, type ImportOptionsBase, type ImportResult, type Obj, type Step } from './common.ts';
import { JqUnsupported, translateJq } from './jq.ts';

export interface ServerlessWorkflowImportOptions extends ImportOptionsBase {
  /** Base URL overrides for `call: http` endpoints: `{"https://petstore.swagger.io": "http://mirror:8080"}`. */
  baseUrls?: Record<string, string>;
  /** OpenAPI 3 or Swagger 2.0 documents by their URL, for `call: openapi` (the importer fetches nothing). */
  openapi?: Record<string, unknown>;
}
const TASK_FIELDS = ['if', 'input', 'output', 'export', 'then', 'metadata'];
const ERRORS_BASE = 'https://serverlessworkflow.io/spec/1.0.0/errors';

interface Machine {
  k: number;
  /** Variables a jq `$name` may read here (for-loop items, catch bindings). */
  vars: ReadonlyMap<string, string>;
  /** The top-level task list: `then: end` ends the workflow only there. */
  top: boolean;
}

/** The text inside `${ ... }`, or undefined when the value is not a runtime expression. */
function runtimeExpression(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*\$\{([\s\S]*)\}\s*$/.exec(value);
  return m ? (m[1] as string) : undefined;
}

/** A field that holds jq either way (`when`, `in`, `from`, `as`): with or without `${ }`. */
function jqText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return runtimeExpression(value) ?? value;
}

function taskEntry(entry: unknown, at: string): [string, Obj] {
  if (!isObj(entry) || Object.keys(entry).length !== 1) throw new Refusal(at, 'task', 'each item of a task list is an object with one key, the task name');
  const [name, task] = Object.entries(entry)[0] as [string, unknown];
  if (!isObj(task)) throw new Refusal(`${at}/${seg(name)}`, 'task', 'a task is an object');
  return [name, task];
}

/** The last path segment of an error type: the spec spells its standard types in three ways. */
function errorKind(type: string): string {
  return type.replace(/\/+$/, '').split('/').pop() ?? type;
}

class Translator extends TranslatorBase<unknown> {
  private machines = 0;

  constructor(private readonly options: ServerlessWorkflowImportOptions) {
    super();
    for (const [name, initial] of [['_null', null], ['_ctx', {}], ['_ran', []]] as const) this.v(name, initial);
  }

  machine(parent: Machine | undefined, extraVars: Array<[string, string]> = [], top = false): Machine {
    return { k: this.machines++, vars: new Map([...(parent?.vars ?? []), ...extraVars]), top };
  }

  /** jq over `dot`, with $input (the task's input), $context, $workflow and the machine's variables. */
  jq(source: string, dot: string, m: Machine, at: string, extra: Record<string, string> = {}): string {
    try {
      return translateJq(source, {
        dot,
        variable: (name) => {
          if (name in extra) return extra[name];
          if (name === 'input') return this.v(`_in${m.k}`);
          if (name === 'context') return '_ctx';
          if (name === 'workflow') return 'put({}, "input", input)';
          return m.vars.get(name);
        },
      });
    } catch (error) {
      if (error instanceof JqUnsupported) throw new Refusal(at, 'jq expression', `${error.message} is not supported in jq expressions (${JSON.stringify(source)})`);
      throw error;
    }
  }

  t(expr: string): string {
    return `\${${expr}}`;
  }

  /** A value whose strings may be runtime expressions (`set`, `with`, `emit` data). */
  value(value: unknown, dot: string, m: Machine, at: string): unknown {
    const expr = runtimeExpression(value);
    if (expr !== undefined) return this.t(this.jq(expr, dot, m, at));
    if (typeof value === 'string' && value.includes('${')) throw new Refusal(at, 'literal', 'text holding "${" that is not one whole runtime expression');
    if (Array.isArray(value)) return value.map((x, i) => this.value(x, dot, m, `${at}/${i}`));
    if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, this.value(x, dot, m, `${at}/${seg(k)}`)]));
    return value;
  }

  /** Where a `then:` leads: a task of the same list, the next task, or the end of the list. */
  flow(directive: unknown, next: string, names: ReadonlySet<string>, m: Machine, at: string): string {
    if (directive === undefined || directive === 'continue') return next;
    if (directive === 'exit') return END;
    if (directive === 'end') {
      if (!m.top) throw new Refusal(at, 'then: end', '"then: end" inside a nested task list (ending the whole workflow from there) is not mapped yet; "exit" is');
      return END;
    }
    if (typeof directive === 'string' && names.has(directive)) return directive;
    throw new Refusal(at, 'then', `${JSON.stringify(directive)} is not a task of the same list, nor continue, exit or end`);
  }

  /** A task list (`do`) as native steps; `init` receives `_s<k>` when the list needs the loop. */
  list(tasks: unknown, m: Machine, at: string, init: Obj): Step[] {
    if (!Array.isArray(tasks) || tasks.length === 0) throw new Refusal(at, 'do', 'a task list is a non-empty list');
    const entries = tasks.map((entry, i) => taskEntry(entry, `${at}/${i}`));
    const names = new Set(entries.map(([name]) => name));
    if (names.size !== entries.length) throw new Refusal(at, 'do', 'task names repeat in one list');
    const linear = entries.every(([, task]) => (task.then === undefined || task.then === 'continue') && task.switch === undefined);
    this.v(`_d${m.k}`);
    const translated = entries.map(([name, task], i) => {
      const next = i + 1 < entries.length ? (entries[i + 1] as [string, Obj])[0] : END;
      return { name, steps: guarded(this.refused, () => this.task(name, task, m, `${at}/${i}/${seg(name)}`, linear ? undefined : this.flow(task.then, next, names, m, `${at}/${i}/${seg(name)}/then`), names, next)) };
    });
    if (linear) return translated.flatMap((t) => t.steps);
    init[this.v(`_s${m.k}`, END)] = (entries[0] as [string, Obj])[0];
    const cases = translated.map((t) => ({ equals: t.name, steps: t.steps.length > 0 ? t.steps : [{ id: this.id(`${t.name}-refused`), type: 'set', values: { [`_s${m.k}`]: END } }] }));
    return [dispatchLoop(this.ids, m.k, 'Task list', cases, this.options.maxTransitions)];
  }

  /**
   * One task. `next` is the task list's next state (non-linear lists only): every path through the
   * task ends by setting `_s<k>`.
   */
  task(name: string, task: Obj, m: Machine, at: string, next: string | undefined, names: ReadonlySet<string>, following: string): Step[] {
    const k = m.k;
    // `for` and `try` tasks carry a `do` (and `catch`) of their own: the kind is the first that matches.
    const kind = ['for', 'try', 'set', 'do', 'fork', 'switch', 'raise', 'wait', 'call', 'emit', 'listen', 'run'].find((kind) => kind in task);
    if (kind === undefined) throw new Refusal(at, 'task', 'a task has a kind: set, do, for, fork, switch, raise, try, wait, call, ...');
    const allowed: Record<string, string[]> = { set: ['set'], do: ['do'], for: ['for', 'do', 'while'], fork: ['fork'], switch: ['switch'], raise: ['raise'], try: ['try', 'catch'], wait: ['wait'], call: ['call', 'with'], listen: ['listen'], run: ['run'] };
    if (!(kind in allowed)) throw new Refusal(`${at}/${kind}`, kind, `the ${kind} task is not mapped yet`);
    for (const key of Object.keys(task)) {
      if (!TASK_FIELDS.includes(key) && !allowed[kind]?.includes(key)) throw new Refusal(`${at}/${seg(key)}`, `${kind}.${key}`, `the field ${key} is not mapped for a ${kind} task`);
    }
    const _in = this.v(`_in${k}`);
    const _r = this.v(`_r${k}`);
    const _d = `_d${k}`;
    const input = isObj(task.input) ? task.input : undefined;
    if (task.input !== undefined && (!input || Object.keys(input).some((key) => key !== 'from'))) throw new Refusal(`${at}/input`, 'input', 'only input.from is mapped');
    const from = input?.from === undefined ? undefined : jqText(input.from);
    if (input?.from !== undefined && from === undefined) throw new Refusal(`${at}/input/from`, 'input.from', 'input.from as an object is not mapped yet; use a jq expression');
    // `_ran` lists the tasks in the order they ran (the last 1000), as a Step Functions history lists the states entered.
    const prep: Obj = { [_in]: from === undefined ? this.t(_d) : this.t(this.jq(from, _d, m, `${at}/input/from`)), _ran: this.t(`slice(concat(_ran, [${JSON.stringify(name)}]), -1000)`) };
    let guard: string | undefined;
    if (task.if !== undefined) {
      const cond = jqText(task.if);
      if (cond === undefined) throw new Refusal(`${at}/if`, 'if', 'if is a jq expression');
      guard = this.v(`_ok${k}`, false);
      prep[guard] = this.t(`${this.jq(cond, _in, m, `${at}/if`)} ? true : false`);
    }
    const body: Step[] = [];
    let result: string | undefined; // an expression for the raw output, when no step computes `_r`
    switch (kind) {
      case 'set': {
        const set = task.set;
        const expr = runtimeExpression(set);
        if (expr !== undefined) result = this.jq(expr, _in, m, `${at}/set`);
        else if (isObj(set)) prep[_r] = this.value(set, _in, m, `${at}/set`);
        else throw new Refusal(`${at}/set`, 'set', 'set is an object or a runtime expression');
        break;
      }
      case 'do': {
        const inner = this.machine(m);
        prep[this.v(`_d${inner.k}`)] = this.t(_in);
        body.push(...this.list(task.do, inner, `${at}/do`, prep));
        result = `_d${inner.k}`;
        break;
      }
      case 'for': {
        const spec = task.for;
        if (!isObj(spec)) throw new Refusal(`${at}/for`, 'for', 'for is an object with each, in and at');
        if (task.while !== undefined) throw new Refusal(`${at}/while`, 'for.while', 'a for loop with while is not mapped yet');
        const each = typeof spec.each === 'string' ? spec.each : 'item';
        const index = typeof spec.at === 'string' ? spec.at : 'index';
        if (![each, index].every((n) => /^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(n))) throw new Refusal(`${at}/for`, 'for', 'loop variable names are letters, digits and "_"');
        const items = this.v(`_items${k}`);
        const source = Array.isArray(spec.in) ? undefined : jqText(spec.in);
        prep[items] = Array.isArray(spec.in) ? this.value(spec.in, _in, m, `${at}/for/in`) : source !== undefined ? this.t(this.jq(source, _in, m, `${at}/for/in`)) : undefined;
        if (prep[items] === undefined) throw new Refusal(`${at}/for/in`, 'for.in', 'for.in is a jq expression or a list');
        const inner = this.machine(m, [[each, this.v(`v_${each}`)], [index, this.v(`v_${index}`)]]);
        prep[this.v(`_d${inner.k}`)] = this.t(_in);
        const first: Obj = { [`v_${each}`]: this.t('item'), [`v_${index}`]: this.t('index') };
        const steps = this.list(task.do, inner, `${at}/do`, first);
        body.push({ id: this.id(`${name}-each`), type: 'for_each', items: this.t(items), max_concurrency: 1, steps: [{ id: this.id(`${name}-item`), type: 'set', values: first }, ...steps] });
        // Each iteration's input is the previous one's output; the task's output is the last one's.
        result = `_d${inner.k}`;
        break;
      }
      case 'fork': {
        const fork = task.fork;
        if (!isObj(fork) || !Array.isArray(fork.branches) || fork.branches.length === 0) throw new Refusal(`${at}/fork`, 'fork', 'fork has a non-empty branches list');
        const branchIds: string[] = [];
        const branchDocs: string[] = [];
        const steps = fork.branches.map((entry: unknown, i: number) => {
          const inner = this.machine(m);
          prep[this.v(`_d${inner.k}`)] = this.t(_in);
          branchDocs.push(`_d${inner.k}`);
          const list = this.list([entry], inner, `${at}/fork/branches`, prep);
          const branch: Step = list.length === 1 ? (list[0] as Step) : { id: this.id(`${name}-branch-${i + 1}`), type: 'block', steps: list };
          branchIds.push(branch.id as string);
          return branch;
        });
        const parallel: Step = { id: this.id(`${name}-branches`), type: 'parallel', wait_for: fork.compete === true ? 'any' : 'all', steps };
        body.push(parallel);
        if (fork.compete === true) {
          // The one branch that won is the only key of the parallel step's output.
          const winner = `first(keys(steps[${JSON.stringify(parallel.id)}].output))`;
          result = branchIds.reduceRight((rest, bid, i) => `${winner} == ${JSON.stringify(bid)} ? ${branchDocs[i]} : ${rest}`, '_null');
        } else {
          result = `[${branchDocs.join(', ')}]`;
        }
        break;
      }
      case 'switch': {
        if (!Array.isArray(task.switch) || task.switch.length === 0) throw new Refusal(`${at}/switch`, 'switch', 'switch is a non-empty list of cases');
        const matched = this.v(`_m${k}`);
        const cases = task.switch.map((entry: unknown, i: number) => taskEntry(entry, `${at}/switch/${i}`));
        const picks: string[] = [];
        const targets = cases.map(([caseName, spec], i) => {
          const where = `${at}/switch/${i}/${seg(caseName)}`;
          if (Object.keys(spec).some((key) => key !== 'when' && key !== 'then')) throw new Refusal(where, 'switch case', 'a case has when and then');
          const when = spec.when === undefined ? 'true' : this.jq(jqText(spec.when) ?? '', _in, m, `${where}/when`);
          picks.push(when);
          return this.flow(spec.then, following, names, m, `${where}/then`);
        });
        prep[matched] = this.t(picks.reduceRight((rest, cond, i) => `(${cond}) ? ${i} : ${rest}`, '-1'));
        // The switch passes its input on; no case matching goes on as the task's own then says.
        result = _in;
        const fallback = next ?? END;
        body.push({
          id: this.id(`${name}-case`),
          type: 'switch',
          value: matched,
          cases: targets.map((target, i) => ({ equals: i, steps: [{ id: this.id(`${name}-case-${i}`), type: 'set', values: { [this.v(`_t${k}`)]: target } }] })),
          default: [{ id: this.id(`${name}-no-case`), type: 'set', values: { [`_t${k}`]: fallback } }],
        });
        next = `\${_t${k}}`;
        break;
      }
      case 'raise': {
        const raise = task.raise;
        if (!isObj(raise) || !isObj(raise.error)) throw new Refusal(`${at}/raise`, 'raise', 'raise.error inline is mapped (references to use.errors are not yet)');
        const error = raise.error;
        for (const key of Object.keys(error)) if (!['type', 'status', 'title', 'detail', 'instance'].includes(key)) throw new Refusal(`${at}/raise/error/${seg(key)}`, 'raise', `the error field ${key} is not mapped`);
        if (typeof error.type !== 'string') throw new Refusal(`${at}/raise/error/type`, 'raise', 'an error has a type');
        const problem = this.value({ ...error, instance: error.instance ?? at }, _in, m, `${at}/raise/error`) as Obj;
        body.push(...this.raise(name, problem));
        return this.wrap(prep, body, guard, undefined, next, name, m);
      }
      case 'try': {
        if (!Array.isArray(task.try)) throw new Refusal(`${at}/try`, 'try', 'try is a task list');
        const catcher = task.catch;
        if (!isObj(catcher)) throw new Refusal(`${at}/catch`, 'catch', 'a try has a catch');
        for (const key of Object.keys(catcher)) if (!['errors', 'as', 'do', 'when', 'exceptWhen'].includes(key)) throw new Refusal(`${at}/catch/${seg(key)}`, `catch.${key}`, `catch.${key} is not mapped yet`);
        const inner = this.machine(m);
        prep[this.v(`_d${inner.k}`)] = this.t(_in);
        const tried = this.list(task.try, inner, `${at}/try`, prep);
        const block: Step = tried.length === 1 && tried[0]?.type !== 'set' ? (tried[0] as Step) : { id: this.id(`${name}-try`), type: 'block', description: `try block of "${name}"`, steps: tried };
        const as = typeof catcher.as === 'string' ? catcher.as : 'error';
        const bound = this.v(`v_${as}`);
        // What was caught: the problem of a raise or an HTTP call (a structured error: it has a
        // status), else the spec's runtime error built from the native one.
        const problem = ['type', 'status', 'title', 'detail', 'instance'].reduce((acc, f) => `put(${acc}, "${f}", error.${f})`, '{}');
        const runtime = `put(put(put(put({}, "type", ${JSON.stringify(`${ERRORS_BASE}/runtime`)}), "title", error.message), "detail", error.type), "instance", error.instance)`;
        const caught = `typeOf(error.status) == "number" ? ${problem} : ${runtime}`;
        const withFilter = isObj(catcher.errors) && isObj(catcher.errors.with) ? catcher.errors.with : {};
        const tests: string[] = [];
        for (const [field, expected] of Object.entries(withFilter)) {
          if (field === 'type' && typeof expected === 'string') tests.push(`endsWith(${bound}.type, "/${errorKind(expected)}")`);
          else if (field === 'status' && typeof expected === 'number') tests.push(`${bound}.status == ${expected}`);
          else if (typeof expected === 'string' && (field === 'title' || field === 'detail' || field === 'instance')) tests.push(`${bound}.${field} == ${JSON.stringify(expected)}`);
          else throw new Refusal(`${at}/catch/errors/with/${seg(field)}`, 'catch.errors.with', `matching on ${field} is not mapped`);
        }
        const catchScope = this.machine(m, [[as, bound]]);
        if (catcher.when !== undefined) tests.push(this.jq(jqText(catcher.when) ?? '', _in, catchScope, `${at}/catch/when`));
        if (catcher.exceptWhen !== undefined) tests.push(`!(${this.jq(jqText(catcher.exceptWhen) ?? '', _in, catchScope, `${at}/catch/exceptWhen`)})`);
        const handled: Step[] = [];
        if (catcher.do !== undefined) {
          const init: Obj = { [this.v(`_d${catchScope.k}`)]: this.t(_in) };
          const steps = this.list(catcher.do, catchScope, `${at}/catch/do`, init);
          handled.push({ id: this.id(`${name}-catch-in`), type: 'set', values: init }, ...steps, { id: this.id(`${name}-catch-out`), type: 'set', values: { [`_d${inner.k}`]: this.t(`_d${catchScope.k}`) } });
        } else {
          handled.push({ id: this.id(`${name}-caught`), type: 'set', values: { [`_d${inner.k}`]: this.t(_in) } });
        }
        this.perStep[block.id as string] = {
          strategy: 'custom',
          handler: [
            { id: this.id(`${name}-bind`), type: 'set', values: { [bound]: this.t(caught) } },
            {
              id: this.id(`${name}-match`),
              type: 'conditional',
              condition: tests.length === 0 ? 'true' : tests.join(' && '),
              then: handled,
              else: [{ id: this.id(`${name}-rethrow`), type: 'fail', raise: this.t('error') }],
            },
          ],
        };
        body.push(block);
        result = `_d${inner.k}`;
        this.mapped.push({ path: `${at}/catch`, construct: 'try/catch', detail: `a custom error handler on step "${block.id as string}"` });
        break;
      }
      case 'wait': {
        const wait = task.wait;
        let duration: unknown;
        if (typeof wait === 'string') duration = runtimeExpression(wait) !== undefined ? this.value(wait, _in, m, `${at}/wait`) : `\${${JSON.stringify(wait)}}`;
        else if (isObj(wait)) {
          const units: Record<string, number> = { days: 86_400, hours: 3600, minutes: 60, seconds: 1, milliseconds: 0.001 };
          let seconds = 0;
          for (const [unit, amount] of Object.entries(wait)) {
            if (!(unit in units) || typeof amount !== 'number') throw new Refusal(`${at}/wait/${seg(unit)}`, 'wait', 'a duration has days, hours, minutes, seconds, milliseconds');
            seconds += amount * (units[unit] as number);
          }
          duration = seconds;
        }
        if (duration === undefined) throw new Refusal(`${at}/wait`, 'wait', 'wait is an ISO 8601 duration or {seconds, minutes, ...}');
        if (typeof duration === 'number' && duration > 0) body.push({ id: this.id(`${name}-wait`), type: 'wait', duration, ...(guard ? { if: guard } : {}) });
        else if (typeof duration === 'string') body.push({ id: this.id(`${name}-wait`), type: 'wait', duration, ...(guard ? { if: guard } : {}) });
        result = _in;
        break;
      }
      case 'call':
        body.push(...this.httpCall(name, task, m, at, prep, guard));
        result = undefined;
        break;
      case 'listen': {
        const step = this.listen(name, task.listen, _in, m, `${at}/listen`);
        if (guard) step.if = guard;
        body.push(step);
        // A listen task's output is the list of the events it consumed: here one, read as its data (or its envelope).
        const read = isObj(task.listen) ? task.listen.read : undefined;
        result = read === 'envelope' ? `[steps[${JSON.stringify(step.id)}].output]` : `[get(steps[${JSON.stringify(step.id)}].output, "data")]`;
        break;
      }
      case 'run': {
        const step = this.runWorkflow(name, task.run, _in, m, `${at}/run`);
        if (guard) step.if = guard;
        body.push(step);
        result = `steps[${JSON.stringify(step.id)}].output`;
        break;
      }
    }
    return this.wrap(prep, body, guard, result, next, name, m, task, at);
  }

  /**
   * `listen` for one event onto a `wait_for_event` step: the event's `type` is the signal name
   * (what `POST /v1/events` signals a correlated run with, the payload being the whole event), the
   * other attributes and the `data` expression its filter.
   */
  listen(name: string, listen: unknown, dot: string, m: Machine, at: string): Step {
    if (!isObj(listen)) throw new Refusal(at, 'listen', 'listen has to');
    for (const key of Object.keys(listen)) {
      if (key !== 'to' && key !== 'read') throw new Refusal(`${at}/${seg(key)}`, `listen.${key}`, key === 'foreach' ? 'listen.foreach (a stream of events) is not mapped: a wait_for_event step takes one event' : `listen.${key} is not mapped`);
    }
    if (listen.read !== undefined && listen.read !== 'data' && listen.read !== 'envelope') throw new Refusal(`${at}/read`, 'listen.read', `read: ${String(listen.read)} is not mapped (data and envelope are)`);
    const to = listen.to;
    if (!isObj(to)) throw new Refusal(`${at}/to`, 'listen', 'listen.to says which events');
    for (const key of Object.keys(to)) {
      if (key !== 'one') throw new Refusal(`${at}/to/${seg(key)}`, `listen.to.${key}`, `listen.to.${key} is not mapped: a wait_for_event step waits for one event (listen.to.one)`);
    }
    const one = to.one;
    if (!isObj(one) || !isObj(one.with)) throw new Refusal(`${at}/to/one`, 'listen.to.one', 'listen.to.one has with, the event filter');
    for (const key of Object.keys(one)) if (key !== 'with') throw new Refusal(`${at}/to/one/${seg(key)}`, `listen.to.one.${key}`, `${key} is not mapped (correlation: start the run with X-Correlation-Id and send the event with that correlationId)`);
    const filter = one.with;
    const where = `${at}/to/one/with`;
    if (typeof filter.type !== 'string' || !/^[A-Za-z0-9._:/-]{1,200}$/.test(filter.type)) {
      throw new Refusal(`${where}/type`, 'listen', 'the event type is a literal of 1-200 letters, digits, ".", "_", ":", "/", "-" (it is the native event name)');
    }
    const tests: string[] = [];
    for (const [attr, expected] of Object.entries(filter)) {
      if (attr === 'type') continue;
      if (attr === 'data') {
        const expr = runtimeExpression(expected);
        if (expr === undefined) throw new Refusal(`${where}/data`, 'listen data filter', 'a data filter is a runtime expression (an object to match is not mapped)');
        tests.push(`(${this.jq(expr, 'get(event, "data")', m, `${where}/data`, { input: dot })})`);
      } else if (['source', 'subject', 'id', 'datacontenttype', 'dataschema', 'specversion'].includes(attr) && typeof expected === 'string' && runtimeExpression(expected) === undefined) {
        tests.push(`get(event, ${JSON.stringify(attr)}) == ${JSON.stringify(expected)}`);
      } else {
        throw new Refusal(`${where}/${seg(attr)}`, 'listen filter', `matching the attribute ${attr} ${typeof expected === 'string' ? 'with an expression ' : ''}is not mapped (literal source, subject, id, datacontenttype, dataschema, specversion and a data expression are)`);
      }
    }
    this.mapped.push({ path: at, construct: 'listen', detail: `a wait_for_event step for "${filter.type}"` });
    return { id: this.id(`${name}-listen`), type: 'wait_for_event', event: filter.type, ...(tests.length > 0 ? { filter: tests.join(' && ') } : {}) };
  }

  /** `run: workflow` onto a `sub_workflow` step: the child is the registered definition of that name and version. */
  runWorkflow(name: string, run: unknown, dot: string, m: Machine, at: string): Step {
    if (!isObj(run)) throw new Refusal(at, 'run', 'run names what to run');
    const process = ['workflow', 'container', 'shell', 'script'].find((p) => p in run);
    if (process !== 'workflow') throw new Refusal(process ? `${at}/${process}` : at, `run: ${process ?? '?'}`, `run: ${process ?? 'without a process'} is not mapped (run: workflow is): the platform runs no containers, shells or scripts from a definition`);
    for (const key of Object.keys(run)) {
      if (key === 'workflow') continue;
      if (key === 'await' && run.await === true) continue;
      throw new Refusal(`${at}/${seg(key)}`, `run.${key}`, key === 'await' ? 'await: false (start the child and go on) is not mapped: a sub_workflow step waits for its child' : `run.${key} is not mapped`);
    }
    const wf = run.workflow as unknown;
    if (!isObj(wf)) throw new Refusal(`${at}/workflow`, 'run: workflow', 'run.workflow has name and version');
    for (const key of Object.keys(wf)) if (!['namespace', 'name', 'version', 'input'].includes(key)) throw new Refusal(`${at}/workflow/${seg(key)}`, `run.workflow.${key}`, `run.workflow.${key} is not mapped`);
    if (typeof wf.name !== 'string' || typeof wf.version !== 'string') throw new Refusal(`${at}/workflow`, 'run: workflow', 'run.workflow has a name and a version');
    const definition = slugName(wf.name, '');
    if (definition === '' || definition !== wf.name) throw new Refusal(`${at}/workflow/name`, 'run: workflow', `${JSON.stringify(wf.name)} is not a native definition name (lower case letters, digits, ".", "_", "-"): import the child under a name the parent can use`);
    if (!/^\d+\.\d+\.\d+$/.test(wf.version)) throw new Refusal(`${at}/workflow/version`, 'run: workflow', 'the version is an exact semantic version (the child is pinned to it)');
    this.mapped.push({ path: `${at}/workflow`, construct: 'run: workflow', detail: `a sub_workflow step running the registered definition ${wf.name}@${wf.version}${typeof wf.namespace === 'string' ? ` (the namespace ${wf.namespace} is the tenant's)` : ''}` });
    const step: Step = { id: this.id(`${name}-run`), type: 'sub_workflow', definition: wf.name, version: wf.version };
    if (wf.input !== undefined) step.inputs = this.value(wf.input, dot, m, `${at}/workflow/input`);
    return step;
  }

  /** A `fail` step raising the problem as a structured error: its type, status, title, detail and instance. */
  raise(name: string, problem: Obj, condition?: string): Step[] {
    const step: Step = { id: this.id(`${name}-raise`), type: 'fail', ...(condition ? { if: condition } : {}) };
    const type = problem.type;
    step.error_type = typeof type === 'string' && (type.startsWith('${') || /^[A-Za-z][A-Za-z0-9_.:/#-]{0,199}$/.test(type)) ? type : this.t(JSON.stringify(type));
    for (const field of ['status', 'title', 'detail', 'instance'] as const) {
      const value = problem[field];
      if (value === undefined || value === null) continue;
      step[field] = field === 'status' || typeof value === 'string' ? value : String(value);
    }
    if (step.title === undefined) step.error = typeof type === 'string' && type.startsWith('${') ? type : String(type);
    return [step];
  }

  /** `call: http` on the http-fetch skill: every status answered, 4xx/5xx raised as communication errors. */
  httpCall(name: string, task: Obj, m: Machine, at: string, prep: Obj, guard: string | undefined): Step[] {
    const k = m.k;
    if (task.call === 'openapi') return this.openapiCall(name, task, m, at, prep, guard);
    if (task.call !== 'http') throw new Refusal(`${at}/call`, `call: ${String(task.call)}`, `call: ${String(task.call)} is not mapped yet (call: http and openapi are)`);
    const w = task.with;
    if (!isObj(w)) throw new Refusal(`${at}/with`, 'call: http', 'with holds method and endpoint');
    for (const key of Object.keys(w)) if (!['method', 'endpoint', 'headers', 'body', 'output'].includes(key)) throw new Refusal(`${at}/with/${seg(key)}`, `call: http ${key}`, `with.${key} is not mapped yet`);
    const endpoint = isObj(w.endpoint) ? w.endpoint : { uri: w.endpoint };
    for (const key of Object.keys(endpoint)) if (key !== 'uri' && key !== 'authentication') throw new Refusal(`${at}/with/endpoint/${seg(key)}`, `endpoint.${key}`, `endpoint.${key} is not mapped`);
    const authorization = endpoint.authentication === undefined ? undefined : this.authorization(endpoint.authentication, `_in${k}`, m, `${at}/with/endpoint/authentication`);
    if (typeof endpoint.uri !== 'string') throw new Refusal(`${at}/with/endpoint`, 'endpoint', 'an endpoint is a URI');
    const method = typeof w.method === 'string' ? w.method.toUpperCase() : 'GET';
    const uri = this.rebased(endpoint.uri);
    const _in = `_in${k}`;
    // RFC 6570 simple expansion from the task input's fields: {petId} → its value.
    const expanded = runtimeExpression(uri) !== undefined ? (this.value(uri, _in, m, `${at}/with/endpoint/uri`) as string) : uri.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, field: string) => `\${${_in}["${field}"]|string}`);
    if (runtimeExpression(uri) === undefined && uri.replace(/\{[A-Za-z_][A-Za-z0-9_]*\}/g, '').includes('{')) throw new Refusal(`${at}/with/endpoint/uri`, 'endpoint', 'only {name} templates are mapped in endpoints');
    const headers = w.headers !== undefined || authorization !== undefined ? this.headers(w.headers, authorization, _in, m, `${at}/with/headers`) : undefined;
    const body = w.body !== undefined ? this.value(w.body, _in, m, `${at}/with/body`) : undefined;
    return this.fetchSteps(name, m, at, prep, guard, { method, url: expanded, headers, body, output: w.output });
  }

  /** A URI with the `baseUrls` override its start matches. */
  rebased(uri: string): string {
    for (const [from, to] of Object.entries(this.options.baseUrls ?? {})) if (uri.startsWith(from)) return to + uri.slice(from.length);
    return uri;
  }

  /**
   * `call: openapi`: the operation `operationId` names is looked up, at import time, in the
   * document the caller passed under `openapi` (by its endpoint URL); its method, server and path
   * make a `call: http`. Parameters go where the operation declares them: path, query, header,
   * or the body (Swagger 2.0 `in: body`).
   */
  openapiCall(name: string, task: Obj, m: Machine, at: string, prep: Obj, guard: string | undefined): Step[] {
    const w = task.with;
    if (!isObj(w)) throw new Refusal(`${at}/with`, 'call: openapi', 'with holds document and operationId');
    for (const key of Object.keys(w)) if (!['document', 'operationId', 'parameters', 'output', 'authentication'].includes(key)) throw new Refusal(`${at}/with/${seg(key)}`, `call: openapi ${key}`, `with.${key} is not mapped yet`);
    const endpoint = isObj(w.document) ? (isObj(w.document.endpoint) ? w.document.endpoint.uri : w.document.endpoint) : undefined;
    if (typeof endpoint !== 'string') throw new Refusal(`${at}/with/document`, 'call: openapi', 'document.endpoint is the URL of the OpenAPI document');
    const doc = this.options.openapi?.[endpoint];
    if (!isObj(doc)) throw new Refusal(`${at}/with/document`, 'call: openapi', `the OpenAPI document ${endpoint} was not given: pass it under "openapi" with its URL as the key (the importer fetches nothing)`);
    if (typeof w.operationId !== 'string') throw new Refusal(`${at}/with/operationId`, 'call: openapi', 'operationId names the operation');
    let found: { path: string; method: string; op: Obj; shared: unknown[] } | undefined;
    for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
      if (!isObj(item)) continue;
      for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head']) {
        const op = item[method];
        if (isObj(op) && op.operationId === w.operationId) found = { path, method, op, shared: Array.isArray(item.parameters) ? item.parameters : [] };
      }
    }
    if (!found) throw new Refusal(`${at}/with/operationId`, 'call: openapi', `the document ${endpoint} has no operation ${JSON.stringify(w.operationId)}`);
    let base: string;
    if (typeof doc.swagger === 'string') {
      const scheme = Array.isArray(doc.schemes) && typeof doc.schemes[0] === 'string' ? doc.schemes.includes('https') ? 'https' : doc.schemes[0] : new URL(endpoint).protocol.slice(0, -1);
      base = `${scheme}://${typeof doc.host === 'string' ? doc.host : new URL(endpoint).host}${typeof doc.basePath === 'string' ? doc.basePath.replace(/\/$/, '') : ''}`;
    } else {
      const server = Array.isArray(doc.servers) && isObj(doc.servers[0]) && typeof doc.servers[0].url === 'string' ? doc.servers[0].url : '/';
      if (server.includes('{')) throw new Refusal(`${at}/with/document`, 'call: openapi', 'server URL variables are not mapped');
      base = new URL(server, endpoint).href.replace(/\/$/, '');
    }
    const declared = new Map<string, string>();
    for (const p of [...found.shared, ...(Array.isArray(found.op.parameters) ? found.op.parameters : [])]) if (isObj(p) && typeof p.name === 'string' && typeof p.in === 'string') declared.set(p.name, p.in);
    if (found.op.requestBody !== undefined) throw new Refusal(`${at}/with/operationId`, 'call: openapi', 'operations with an OpenAPI 3 requestBody are not mapped yet');
    const _in = `_in${m.k}`;
    const given = isObj(w.parameters) ? w.parameters : {};
    if (w.parameters !== undefined && !isObj(w.parameters)) throw new Refusal(`${at}/with/parameters`, 'call: openapi', 'parameters is an object');
    // A parameter's value as URL text: a literal percent-encoded now, an expression's text at run time.
    const inUrl = (value: unknown): string => {
      if (typeof value === 'string' && value.startsWith('${')) return `\${${value.slice(2, -1)}|string}`;
      return encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value));
    };
    let path = found.path;
    const query: string[] = [];
    const headers: Obj = {};
    let body: unknown;
    for (const [param, raw] of Object.entries(given)) {
      const where = declared.get(param);
      const value = this.value(raw, _in, m, `${at}/with/parameters/${seg(param)}`);
      if (where === 'path') path = path.split(`{${param}}`).join(inUrl(value));
      else if (where === 'query') query.push(`${encodeURIComponent(param)}=${inUrl(value)}`);
      else if (where === 'header') headers[param] = value;
      else if (where === 'body') body = value;
      else throw new Refusal(`${at}/with/parameters/${seg(param)}`, 'call: openapi', `the operation ${w.operationId} declares no parameter ${param}${where ? ` (in: ${where} is not mapped)` : ''}`);
    }
    const missing = [...found.path.matchAll(/\{([^}]*)\}/g)].map((x) => x[1] as string).filter((p) => !(p in given));
    if (missing.length > 0) throw new Refusal(`${at}/with/parameters`, 'call: openapi', `the path ${found.path} needs ${missing.join(', ')}, not given`);
    const authorization = w.authentication === undefined ? undefined : this.authorization(w.authentication, _in, m, `${at}/with/authentication`);
    if (authorization !== undefined) headers.Authorization = authorization;
    const url = this.rebased(`${base}${path}`) + (query.length > 0 ? `?${query.join('&')}` : '');
    this.mapped.push({ path: `${at}/with/operationId`, construct: 'call: openapi', detail: `${w.operationId} is ${found.method.toUpperCase()} ${base}${found.path} in ${endpoint}` });
    return this.fetchSteps(name, m, at, prep, guard, { method: found.method.toUpperCase(), url, headers: Object.keys(headers).length > 0 ? headers : undefined, body, output: w.output });
  }

  /** The http-fetch call of a `call` task, the communication error it raises on 4xx/5xx, and its output. */
  fetchSteps(name: string, m: Machine, at: string, prep: Obj, guard: string | undefined, spec: { method: string; url: string; headers: unknown; body: unknown; output: unknown }): Step[] {
    const k = m.k;
    const { method } = spec;
    if (!['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) throw new Refusal(`${at}/with/method`, 'method', `the method ${method} is not supported`);
    const output = spec.output ?? 'content';
    if (output !== 'content' && output !== 'response') throw new Refusal(`${at}/with/output`, 'output', 'output content and response are mapped (raw is not)');
    const url = this.v(`_url${k}`);
    prep[url] = spec.url;
    const call: Step = {
      id: this.id(`${name}-call`),
      type: 'skill',
      skill: 'http-fetch',
      ...(guard ? { if: guard } : {}),
      inputs: {
        url: this.t(url),
        method,
        ...(spec.headers !== undefined ? { headers: spec.headers } : {}),
        ...(spec.body !== undefined ? { body: spec.body } : {}),
        // Every status comes back: the workflow raises 4xx/5xx as the spec's communication error, without retries.
        accept_status: Array.from({ length: 200 }, (_, i) => 400 + i),
      },
    };
    const answer = `steps[${JSON.stringify(call.id)}].output`;
    const failed = `${answer}.status >= 400`;
    const problem = { type: `${ERRORS_BASE}/communication`, status: this.t(`${answer}.status`), title: `HTTP ${method} answered \${${answer}.status}`, instance: at };
    const r = `_r${k}`;
    const response = `put(put(put(put({}, "request", put(put(put({}, "method", "${method}"), "uri", ${url}), "headers", {})), "headers", ${answer}.headers), "statusCode", ${answer}.status), "content", ${answer}.data)`;
    return [
      call,
      ...this.raise(name, problem, guard ? `${guard} && ${failed}` : failed),
      { id: this.id(`${name}-answer`), type: 'set', ...(guard ? { if: guard } : {}), values: { [r]: this.t(output === 'content' ? `${answer}.data` : response) } },
    ];
  }

  /**
   * `endpoint.authentication` as an Authorization header: `basic` (username and password, each a
   * runtime expression) → `Basic <base64 of user:password>`, `bearer` (token) → `Bearer <token>`.
   * Credentials written in the document are refused: they would sit in the definition in clear.
   */
  authorization(auth: unknown, dot: string, m: Machine, at: string): string {
    if (!isObj(auth) || Object.keys(auth).length !== 1) throw new Refusal(at, 'endpoint.authentication', 'authentication is one scheme: basic or bearer (a reference to use.authentications is not mapped)');
    const [scheme, spec] = Object.entries(auth)[0] as [string, unknown];
    const fields: Record<string, string[]> = { basic: ['username', 'password'], bearer: ['token'] };
    const wanted = fields[scheme];
    if (!wanted) throw new Refusal(`${at}/${seg(scheme)}`, `authentication.${scheme}`, `the ${scheme} scheme is not mapped (basic and bearer are)`);
    if (!isObj(spec) || Object.keys(spec).some((key) => !wanted.includes(key))) throw new Refusal(`${at}/${seg(scheme)}`, `authentication.${scheme}`, `${scheme} has ${wanted.join(' and ')}`);
    const parts = wanted.map((field) => {
      const expr = runtimeExpression(spec[field]);
      if (expr === undefined) {
        throw new Refusal(`${at}/${seg(scheme)}/${field}`, `authentication.${scheme}`, `a ${field} written in the document would sit in the definition in clear; take it from the input with a runtime expression, or send a header whose value is a secret reference`);
      }
      return this.jq(expr, dot, m, `${at}/${seg(scheme)}/${field}`);
    });
    return scheme === 'basic' ? `Basic \${base64Encode((${parts[0]}) + ":" + (${parts[1]}))}` : `Bearer \${${parts[0]}}`;
  }

  /** The call's headers, with the Authorization header authentication gives. */
  headers(headers: unknown, authorization: string | undefined, dot: string, m: Machine, at: string): unknown {
    const translated = headers === undefined ? {} : this.value(headers, dot, m, at);
    if (authorization === undefined) return translated;
    if (!isObj(translated)) throw new Refusal(at, 'headers', 'headers computed by one expression cannot be combined with authentication');
    if (Object.keys(translated).some((key) => key.toLowerCase() === 'authorization')) throw new Refusal(at, 'headers', 'an Authorization header and authentication together');
    return { ...translated, Authorization: authorization };
  }

  /** The task's steps: input, body, then output.as, export.as and the next task. */
  wrap(prep: Obj, body: Step[], guard: string | undefined, result: string | undefined, next: string | undefined, name: string, m: Machine, task?: Obj, at = ''): Step[] {
    const k = m.k;
    const _r = `_r${k}`;
    const out: Obj = {};
    if (result !== undefined) out[_r] = this.t(result);
    const output = isObj(task?.output) ? task.output : undefined;
    if (task?.output !== undefined && (!output || Object.keys(output).some((key) => key !== 'as'))) throw new Refusal(`${at}/output`, 'output', 'only output.as is mapped');
    const as = output?.as === undefined ? undefined : jqText(output.as);
    if (output?.as !== undefined && as === undefined) throw new Refusal(`${at}/output/as`, 'output.as', 'output.as as an object is not mapped yet; use a jq expression');
    out[`_d${k}`] = this.t(as === undefined ? _r : this.jq(as, _r, m, `${at}/output/as`, { output: _r }));
    const exported = isObj(task?.export) ? task.export : undefined;
    if (task?.export !== undefined) {
      const ex = exported?.as === undefined ? undefined : jqText(exported.as);
      if (ex === undefined || Object.keys(exported ?? {}).some((key) => key !== 'as')) throw new Refusal(`${at}/export`, 'export', 'export.as is a jq expression');
      out._ctx = this.t(this.jq(ex, `_d${k}`, m, `${at}/export/as`));
    }
    if (next !== undefined) out[`_s${k}`] = next;
    const steps: Step[] = [];
    if (body.length === 0) {
      // A set task (or one computed in its input step): one step when it has no if.
      steps.push({ id: this.id(name), type: 'set', values: guard ? prep : { ...prep, ...out } });
      if (guard) steps.push({ id: this.id(`${name}-out`), type: 'set', if: guard, values: out });
    } else {
      steps.push({ id: this.id(name), type: 'set', description: `task "${name}": its input`, values: prep }, ...body);
      if (!endsInFail(body)) steps.push({ id: this.id(`${name}-out`), type: 'set', ...(guard ? { if: guard } : {}), values: out });
    }
    if (guard && next !== undefined) {
      // Skipped by its if: the input passes through and the list goes on.
      steps.push({ id: this.id(`${name}-skipped`), type: 'set', if: `!${guard}`, values: { [`_d${k}`]: this.t(`_in${k}`), [`_s${k}`]: next } });
    } else if (guard) {
      steps.push({ id: this.id(`${name}-skipped`), type: 'set', if: `!${guard}`, values: { [`_d${k}`]: this.t(`_in${k}`) } });
    }
    this.mapped.push({ path: at, construct: `${Object.keys(task ?? {}).find((key) => !TASK_FIELDS.includes(key)) ?? 'raise'} task`, detail: `step "${steps[0]?.id as string}"${steps.length > 1 ? ` and ${steps.length - 1} more` : ''}` });
    return steps;
  }
}

/** Converts a parsed Serverless Workflow 1.0 document. Never throws for a bad document: refusals are reported. */
export function importServerlessWorkflow(doc: unknown, options: ServerlessWorkflowImportOptions = {}): ImportResult {
  const tr = new Translator(options);
  return tr.result(() => {
    if (!isObj(doc) || !isObj(doc.document) || !Array.isArray(doc.do)) throw new Refusal('', 'document', 'a Serverless Workflow document has document and do');
    const dsl = String(doc.document.dsl ?? '');
    if (!/^1\.\d+\.\d+/.test(dsl)) throw new Refusal('/document/dsl', 'dsl', `DSL ${JSON.stringify(dsl)} is not 1.x`);
    for (const key of Object.keys(doc)) {
      if (!['document', 'do', 'input', 'output'].includes(key)) throw new Refusal(`/${seg(key)}`, key, key === 'schedule' ? 'schedules are not mapped yet (register a schedule trigger)' : `the top-level ${key} is not mapped yet`);
    }
    const top = tr.machine(undefined, [], true);
    const init: Obj = { _d0: '${input|default({})}' };
    if (isObj(doc.input) && doc.input.from !== undefined) {
      const from = jqText(doc.input.from);
      if (from === undefined) throw new Refusal('/input/from', 'input.from', 'input.from is a jq expression');
      init._d0 = tr.t(tr.jq(from, 'input', top, '/input/from'));
    }
    const body = tr.list(doc.do, top, '/do', init);
    let output = '_d0';
    if (isObj(doc.output) && doc.output.as !== undefined) {
      const as = jqText(doc.output.as);
      if (as === undefined) throw new Refusal('/output/as', 'output.as', 'output.as is a jq expression');
      output = tr.jq(as, '_d0', top, '/output/as');
    }
    const steps: Step[] = [
      { id: tr.id('start'), type: 'set', description: "The workflow's input is the first task's input", values: init },
      ...body,
      ...(endsInFail(body) ? [] : [{ id: tr.id('done'), type: 'succeed', description: "The last task's output is the workflow's output", output: tr.t(output) }]),
    ];
    if (tr.refused.length > 0) return undefined;
    const document = doc.document;
    const definition: Obj = {
      name: options.name ?? slugName(document.name),
      version: options.version ?? (typeof document.version === 'string' && /^\d+\.\d+\.\d+/.test(document.version) ? document.version : '1.0.0'),
      description: `Imported from Serverless Workflow ${dsl}${typeof document.summary === 'string' ? `: ${document.summary}` : typeof document.title === 'string' ? `: ${document.title}` : ''}`.slice(0, 5000),
      context: { mutable: Object.fromEntries(tr.variables) },
      steps,
    };
    return definition;
  });
}
