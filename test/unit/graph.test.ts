import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { definitionGraph } from '../../api/authoring/graph.ts';
import { walkSteps } from '../../interpreter/compile.ts';
import { definitionSchema, STEP_TYPES, unwrapDefinition, type Definition } from '../../interpreter/schema.ts';
import { goldenDefinitions } from '../replay/golden.ts';
import { parseFlowchart, type ParsedFlowchart } from '../support/mermaid.ts';

/** Mermaid diagrams of definitions, parsed back with mermaid's own flowchart parser. */

const examplesDir = fileURLToPath(new URL('../../docs/examples', import.meta.url));
const documents: Array<[string, Definition]> = [
  ...goldenDefinitions().flatMap((g): Array<[string, Definition]> => [
    [`golden/${g.name}`, definitionSchema.parse(g.definition)],
    ...g.children.map((c, i): [string, Definition] => [`golden/${g.name}.children[${i}]`, definitionSchema.parse(c)]),
  ]),
  ...readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .map((f): [string, Definition] => [`examples/${f}`, definitionSchema.parse(unwrapDefinition(JSON.parse(readFileSync(join(examplesDir, f), 'utf8'))))]),
];

const edgesFrom = (chart: ParsedFlowchart, from: string) => chart.edges.filter((e) => e.start === from);
const label = (text: string) => text.replace(/ﬂ°quot¶ß/g, '"');

describe('definition graphs parse as Mermaid flowcharts', () => {
  test('the fixtures cover every step kind', () => {
    const kinds = new Set<string>();
    for (const [, d] of documents) walkSteps(d.steps, '', (s) => kinds.add(s.type));
    assert.deepEqual(
      STEP_TYPES.filter((k) => !kinds.has(k)),
      [],
    );
  });

  for (const [name, definition] of documents) {
    test(`${name}: parses, with a node for every step reachable from start`, async () => {
      const graph = definitionGraph(definition);
      const chart = await parseFlowchart(graph.mermaid);
      assert.equal(chart.type, 'flowchart-v2');
      walkSteps(definition.steps, '', (step) => {
        const node = graph.nodes[step.id];
        assert.ok(node, `no node for step ${step.id}`);
        assert.ok(chart.vertices.has(node), `node ${node} of ${step.id} is not in the parsed chart`);
        assert.ok(label(chart.vertices.get(node)?.text ?? '').startsWith(step.id) || chart.vertices.get(node)?.type === 'circle', `label of ${step.id}`);
      });
      // Every node can be reached from start (nothing dangles).
      const seen = new Set(['start']);
      const queue = ['start'];
      const inside = (id: string) => chart.subgraphs.find((s) => s.id === id)?.nodes ?? [];
      while (queue.length > 0) {
        const at = queue.shift() as string;
        for (const e of edgesFrom(chart, at)) {
          for (const to of [e.end, ...inside(e.end)]) {
            if (!seen.has(to)) {
              seen.add(to);
              queue.push(to);
            }
          }
        }
      }
      for (const id of chart.vertices.keys()) {
        const inRollback = chart.subgraphs.find((s) => s.id === 'rollback')?.nodes.includes(id);
        if (!inRollback) assert.ok(seen.has(id), `${id} (${chart.vertices.get(id)?.text}) is not reachable from start`);
      }
    });
  }
});

