// Over 400 lines: one concept, a definition's Mermaid flowchart: one builder whose methods draw each step kind's shape and its edges.
import { durationMs } from '../../interpreter/compile.ts';
import type { Definition, ErrorStrategy, Step } from '../../interpreter/schema.ts';

/**
 * A definition as a Mermaid flowchart (`flowchart TD`): every step kind with its own shape,
 * branches and cases as labelled edges, loops and for_each as subgraphs with their back edge,
 * parallel branches between a fork and a join, approvals with their approve/reject/timeout
 * edges, error paths as dotted edges (skip, custom handler, halt, rollback) and the rollback
 * path (compensations in reverse, then the rollback steps) as its own subgraph. With step
 * statuses (a run), each step's node gets a class per status.
 *
 * Node ids are generated (`n1`, `n2`, ...), never step ids, so no step id can collide with a
 * Mermaid keyword (`end`, `graph`, ...); labels are quoted with `"` and `#` written as entities.
 */

/** A step's status in a run, as GET /v1/runs/{runId} reports it. */
export type GraphStepStatus = string;

export interface DefinitionGraph {
  mermaid: string;
  /** Node id of every step, by step id (handlers and rollback steps included). */
  nodes: Record<string, string>;
}

interface Exit {
  from: string;
  label?: string;
  dotted?: boolean;
}

