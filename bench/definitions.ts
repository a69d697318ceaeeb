/**
 * The interpreter definitions the benchmark runs. Each activity step matches a hand-written
 * baseline in bench/baseline-workflows.ts call for call (step ids, paths and inputs included).
 */

/** A definition as submitted (validated by bench/run.ts before it is started). */
export type RawDefinition = Record<string, unknown> & { name: string; version: string; steps: unknown[] };

const echo = (id: string, inputs: Record<string, unknown>) => ({ id, type: 'skill', skill: 'echo', inputs });

/** The child run the sub_workflow kind starts. */
export const CHILD_DEFINITION: RawDefinition = {
  name: 'bench-child',
  version: '1.0.0',
  steps: [{ id: 'child-set', type: 'set', values: { x: 1 } }],
};

export interface KindCase {
  /** The row's label. */
  kind: string;
  definition: RawDefinition;
  input?: unknown;
  /** The run fails on purpose (the `fail` kind). */
  expectFailure?: boolean;
  /** Signal to send once the step is waiting: [step id, signal name]. */
  signalWhenWaiting?: { stepId: string; name: string; payload: unknown };
  /** The run starts a child (its history is reported too). */
  childStepId?: string;
  /** What the row measures, for the report. */
  note?: string;
}

/** One tiny definition per step kind; `set-only` is the empty baseline every other row subtracts. */
export function kindCases(integrationUrl: string): KindCase[] {
  const def = (kind: string, steps: unknown[], extra: Record<string, unknown> = {}): RawDefinition => ({
    name: `bench-kind-${kind}`,
    version: '1.0.0',
    steps,
    ...extra,
  });
  const set = (id: string, value: unknown = 1) => ({ id, type: 'set', values: { x: value } });
  return [
    { kind: 'set-only (empty baseline)', definition: def('empty', [set('noop')]), note: 'one `set` step: the fixed cost of any run' },
    { kind: 'skill', definition: def('skill', [echo('call', { n: 1 })]), note: 'one echo activity' },
    {
      kind: 'integration',
      definition: def('integration', [{ id: 'call', type: 'integration', integration: 'http.request', inputs: { url: integrationUrl } }]),
      note: 'http.request to an in-process loopback HTTP server (integrations queue)',
    },
    {
      kind: 'parallel',
      definition: def('parallel', [{ id: 'par', type: 'parallel', steps: [echo('a', { branch: 'a' }), echo('b', { branch: 'b' })] }]),
      note: '2 echo branches',
    },
    {
      kind: 'for_each',
      definition: def('for_each', [{ id: 'fe', type: 'for_each', items: [1, 2, 3], steps: [echo('each', { item: '${item}', index: '${index}' })] }]),
      note: '3 items, one echo each, max_concurrency 1',
    },
    {
      kind: 'loop',
      definition: def(
        'loop',
        [{ id: 'loop', type: 'loop', condition: 'counter < 3', max_iterations: 10, steps: [{ id: 'inc', type: 'set', values: { counter: '${counter + 1}' } }] }],
        { context: { mutable: { counter: 0 } } },
      ),
      note: '3 iterations of a `set`',
    },
    {
      kind: 'conditional',
      definition: def('conditional', [{ id: 'cond', type: 'conditional', condition: 'input.flag == true', then: [set('yes')], else: [set('no', 2)] }]),
      input: { flag: true },
      note: 'then-branch with one `set`',
    },
    {
      kind: 'switch',
      definition: def('switch', [
        { id: 'sw', type: 'switch', value: 'input.tier', cases: [{ equals: 'gold', steps: [set('gold')] }], default: [set('other', 2)] },
      ]),
      input: { tier: 'gold' },
      note: 'one `equals` case with one `set`',
    },
    { kind: 'wait', definition: def('wait', [{ id: 'pause', type: 'wait', duration: 1 }]), note: '1 s timer' },
    {
      kind: 'wait_for_event',
      definition: def('wait_for_event', [{ id: 'await', type: 'wait_for_event', event: 'go' }]),
      signalWhenWaiting: { stepId: 'await', name: 'go', payload: { ok: true } },
      note: 'no timeout; the signal is sent once the step is waiting',
    },
    {
      kind: 'wait_for_event (timeout)',
      definition: def('wait_for_event-timeout', [{ id: 'await', type: 'wait_for_event', event: 'go', timeout: 60 }]),
      signalWhenWaiting: { stepId: 'await', name: 'go', payload: { ok: true } },
      note: 'timeout 60 s (a timer, cancelled when the signal arrives)',
    },
    {
      kind: 'set ×10',
      definition: def('set', Array.from({ length: 10 }, (_, i) => set(`set${i + 1}`, i))),
      note: 'ten `set` steps (the row subtracts the one-`set` baseline)',
    },
    {
      kind: 'sub_workflow',
      definition: def('sub_workflow', [{ id: 'child', type: 'sub_workflow', definition: CHILD_DEFINITION.name, version: CHILD_DEFINITION.version, inputs: { n: 1 } }]),
      childStepId: 'child',
      note: 'child runs one `set`; the child’s own history is separate',
    },
    { kind: 'fail', definition: def('fail', [{ id: 'boom', type: 'fail', error: 'bench failure' }]), expectFailure: true, note: 'the run fails' },
    { kind: 'succeed', definition: def('succeed', [{ id: 'done', type: 'succeed', output: { ok: true } }]), note: 'ends the run early' },
  ];
}

/** `steps` sequential echo steps `s1`..`sN` with input `{n: i}` (baseline: baselineSequence). */
export function sequence(steps: number): RawDefinition {
  return {
    name: `bench-seq-${steps}`,
    version: '1.0.0',
    steps: Array.from({ length: steps }, (_, i) => echo(`s${i + 1}`, { n: i + 1 })),
  };
}

/** A loop of `iterations` pure `set` steps (no activity). */
export function pureLoop(iterations: number): RawDefinition {
  return {
    name: 'bench-pure-loop',
    version: '1.0.0',
    context: { mutable: { counter: 0 } },
    steps: [
      {
        id: 'loop',
        type: 'loop',
        condition: `counter < ${iterations}`,
        max_iterations: iterations,
        steps: [{ id: 'inc', type: 'set', values: { counter: '${counter + 1}' } }],
      },
    ],
    output: { counter: '${counter}' },
  };
}

/** A loop of `iterations` echo calls: step `call` at path `loop[i]/call` (baseline: baselineEchoLoop). */
export function echoLoop(iterations: number): RawDefinition {
  return {
    name: 'bench-echo-loop',
    version: '1.0.0',
    steps: [
      {
        id: 'loop',
        type: 'loop',
        condition: `iteration < ${iterations}`,
        max_iterations: iterations,
        steps: [echo('call', { iteration: '${iteration}' })],
      },
    ],
  };
}
