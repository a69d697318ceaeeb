import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { catalogNames, createActivityCatalog, outputContracts } from '../../activities/catalog.ts';
import type { Definition } from '../../interpreter/schema.ts';
import { validateDefinition } from '../../interpreter/validate.ts';
import { goldenDefinitions } from '../replay/golden.ts';

/** Every definition the docs and the README hand to users validates against the real registry. */
const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
// Declared outputs and reads of them are checked against the registered output schemas too.
const ctx = { ...catalogNames(catalog), lanes: ['prod-critical', 'experimental'], outputs: outputContracts(catalog) };

const examplesDir = fileURLToPath(new URL('../../docs/examples', import.meta.url));
for (const file of readdirSync(examplesDir).filter((f) => f.endsWith('.json'))) {
  test(`docs/examples/${file} validates`, () => {
    const result = validateDefinition(JSON.parse(readFileSync(join(examplesDir, file), 'utf8')), ctx);
    assert.deepEqual(result.ok ? [] : result.problems, []);
  });
}

// Golden definitions, with the child definitions their sub_workflow steps call (<name>.children.json)
// registered alongside; goldenDefinitions() also checks the sidecar files' names and run options.
for (const golden of goldenDefinitions()) {
  const definitions = new Set(golden.children.map((c) => `${(c as Definition).name}@${(c as Definition).version}`));
  const documents: Array<[string, unknown]> = [
    [`${golden.name}.json`, golden.definition],
    ...golden.children.map((c, i): [string, unknown] => [`${golden.name}.children.json[${i}]`, c]),
  ];
  for (const [label, document] of documents) {
    test(`test/fixtures/golden/${label} validates`, () => {
      // The registry agents a golden pins for its run (<name>.run.json `agents`) are known too.
      const agents = new Set([...ctx.agents, ...Object.keys(golden.run.agents ?? {})]);
      const result = validateDefinition(document, { ...ctx, agents, definitions });
      assert.deepEqual(result.ok ? [] : result.problems, []);
    });
  }
}

test('the README registers docs/examples/hello.json and starts it by name', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  assert.match(readme, /-d @docs\/examples\/hello\.json/);
  const hello = JSON.parse(readFileSync(fileURLToPath(new URL('../../docs/examples/hello.json', import.meta.url)), 'utf8'));
  assert.match(readme, new RegExp(`"definition": "${hello.name}"`));
});