describe('what the graph shows', () => {
  const def = (extra: Record<string, unknown>): Definition => definitionSchema.parse({ name: 'g', version: '1.0.0', ...extra });

  test('branches, cases and if are labelled decisions; loops and for_each have their back edges', async () => {
    const definition = def({
      steps: [
        { id: 'gate', type: 'conditional', condition: 'input.x > 1', then: [{ id: 'big', type: 'skill', skill: 'echo' }], else: [{ id: 'small', type: 'skill', skill: 'echo' }] },
        {
          id: 'route',
          type: 'switch',
          value: 'input.kind',
          cases: [{ equals: 'a', steps: [{ id: 'on-a', type: 'set', values: { k: 1 } }] }],
          default: [{ id: 'other', type: 'set', values: { k: 2 } }],
        },
        { id: 'again', type: 'loop', condition: 'k < 3', max_iterations: 5, steps: [{ id: 'bump', type: 'set', values: { k: '${k + 1}' } }] },
        { id: 'each', type: 'for_each', items: 'input.items', steps: [{ id: 'one', type: 'skill', skill: 'echo', if: 'item > 0' }] },
      ],
    });
    const graph = definitionGraph(definition);
    const chart = await parseFlowchart(graph.mermaid);
    const n = graph.nodes;
    assert.equal(chart.vertices.get(n.gate!)?.type, 'diamond');
    assert.deepEqual(edgesFrom(chart, n.gate!).map((e) => [e.end, e.text]).sort(), [
      [n.big, 'then'],
      [n.small, 'else'],
    ]);
    assert.deepEqual(edgesFrom(chart, n.route!).map((e) => label(e.text)).sort(), ['= "a"', 'default']);
    // The loop's body leads back to its condition; the condition's false edge leaves it.
    assert.ok(edgesFrom(chart, n.bump!).some((e) => e.end === n.again && e.text === 'again'));
    assert.ok(edgesFrom(chart, n.again!).some((e) => e.text === 'false or 5 iterations'));
    assert.ok(chart.subgraphs.some((s) => s.nodes.includes(n.again!)));
    // The for_each body (behind its if) goes back for the next item.
    const gate = edgesFrom(chart, n.each!).find((e) => e.text === 'item')?.end;
    assert.equal(chart.vertices.get(gate ?? '')?.type, 'diamond');
    assert.ok(edgesFrom(chart, gate!).some((e) => e.end === n.one && e.text === 'yes'));
    assert.ok(edgesFrom(chart, gate!).some((e) => e.end === n.each && e.text === 'no'));
  });

  test('parallel forks and joins; approvals show approved, rejected and timeout; error paths are dotted', async () => {
    const definition = def({
      steps: [
        {
          id: 'fan',
          type: 'parallel',
          wait_for: 'any',
          steps: [
            { id: 'left', type: 'skill', skill: 'echo' },
            { id: 'right', type: 'skill', skill: 'echo' },
          ],
        },
        { id: 'sign-off', type: 'approval', approvers: { groups: ['finance'] }, timeout: 3600, on_timeout: 'reject' },
        { id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: 'https://example.com' } },
        { id: 'maybe', type: 'skill', skill: 'echo', continue_on_error: true },
      ],
    });
    const graph = definitionGraph(definition);
    const chart = await parseFlowchart(graph.mermaid);
    const n = graph.nodes;
    const join = edgesFrom(chart, n.left!).find((e) => e.stroke === 'normal')?.end;
    assert.ok(join && edgesFrom(chart, n.right!).some((e) => e.end === join));
    assert.equal(chart.vertices.get(n['sign-off']!)?.type, 'hexagon');
    assert.deepEqual(edgesFrom(chart, n['sign-off']!).map((e) => [e.end, e.text]).sort(), [
      ['failed', 'rejected'],
      ['failed', 'timeout 1h'],
      [n.call, 'approved'],
    ]);
    assert.deepEqual(edgesFrom(chart, n.call!).map((e) => [e.end, e.text, e.stroke]).sort(), [
      ['failed', 'on error', 'dotted'],
      [n.maybe, '', 'normal'],
    ]);
    assert.deepEqual(edgesFrom(chart, n.maybe!).map((e) => [e.end, e.text, e.stroke]).sort(), [
      ['done', '', 'normal'],
      ['done', 'on error: skip', 'dotted'],
    ]);
  });

  test('custom handlers and the rollback path: compensations in reverse, then the rollback steps, then failed', async () => {
    const definition = def({
      steps: [
        { id: 'reserve', type: 'skill', skill: 'echo', compensate: [{ id: 'release', type: 'skill', skill: 'echo' }] },
        { id: 'charge', type: 'skill', skill: 'echo', compensate: [{ id: 'refund', type: 'skill', skill: 'echo' }] },
        { id: 'lookup', type: 'skill', skill: 'http-fetch', inputs: { url: 'https://example.com' } },
      ],
      error_handling: {
        default: 'rollback',
        rollback: { enabled: true, steps: ['notify-webhook'] },
        per_step: { lookup: { strategy: 'custom', handler: [{ id: 'fallback', type: 'set', values: { source: 'cache' } }] } },
      },
    });
    const graph = definitionGraph(definition);
    const chart = await parseFlowchart(graph.mermaid);
    const n = graph.nodes;
    const rollback = chart.subgraphs.find((s) => s.id === 'rollback');
    assert.ok(rollback);
    assert.ok(rollback.nodes.includes(n.refund!) && rollback.nodes.includes(n.release!));
    // Every failure of reserve/charge leads into the rollback, which undoes charge first.
    assert.ok(edgesFrom(chart, n.charge!).some((e) => e.end === n.refund && e.stroke === 'dotted'));
    assert.ok(edgesFrom(chart, n.refund!).some((e) => e.end === n.release));
    const last = edgesFrom(chart, n.release!)[0]?.end ?? '';
    assert.match(label(chart.vertices.get(last)?.text ?? ''), /rollback 1: skill notify-webhook/);
    assert.ok(edgesFrom(chart, last).some((e) => e.end === 'failed'));
    // The custom handler runs on error and the run goes on after it.
    assert.ok(edgesFrom(chart, n.lookup!).some((e) => e.end === n.fallback && e.text === 'on error' && e.stroke === 'dotted'));
    assert.ok(edgesFrom(chart, n.fallback!).some((e) => e.end === 'done'));
  });

  test('a run colours each step by its status', async () => {
    const definition = def({ steps: [{ id: 'a', type: 'skill', skill: 'echo' }, { id: 'b', type: 'skill', skill: 'echo' }, { id: 'c', type: 'skill', skill: 'echo', if: 'false' }] });
    const graph = definitionGraph(definition, { a: 'completed', b: 'failed', c: 'skipped' });
    const chart = await parseFlowchart(graph.mermaid);
    assert.deepEqual(chart.vertices.get(graph.nodes.a!)?.classes, ['completed']);
    assert.deepEqual(chart.vertices.get(graph.nodes.b!)?.classes, ['failed']);
    assert.deepEqual(chart.vertices.get(graph.nodes.c!)?.classes, ['skipped']);
  });

  test('step ids that are Mermaid keywords and labels with quotes, brackets and markup stay inside their nodes', async () => {
    const definition = def({
      steps: [
        { id: 'end', type: 'skill', skill: 'echo' },
        { id: 'graph', type: 'conditional', condition: 'input.name == "a[b]" || input.t == "<script>"', then: [{ id: 'subgraph', type: 'set', values: { x_y: 1 } }] },
      ],
    });
    const graph = definitionGraph(definition);
    const chart = await parseFlowchart(graph.mermaid);
    assert.match(label(chart.vertices.get(graph.nodes.graph!)?.text ?? ''), /^graph: input\.name == /);
    assert.ok(!graph.mermaid.includes('<script>'));
    assert.equal(chart.vertices.size, 6);
  });
});
