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

/** Builds the flowchart of a definition, optionally coloured by the statuses of a run's steps. */
export function definitionGraph(definition: Definition, statuses?: Readonly<Record<string, GraphStepStatus>>): DefinitionGraph {
  const lines: string[] = [];
  const nodes: Record<string, string> = {};
  let counter = 0;
  const fresh = () => `n${(counter += 1)}`;
  const handling = definition.error_handling ?? {};
  const defaultStrategy: ErrorStrategy = handling.default ?? 'halt';
  const perStep = handling.per_step ?? {};
  const usesRollback = handling.rollback?.enabled === true || defaultStrategy === 'rollback' || Object.values(perStep).some((p) => p.strategy === 'rollback');

  const edge = (exit: Exit, to: string) => {
    const arrow = exit.dotted ? '-.->' : '-->';
    lines.push(exit.label ? `  ${exit.from} ${arrow}|"${mermaidText(clip(exit.label, 40))}"| ${to}` : `  ${exit.from} ${arrow} ${to}`);
  };
  const connect = (exits: readonly Exit[], to: string) => {
    for (const exit of exits) edge(exit, to);
  };

  const start = 'start';
  const done = 'done';
  const failed = 'failed';
  lines.push('flowchart TD');
  lines.push(`  ${start}(["start"])`);
  const rollbackEdges: Exit[] = [];
  let failedUsed = false;
  // With rollback enabled, whatever fails the run rolls back first; a failing rollback step fails it.
  const rollbackOnFailure = handling.rollback?.enabled === true || defaultStrategy === 'rollback';
  let inRollback = false;
  const toFailed = (exit: Exit) => {
    if (rollbackOnFailure && !inRollback) {
      rollbackEdges.push(exit);
      return;
    }
    failedUsed = true;
    edge(exit, failed);
  };
  let rollbackEntry: string | undefined;

  const label = (step: Step, detail?: string) => mermaidText(clip(detail ? `${step.id}: ${detail}` : step.id, 80));

  /** What happens when a step fails after its retries: the dotted error edges it contributes. */
  const errorPath = (step: Step, node: string): Exit[] => {
    const policy = perStep[step.id];
    if (step.continue_on_error || policy?.continue_on_error) return [{ from: node, label: 'on error: skip', dotted: true }];
    let strategy: ErrorStrategy = policy?.strategy ?? defaultStrategy;
    if (strategy === 'retry') strategy = defaultStrategy === 'retry' ? 'halt' : defaultStrategy;
    switch (strategy) {
      case 'skip':
        return [{ from: node, label: 'on error: skip', dotted: true }];
      case 'custom': {
        const steps = policy?.strategy === 'custom' && policy.handler ? policy.handler : handling.handler;
        if (!steps || steps.length === 0) {
          toFailed({ from: node, label: 'on error', dotted: true });
          return [];
        }
        const box = fresh();
        lines.push(`  subgraph ${box}["${mermaidText(`on error of ${step.id}`)}"]`);
        const inner = list(steps, [], true);
        lines.push('  end');
        edge({ from: node, label: 'on error', dotted: true }, inner.entry ?? box);
        return inner.exits;
      }
      case 'rollback':
        rollbackEdges.push({ from: node, label: 'on error: roll back', dotted: true });
        return [];
      default:
        toFailed({ from: node, label: 'on error', dotted: true });
        return [];
    }
  };

  /** Renders one step; returns its entry node and the exits the next step continues from. */
  function one(step: Step, inHandler: boolean): { entry: string; exits: Exit[] } {
    const node = fresh();
    nodes[step.id] = node;
    let entry = node;
    let exits: Exit[] = [];
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
        exits = [{ from: node }];
        if (!inHandler) exits.push(...errorPath(step, node));
        break;
      }
      case 'sub_workflow':
        lines.push(`  ${node}[["${label(step, `sub_workflow ${step.definition}@${step.version}`)}"]]`);
        exits = [{ from: node }];
        if (!inHandler) exits.push(...errorPath(step, node));
        break;
      case 'set':
        lines.push(`  ${node}[/"${label(step, `set ${Object.keys(step.values).join(', ')}`)}"/]`);
        exits = [{ from: node }];
        break;
      case 'wait':
        lines.push(
          `  ${node}(["${label(step, step.duration !== undefined ? `wait ${durationText(durationMs(step.duration) / 1000)}` : `wait until ${typeof step.until === 'string' ? step.until : 'a time'}`)}"])`,
        );
        exits = [{ from: node }];
        break;
      case 'wait_for_event': {
        lines.push(`  ${node}>"${label(step, `wait for event ${step.event}`)}"]`);
        exits = [{ from: node, label: 'event' }];
        if (step.timeout !== undefined) {
          if (step.on_timeout === 'continue') exits.push({ from: node, label: `timeout ${durationText(step.timeout)}` });
          else toFailed({ from: node, label: `timeout ${durationText(step.timeout)}`, dotted: true });
        }
        break;
      }
      case 'approval': {
        const who = [...(step.approvers.principals ?? []), ...(step.approvers.groups ?? []).map((g) => `group ${g}`)].join(', ');
        lines.push(`  ${node}{{"${label(step, `approval by ${who}${step.quorum && step.quorum > 1 ? ` (quorum ${step.quorum})` : ''}`)}"}}`);
        exits = [{ from: node, label: 'approved' }];
        if (step.on_reject === 'continue') exits.push({ from: node, label: 'rejected' });
        else toFailed({ from: node, label: 'rejected' });
        if (step.timeout !== undefined) {
          const onTimeout = step.on_timeout ?? 'fail';
          const timeout = `timeout ${durationText(step.timeout)}`;
          if (onTimeout === 'escalate' && step.escalation) {
            const esc = fresh();
            const escWho = [...(step.escalation.approvers.principals ?? []), ...(step.escalation.approvers.groups ?? []).map((g) => `group ${g}`)].join(', ');
            lines.push(`  ${esc}{{"${mermaidText(clip(`escalation to ${escWho}`, 80))}"}}`);
            edge({ from: node, label: timeout }, esc);
            exits.push({ from: esc, label: 'approved' });
            const escTimeout = step.escalation.on_timeout ?? 'fail';
            if (escTimeout === 'approve') exits.push({ from: esc, label: 'timeout: approve' });
            else if (escTimeout === 'reject' && step.on_reject === 'continue') exits.push({ from: esc, label: 'timeout: reject' });
            else toFailed({ from: esc, label: `rejected or timeout` });
          } else if (onTimeout === 'approve') exits.push({ from: node, label: `${timeout}: approve` });
          else if (onTimeout === 'reject' && step.on_reject === 'continue') exits.push({ from: node, label: `${timeout}: reject` });
          else toFailed({ from: node, label: timeout, dotted: true });
        }
        break;
      }
      case 'fail':
        lines.push(`  ${node}[["${label(step, `fail ${step.error_type ?? 'WorkflowFailed'}`)}"]]`);
        if (inHandler) toFailed({ from: node });
        else {
          const onError = errorPath(step, node);
          // A plain fail halts; a skip or custom policy lets the run go on.
          exits = onError;
        }
        break;
      case 'succeed':
        lines.push(`  ${node}(["${label(step, 'succeed')}"])`);
        edge({ from: node }, done);
        break;
      case 'conditional': {
        lines.push(`  ${node}{"${label(step, clip(step.condition, 50))}"}`);
        const yes = list(step.then, [{ from: node, label: 'then' }], inHandler);
        exits = [...yes.exits];
        if (step.else && step.else.length > 0) exits.push(...list(step.else, [{ from: node, label: 'else' }], inHandler).exits);
        else exits.push({ from: node, label: 'else' });
        break;
      }
      case 'switch': {
        lines.push(`  ${node}{"${label(step, `switch ${clip(step.value ?? '', 40)}`)}"}`);
        step.cases.forEach((c) => {
          const when = c.when !== undefined ? c.when : `= ${JSON.stringify(c.equals)}`;
          exits.push(...list(c.steps, [{ from: node, label: when }], inHandler).exits);
        });
        if (step.default && step.default.length > 0) exits.push(...list(step.default, [{ from: node, label: 'default' }], inHandler).exits);
        else exits.push({ from: node, label: 'default' });
        break;
      }
      case 'parallel': {
        const wait = step.wait_for === undefined || step.wait_for === 'all' ? 'all' : String(step.wait_for);
        lines.push(`  ${node}[["${label(step, `parallel, wait for ${wait}`)}"]]`);
        const join = fresh();
        lines.push(`  ${join}(("join"))`);
        step.steps.forEach((branch) => connect(list([branch], [{ from: node }], inHandler).exits, join));
        exits = [{ from: join }];
        if (!inHandler) exits.push(...errorPath(step, join));
        break;
      }
      case 'for_each': {
        const items = typeof step.items === 'string' ? step.items : `${step.items.length} items`;
        lines.push(`  subgraph ${node}_box["${label(step, `for each of ${clip(items, 40)}${step.max_concurrency && step.max_concurrency > 1 ? `, ${step.max_concurrency} at a time` : ''}`)}"]`);
        lines.push(`  ${node}(("each"))`);
        const body = list(step.steps, [{ from: node, label: 'item' }], inHandler);
        connect(body.exits.map((e) => ({ ...e, label: e.label ?? 'next item' })), node);
        lines.push('  end');
        exits = [{ from: node, label: 'all done' }];
        break;
      }
      case 'block': {
        lines.push(`  subgraph ${node}_box["${label(step, 'block')}"]`);
        lines.push(`  ${node}(("start"))`);
        exits = [...list(step.steps, [{ from: node }], inHandler).exits];
        lines.push('  end');
        break;
      }
      case 'loop': {
        lines.push(`  subgraph ${node}_box["${label(step, `loop, at most ${step.max_iterations}`)}"]`);
        lines.push(`  ${node}{"${label(step, `while ${clip(step.condition, 50)}`)}"}`);
        const body = list(step.steps, [{ from: node, label: 'true' }], inHandler);
        connect(body.exits.map((e) => ({ ...e, label: e.label ?? 'again' })), node);
        lines.push('  end');
        exits = [{ from: node, label: `false or ${step.max_iterations} iterations` }];
        break;
      }
    }
    // A composite step with its own deadline fails (under its error policy) when the deadline passes.
    if (!inHandler && step.timeout !== undefined && ['conditional', 'switch', 'loop', 'for_each', 'block'].includes(step.type)) {
      exits.push(...errorPath(step, node).map((e) => ({ ...e, label: (e.label ?? '').replace('on error', `timeout ${durationText(step.timeout ?? 0)}`) })));
    }
    if (step.if !== undefined) {
      const gate = fresh();
      lines.push(`  ${gate}{"${mermaidText(clip(`if ${step.if}`, 60))}"}`);
      edge({ from: gate, label: 'yes' }, node);
      exits.push({ from: gate, label: 'no' });
      entry = gate;
    }
    if (step.compensate && usesRollback) compensations.unshift({ id: step.id, steps: step.compensate });
    return { entry, exits };
  }

  const compensations: Array<{ id: string; steps: Step[] }> = [];

  /** Renders a list after `incoming`; returns the first node and the exits of the last step. */
  function list(steps: readonly Step[], incoming: Exit[], inHandler: boolean): { entry?: string; exits: Exit[] } {
    let exits = incoming;
    let entry: string | undefined;
    for (const step of steps) {
      const rendered = one(step, inHandler);
      entry ??= rendered.entry;
      connect(exits, rendered.entry);
      exits = rendered.exits;
    }
    return entry === undefined ? { exits } : { entry, exits };
  }

  const main = list(definition.steps, [{ from: start }], false);
  connect(main.exits, done);
  // A definition that always fails (a last unconditional fail step) has no way to the end.
  if (lines.some((l) => l.endsWith(` ${done}`))) lines.push(`  ${done}(["end"])`);

  if (usesRollback) {
    const box = 'rollback';
    inRollback = true;
    lines.push(`  subgraph ${box}["rollback (compensations in reverse, then rollback steps)"]`);
    let exits: Exit[] = [];
    let first: string | undefined;
    for (const c of compensations) {
      const rendered = list(c.steps, exits, true);
      first ??= rendered.entry;
      exits = rendered.exits;
    }
    (handling.rollback?.steps ?? []).forEach((entry, i) => {
      const rendered =
        typeof entry === 'string'
          ? (() => {
              const node = fresh();
              lines.push(`  ${node}["${mermaidText(`rollback ${i + 1}: skill ${entry}`)}"]`);
              return { entry: node, exits: [{ from: node }] as Exit[] };
            })()
          : list([entry], [], true);
      if (rendered.entry) connect(exits, rendered.entry);
      first ??= rendered.entry;
      exits = rendered.exits;
    });
    if (first === undefined) {
      first = fresh();
      lines.push(`  ${first}["nothing to undo"]`);
      exits = [{ from: first }];
    }
    lines.push('  end');
    rollbackEntry = first;
    connect(rollbackEdges, rollbackEntry);
    for (const exit of exits) toFailed(exit);
  }
  if (failedUsed) lines.push(`  ${failed}(["failed"])`);

  if (statuses) {
    const used = new Set<string>();
    for (const [stepId, status] of Object.entries(statuses)) {
      const node = nodes[stepId];
      if (!node || !STATUS_STYLES[status]) continue;
      lines.push(`  class ${node} ${status}`);
      used.add(status);
    }
    for (const status of used) lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`);
  }
  return { mermaid: `${lines.filter((l) => l !== '').join('\n')}\n`, nodes };
}
