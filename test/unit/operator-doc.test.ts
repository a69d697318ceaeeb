import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { operatorDocOf } from '../../scripts/write-operator-docs.ts';
import { parseFlowchart } from '../support/mermaid.ts';

/**
 * The generated operator docs (api/authoring/operator-doc.ts): seed 001's sections 0–13, none
 * blank, the facts the platform knows, a TODO with a question for what it does not, and the
 * committed docs/workflows/fetch-and-analyze.md current with its generator.
 */

const EXAMPLES = fileURLToPath(new URL('../../docs/examples/', import.meta.url));
const SECTIONS = [
  '0. Index Entry (for catalog)',
  '1. Problem Statement',
  '2. High-Level Flow',
  '3. Triggers and Inputs',
  '4. Actions and Outputs',
  '5. Failure Modes and Error Handling',
  '6. Idempotency Strategy',
  '7. Job and Queue Model',
  '8. Observability',
  '9. Human-in-the-Loop & Safety',
  '10. Interfaces and Data Contracts',
  '11. Implementation Notes',
  '12. Testing Strategy',
  '13. Rollout and Operations',
];

const docs = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, ...operatorDocOf(`docs/examples/${f}`) }));

test('every docs example gets sections 0–13 in order, none blank, each TODO a question with a subject', async () => {
  assert.ok(docs.length >= 10);
  for (const { file, markdown } of docs) {
    const headings = [...markdown.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(headings, SECTIONS, file);
    // No section or subsection directly followed by the next one: each has content.
    assert.doesNotMatch(markdown, /^## .+\n\n## |^### .+\n\n#{2,3} /m, `${file} has an empty section`);
    for (const todo of markdown.matchAll(/TODO:\s*([^\n|]*)/g)) assert.ok((todo[1] ?? '').trim().length > 10, `${file}: a TODO without its question`);
    const mermaid = /```mermaid\n([\s\S]*?)```/.exec(markdown)?.[1];
    assert.ok(mermaid, file);
    await parseFlowchart(mermaid);
  }
});

test('what the platform knows for certain is filled in: approvers, escalation, compensations, retries, queues', () => {
  const doc = (name: string) => docs.find((d) => d.file === name)?.markdown ?? '';
  const approval = doc('step-approval.json');
  assert.match(approval, /\*\*`sign-off`:\*\* group `finance`, quorum 2, never the run's starter, 1 d to decide \(then escalate\); escalates to `cfo` \(quorum 1, 2 d, then reject\)/);
  assert.match(approval, /Decision points: `sign-off`, `route`/);
  assert.match(approval, /every approval decision and refused attempt is in `GET \/v1\/runs\/\{runId\}\/audit`/);

  const saga = doc('error-handling-saga.json');
  assert.match(saga, /\*\*Rollback path:\*\* compensations newest first: `reserve` \(by `release`\), `charge` \(by `refund`\); then the rollback steps `notify`/);
  assert.match(saga, /\| `ship` \| no retry; fails by design \| the run rolls back/);

  const fetch = doc('fetch-and-analyze.json');
  assert.match(fetch, /\| `fetch-data` \| 3 attempts, exponential backoff \(initial 1 s, coefficient 2, max 30 s\); 30 s per attempt/);
  // echo's registered defaults (10 s per attempt) apply where the step sets no timeout.
  assert.match(fetch, /\| `echo` \(step `analyze`\) \| `prod-critical.skills` \| 10 s per attempt \| pure: safe to repeat \|/);
  assert.match(fetch, /Side effects: none expected: an HTTP read \(GET\)/);
  assert.match(fetch, /\*\*Fields the definition reads:\*\* `input.url`/);
  assert.match(fetch, /TODO: the team or role responsible for this workflow/);
});

test('docs/workflows/fetch-and-analyze.md is what `npm run docs:operator` writes', () => {
  const committed = readFileSync(fileURLToPath(new URL('../../docs/workflows/fetch-and-analyze.md', import.meta.url)), 'utf8');
  assert.equal(committed, docs.find((d) => d.file === 'fetch-and-analyze.json')?.markdown, 'stale: run `npm run docs:operator`');
});
