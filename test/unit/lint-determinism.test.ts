import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/**
 * The determinism rule is enforced by lint, so lint itself is tested: code that would break replay
 * (built-ins, I/O libraries, clocks, randomness, configuration) is refused in interpreter/ and
 * workflows/, and allowed elsewhere.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function ruleIds(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

const FORBIDDEN: Array<[string, string]> = [
  ["import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", '@typescript-eslint/no-restricted-imports'],
  ["import crypto from 'crypto';\nexport const x = crypto;\n", '@typescript-eslint/no-restricted-imports'],
  ["import pg from 'pg';\nexport const x = pg;\n", '@typescript-eslint/no-restricted-imports'],
  ["import { Client } from '@temporalio/client';\nexport const x = Client;\n", '@typescript-eslint/no-restricted-imports'],
  ["import { createSkillRegistry } from '../activities/skills/registry.ts';\nexport const x = createSkillRegistry;\n", '@typescript-eslint/no-restricted-imports'],
  ['export const now = Date.now();\n', 'no-restricted-properties'],
  ['export const r = Math.random();\n', 'no-restricted-properties'],
  ["import { v4 } from 'uuid';\nexport const id = v4();\n", '@typescript-eslint/no-restricted-imports'],
  ["import { v7 } from 'uuid';\nexport const id = v7();\n", '@typescript-eslint/no-restricted-imports'],
  ["import { randomBytes } from '@noble/hashes/utils';\nexport const b = randomBytes(4);\n", '@typescript-eslint/no-restricted-imports'],
  ['export const d = new Date();\n', 'no-restricted-syntax'],
  ['export const e = process.env.X;\n', 'no-restricted-globals'],
];

for (const folder of ['interpreter', 'workflows']) {
  test(`${folder}/ refuses non-deterministic code`, async () => {
    for (const [code, rule] of FORBIDDEN) {
      const rules = await ruleIds(code, `${folder}/lint-probe.ts`);
      assert.ok(rules.includes(rule), `${JSON.stringify(code)} in ${folder}/ should trip ${rule}, got ${JSON.stringify(rules)}`);
    }
  });
}

test('name-based ids (uuid v5, what uuid() uses) are allowed in the sandboxed folders', async () => {
  assert.deepEqual(await ruleIds("import { v5 } from 'uuid';\nexport const id = v5('a', v5.URL);\n", 'interpreter/lint-probe.ts'), []);
});

test('hashes (@noble/hashes, what hash() uses) are allowed in the sandboxed folders', async () => {
  assert.deepEqual(await ruleIds("import { sha256 } from '@noble/hashes/sha2';\nimport { bytesToHex } from '@noble/hashes/utils';\nexport const h = bytesToHex(sha256(new Uint8Array()));\n", 'interpreter/lint-probe.ts'), []);
});

test('type-only imports of activity modules are allowed in workflows/', async () => {
  const rules = await ruleIds("import type { SkillRequest } from '../activities/skills/types.ts';\nexport type X = SkillRequest;\n", 'workflows/lint-probe.ts');
  assert.deepEqual(rules, []);
});

test('the same code is fine outside the sandboxed folders', async () => {
  const rules = await ruleIds("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\nexport const now = Date.now();\n", 'activities/lint-probe.ts');
  assert.deepEqual(rules, []);
});
