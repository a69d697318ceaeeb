import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/**
 * The layering (interpreter ← common/contracts ← activities ← workflows ← api, cli) is enforced by
 * lint (eslint.config.js, `layers`), so lint itself is tested: an upward import, even of a type,
 * is refused; the same import downward is fine.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

const typeImport = (from: string, name: string) => `import type { ${name} } from '${from}';\nexport type X = ${name};\n`;

const UPWARD: Array<[string, string]> = [
  ['activities/lint-probe.ts', typeImport('../workflows/types.ts', 'RunInput')],
  ['activities/lint-probe.ts', typeImport('../api/runs-service.ts', 'RunsService')],
  ['interpreter/lint-probe.ts', typeImport('../activities/agents/types.ts', 'AgentDefinition')],
  ['interpreter/lint-probe.ts', typeImport('../workflows/types.ts', 'RunInput')],
  ['workflows/lint-probe.ts', typeImport('../api/runs-service.ts', 'RunsService')],
  ['workflows/lint-probe.ts', typeImport('../workers/lane-worker.ts', 'LaneWorkers')],
  ['api/lint-probe.ts', typeImport('../cli/workflow/client.ts', 'Problem')],
];

test('an upward import is refused, types included', async () => {
  for (const [file, code] of UPWARD) {
    const rules = await ruleIds(code, file);
    assert.ok(rules.includes('no-restricted-imports'), `${JSON.stringify(code)} in ${file} should trip no-restricted-imports, got ${JSON.stringify(rules)}`);
  }
});

test('downward imports pass, and the shared contracts are sandbox-safe for workflows/', async () => {
  const DOWNWARD: Array<[string, string]> = [
    ['activities/lint-probe.ts', typeImport('../interpreter/approvals.ts', 'AuditEntry')],
    ['activities/lint-probe.ts', typeImport('../common/contracts/run-events.ts', 'RunEventsBatch')],
    ['workflows/lint-probe.ts', "import { LIFECYCLE_EVENT_TYPES } from '../common/contracts/run-events.ts';\nexport const x = LIFECYCLE_EVENT_TYPES;\n"],
    ['workflows/lint-probe.ts', typeImport('../activities/agents/types.ts', 'AgentDefinition')],
    ['api/lint-probe.ts', typeImport('../workflows/types.ts', 'RunInput')],
  ];
  for (const [file, code] of DOWNWARD) assert.deepEqual(await ruleIds(code, file), [], `${JSON.stringify(code)} in ${file}`);
});