/** Text inside a quoted Mermaid label: quotes and markup-significant characters as entities. */
export function mermaidText(text: string): string {
  return text
    .replace(/#/g, '#35;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/[\r\n]+/g, ' ')
    .replace(/[{}[\]|]/g, (c) => `#${c.charCodeAt(0)};`);
}

function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function durationText(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

const STATUS_STYLES: Record<string, string> = {
  completed: 'fill:#d4edda,stroke:#28a745',
  failed: 'fill:#f8d7da,stroke:#dc3545',
  running: 'fill:#cce5ff,stroke:#007bff',
  waiting: 'fill:#fff3cd,stroke:#ffc107',
  skipped: 'fill:#e2e3e5,stroke:#6c757d,stroke-dasharray:4',
  cancelled: 'fill:#e2e3e5,stroke:#343a40',
  compensated: 'fill:#e8daef,stroke:#8e44ad',
};

/** The flowchart under construction: its lines, node ids and the error and rollback edges collected on the way. */
class GraphBuilder {
  readonly lines: string[] = [];
  readonly nodes: Record<string, string> = {};
  private counter = 0;
  private readonly handling: NonNullable<Definition['error_handling']>;
  private readonly defaultStrategy: ErrorStrategy;
  private readonly perStep: NonNullable<NonNullable<Definition['error_handling']>['per_step']>;
  readonly usesRollback: boolean;
  // With rollback enabled, whatever fails the run rolls back first; a failing rollback step fails it.
  private readonly rollbackOnFailure: boolean;
  private readonly rollbackEdges: Exit[] = [];
  private failedUsed = false;
  private inRollback = false;
  private readonly compensations: Array<{ id: string; steps: Step[] }> = [];

  constructor(private readonly definition: Definition) {
    this.handling = definition.error_handling ?? {};
    this.defaultStrategy = this.handling.default ?? 'halt';
    this.perStep = this.handling.per_step ?? {};
    this.usesRollback = this.handling.rollback?.enabled === true || this.defaultStrategy === 'rollback' || Object.values(this.perStep).some((p) => p.strategy === 'rollback');
    this.rollbackOnFailure = this.handling.rollback?.enabled === true || this.defaultStrategy === 'rollback';
  }

  fresh(): string {
    return `n${(this.counter += 1)}`;
  }

  edge(exit: Exit, to: string): void {
    const arrow = exit.dotted ? '-.->' : '-->';
    this.lines.push(exit.label ? `  ${exit.from} ${arrow}|"${mermaidText(clip(exit.label, 40))}"| ${to}` : `  ${exit.from} ${arrow} ${to}`);
  }

  connect(exits: readonly Exit[], to: string): void {
    for (const exit of exits) this.edge(exit, to);
  }

  toFailed(exit: Exit): void {
    if (this.rollbackOnFailure && !this.inRollback) {
      this.rollbackEdges.push(exit);
      return;
    }
    this.failedUsed = true;
    this.edge(exit, FAILED);
  }

  /** The main path from start to end. */
  main(): void {
    this.lines.push('flowchart TD');
    this.lines.push(`  ${START}(["start"])`);
    const main = this.list(this.definition.steps, [{ from: START }], false);
    this.connect(main.exits, DONE);
    // A definition that always fails (a last unconditional fail step) has no way to the end.
    if (this.lines.some((l) => l.endsWith(` ${DONE}`))) this.lines.push(`  ${DONE}(["end"])`);
  }

  /** Renders a list after `incoming`; returns the first node and the exits of the last step. */
  list(steps: readonly Step[], incoming: Exit[], inHandler: boolean): { entry?: string; exits: Exit[] } {
    let exits = incoming;
    let entry: string | undefined;
    for (const step of steps) {
      const rendered = this.one(step, inHandler);
      entry ??= rendered.entry;
      this.connect(exits, rendered.entry);
      exits = rendered.exits;
    }
    return entry === undefined ? { exits } : { entry, exits };
  }

  /** Renders one step; returns its entry node and the exits the next step continues from. */
  private one(step: Step, inHandler: boolean): { entry: string; exits: Exit[] } {
    const node = this.fresh();
    this.nodes[step.id] = node;
    let entry = node;
    const exits = isComposite(step) ? this.composite(step, node, inHandler) : this.simple(step, node, inHandler);
    // A composite step with its own deadline fails (under its error policy) when the deadline passes.
    if (!inHandler && step.timeout !== undefined && ['conditional', 'switch', 'loop', 'for_each', 'block'].includes(step.type)) {
      exits.push(...this.errorPath(step, node).map((e) => ({ ...e, label: (e.label ?? '').replace('on error', `timeout ${durationText(step.timeout ?? 0)}`) })));
    }
    if (step.if !== undefined) {
      const gate = this.fresh();
      this.lines.push(`  ${gate}{"${mermaidText(clip(`if ${step.if}`, 60))}"}`);
      this.edge({ from: gate, label: 'yes' }, node);
      exits.push({ from: gate, label: 'no' });
      entry = gate;
    }
    if (step.compensate && this.usesRollback) this.compensations.unshift({ id: step.id, steps: step.compensate });
    return { entry, exits };
  }

  /** A step with no inner steps: its node and its exits. */
  private simple(step: Exclude<Step, CompositeStep>, node: string, inHandler: boolean): Exit[] {
    const lines = this.lines;
    switch (step.type) {
      case 'skill':
      case 'integration':
      case 'directive':
      case 'agent':
      case 'model': {
        const callee =
          step.type === 'skill'
            ? `skill ${step.skill}`
            : step.type === 'integration'
              ? `integration ${step.integration}`
              : step.type === 'directive'
                ? `directive ${step.directive}`
                : step.type === 'agent'
                  ? `agent ${step.agent ?? step.agent_ref?.slug ?? ''}`
                  : `model ${step.model}`;
        lines.push(`  ${node}["${label(step, callee)}"]`);
        const exits: Exit[] = [{ from: node }];
        if (!inHandler) exits.push(...this.errorPath(step, node));
        return exits;
      }
      case 'sub_workflow': {
        lines.push(`  ${node}[["${label(step, `sub_workflow ${step.definition}@${step.version}`)}"]]`);
        const exits: Exit[] = [{ from: node }];
        if (!inHandler) exits.push(...this.errorPath(step, node));
        return exits;
      }
      case 'set':
        lines.push(`  ${node}[/"${label(step, `set ${Object.keys(step.values).join(', ')}`)}"/]`);
        return [{ from: node }];
      case 'wait':
        lines.push(
          `  ${node}(["${label(step, step.duration !== undefined ? `wait ${durationText(durationMs(step.duration) / 1000)}` : `wait until ${typeof step.until === 'string' ? step.until : 'a time'}`)}"])`,
        );
        return [{ from: node }];
      case 'wait_for_event': {
        lines.push(`  ${node}>"${label(step, `wait for event ${step.event}`)}"]`);
        const exits: Exit[] = [{ from: node, label: 'event' }];
        if (step.timeout !== undefined) {
          if (step.on_timeout === 'continue') exits.push({ from: node, label: `timeout ${durationText(step.timeout)}` });
          else this.toFailed({ from: node, label: `timeout ${durationText(step.timeout)}`, dotted: true });
        }
        return exits;
      }
      case 'approval':
        return this.approval(step, node);
      case 'fail':
        lines.push(`  ${node}[["${label(step, `fail ${step.error_type ?? 'WorkflowFailed'}`)}"]]`);
        if (inHandler) {
          this.toFailed({ from: node });
          return [];
        }
        // A plain fail halts; a skip or custom policy lets the run go on.
        return this.errorPath(step, node);
      case 'succeed':
        lines.push(`  ${node}(["${label(step, 'succeed')}"])`);
        this.edge({ from: node }, DONE);
        return [];
    }
  }

  /** An approval: approved, rejected and timeout edges, and the escalation stage when there is one. */
  private approval(step: Extract<Step, { type: 'approval' }>, node: string): Exit[] {
    const who = [...(step.approvers.principals ?? []), ...(step.approvers.groups ?? []).map((g) => `group ${g}`)].join(', ');
    this.lines.push(`  ${node}{{"${label(step, `approval by ${who}${step.quorum && step.quorum > 1 ? ` (quorum ${step.quorum})` : ''}`)}"}}`);
    const exits: Exit[] = [{ from: node, label: 'approved' }];
    if (step.on_reject === 'continue') exits.push({ from: node, label: 'rejected' });
    else this.toFailed({ from: node, label: 'rejected' });
    if (step.timeout !== undefined) {
      const onTimeout = step.on_timeout ?? 'fail';
      const timeout = `timeout ${durationText(step.timeout)}`;
      if (onTimeout === 'escalate' && step.escalation) {
        const esc = this.fresh();
        const escWho = [...(step.escalation.approvers.principals ?? []), ...(step.escalation.approvers.groups ?? []).map((g) => `group ${g}`)].join(', ');
        this.lines.push(`  ${esc}{{"${mermaidText(clip(`escalation to ${escWho}`, 80))}"}}`);
        this.edge({ from: node, label: timeout }, esc);
        exits.push({ from: esc, label: 'approved' });
        const escTimeout = step.escalation.on_timeout ?? 'fail';
        if (escTimeout === 'approve') exits.push({ from: esc, label: 'timeout: approve' });
        else if (escTimeout === 'reject' && step.on_reject === 'continue') exits.push({ from: esc, label: 'timeout: reject' });
        else this.toFailed({ from: esc, label: `rejected or timeout` });
      } else if (onTimeout === 'approve') exits.push({ from: node, label: `${timeout}: approve` });
      else if (onTimeout === 'reject' && step.on_reject === 'continue') exits.push({ from: node, label: `${timeout}: reject` });
      else this.toFailed({ from: node, label: timeout, dotted: true });
    }
    return exits;
  }

  /** A step with inner steps: its branches, cases, fork and join, or subgraph with the back edge. */
  private composite(step: CompositeStep, node: string, inHandler: boolean): Exit[] {
    const lines = this.lines;
    switch (step.type) {
      case 'conditional': {
        lines.push(`  ${node}{"${label(step, clip(step.condition, 50))}"}`);
        const yes = this.list(step.then, [{ from: node, label: 'then' }], inHandler);
        const exits = [...yes.exits];
        if (step.else && step.else.length > 0) exits.push(...this.list(step.else, [{ from: node, label: 'else' }], inHandler).exits);
        else exits.push({ from: node, label: 'else' });
        return exits;
      }
      case 'switch': {
        lines.push(`  ${node}{"${label(step, `switch ${clip(step.value ?? '', 40)}`)}"}`);
        const exits: Exit[] = [];
        step.cases.forEach((c) => {
          const when = c.when !== undefined ? c.when : `= ${JSON.stringify(c.equals)}`;
          exits.push(...this.list(c.steps, [{ from: node, label: when }], inHandler).exits);
        });
        if (step.default && step.default.length > 0) exits.push(...this.list(step.default, [{ from: node, label: 'default' }], inHandler).exits);
        else exits.push({ from: node, label: 'default' });
        return exits;
      }
      case 'parallel': {
        const wait = step.wait_for === undefined || step.wait_for === 'all' ? 'all' : String(step.wait_for);
        lines.push(`  ${node}[["${label(step, `parallel, wait for ${wait}`)}"]]`);
        const join = this.fresh();
        lines.push(`  ${join}(("join"))`);
        step.steps.forEach((branch) => this.connect(this.list([branch], [{ from: node }], inHandler).exits, join));
        const exits: Exit[] = [{ from: join }];
        if (!inHandler) exits.push(...this.errorPath(step, join));
        return exits;
      }
      case 'for_each': {
        const items = typeof step.items === 'string' ? step.items : `${step.items.length} items`;
        lines.push(`  subgraph ${node}_box["${label(step, `for each of ${clip(items, 40)}${step.max_concurrency && step.max_concurrency > 1 ? `, ${step.max_concurrency} at a time` : ''}`)}"]`);
        lines.push(`  ${node}(("each"))`);
        const body = this.list(step.steps, [{ from: node, label: 'item' }], inHandler);
        this.connect(body.exits.map((e) => ({ ...e, label: e.label ?? 'next item' })), node);
        lines.push('  end');
        return [{ from: node, label: 'all done' }];
      }
      case 'block': {
        lines.push(`  subgraph ${node}_box["${label(step, 'block')}"]`);
        lines.push(`  ${node}(("start"))`);
        const exits = [...this.list(step.steps, [{ from: node }], inHandler).exits];
        lines.push('  end');
        return exits;
      }
      case 'loop': {
        lines.push(`  subgraph ${node}_box["${label(step, `loop, at most ${step.max_iterations}`)}"]`);
        lines.push(`  ${node}{"${label(step, `while ${clip(step.condition, 50)}`)}"}`);
        const body = this.list(step.steps, [{ from: node, label: 'true' }], inHandler);
        this.connect(body.exits.map((e) => ({ ...e, label: e.label ?? 'again' })), node);
        lines.push('  end');
        return [{ from: node, label: `false or ${step.max_iterations} iterations` }];
      }
    }
  }

  /** What happens when a step fails after its retries: the dotted error edges it contributes. */
  private errorPath(step: Step, node: string): Exit[] {
    const policy = this.perStep[step.id];
    if (step.continue_on_error || policy?.continue_on_error) return [{ from: node, label: 'on error: skip', dotted: true }];
    let strategy: ErrorStrategy = policy?.strategy ?? this.defaultStrategy;
    if (strategy === 'retry') strategy = this.defaultStrategy === 'retry' ? 'halt' : this.defaultStrategy;
    switch (strategy) {
      case 'skip':
        return [{ from: node, label: 'on error: skip', dotted: true }];
      case 'custom': {
        const steps = policy?.strategy === 'custom' && policy.handler ? policy.handler : this.handling.handler;
        if (!steps || steps.length === 0) {
          this.toFailed({ from: node, label: 'on error', dotted: true });
          return [];
        }
        const box = this.fresh();
        this.lines.push(`  subgraph ${box}["${mermaidText(`on error of ${step.id}`)}"]`);
        const inner = this.list(steps, [], true);
        this.lines.push('  end');
        this.edge({ from: node, label: 'on error', dotted: true }, inner.entry ?? box);
        return inner.exits;
      }
      case 'rollback':
        this.rollbackEdges.push({ from: node, label: 'on error: roll back', dotted: true });
        return [];
      default:
        this.toFailed({ from: node, label: 'on error', dotted: true });
        return [];
    }
  }

  /** The rollback subgraph (compensations in reverse, then the rollback steps) and the failed node. */
  rollback(): void {
    if (this.usesRollback) {
      const box = 'rollback';
      this.inRollback = true;
      this.lines.push(`  subgraph ${box}["rollback (compensations in reverse, then rollback steps)"]`);
      let exits: Exit[] = [];
      let first: string | undefined;
      for (const c of this.compensations) {
        const rendered = this.list(c.steps, exits, true);
        first ??= rendered.entry;
        exits = rendered.exits;
      }
      (this.handling.rollback?.steps ?? []).forEach((entry, i) => {
        const rendered =
          typeof entry === 'string'
            ? (() => {
                const node = this.fresh();
                this.lines.push(`  ${node}["${mermaidText(`rollback ${i + 1}: skill ${entry}`)}"]`);
                return { entry: node, exits: [{ from: node }] as Exit[] };
              })()
            : this.list([entry], [], true);
        if (rendered.entry) this.connect(exits, rendered.entry);
        first ??= rendered.entry;
        exits = rendered.exits;
      });
      if (first === undefined) {
        first = this.fresh();
        this.lines.push(`  ${first}["nothing to undo"]`);
        exits = [{ from: first }];
      }
      this.lines.push('  end');
      this.connect(this.rollbackEdges, first);
      for (const exit of exits) this.toFailed(exit);
    }
    if (this.failedUsed) this.lines.push(`  ${FAILED}(["failed"])`);
  }

  /** One class per status a run's steps are in, and its style. */
  statusClasses(statuses: Readonly<Record<string, GraphStepStatus>>): void {
    const used = new Set<string>();
    for (const [stepId, status] of Object.entries(statuses)) {
      const node = this.nodes[stepId];
      if (!node || !STATUS_STYLES[status]) continue;
      this.lines.push(`  class ${node} ${status}`);
      used.add(status);
    }
    for (const status of used) this.lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`);
  }
}

const START = 'start';
const DONE = 'done';
const FAILED = 'failed';

type CompositeStep = Extract<Step, { type: 'conditional' | 'switch' | 'parallel' | 'for_each' | 'block' | 'loop' }>;

function isComposite(step: Step): step is CompositeStep {
  return ['conditional', 'switch', 'parallel', 'for_each', 'block', 'loop'].includes(step.type);
}

function label(step: Step, detail?: string): string {
  return mermaidText(clip(detail ? `${step.id}: ${detail}` : step.id, 80));
}

/** Builds the flowchart of a definition, optionally coloured by the statuses of a run's steps. */
export function definitionGraph(definition: Definition, statuses?: Readonly<Record<string, GraphStepStatus>>): DefinitionGraph {
  const graph = new GraphBuilder(definition);
  graph.main();
  graph.rollback();
  if (statuses) graph.statusClasses(statuses);
  return { mermaid: `${graph.lines.filter((l) => l !== '').join('\n')}\n`, nodes: graph.nodes };
}
