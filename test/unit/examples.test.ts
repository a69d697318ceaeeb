import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { validateDefinition } from '../../interpreter/validate.ts';

/** Every definition the docs and the README hand to users validates against the real registry. */
const ctx = { ...catalogNames(createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] })), lanes: ['prod-critical', 'experimental'] };

for (const folder of ['docs/examples', 'test/fixtures/golden']) {
  const dir = fileURLToPath(new URL(`../../${folder}`, import.meta.url));
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    test(`${folder}/${file} validates`, () => {
      const result = validateDefinition(JSON.parse(readFileSync(join(dir, file), 'utf8')), ctx);
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
