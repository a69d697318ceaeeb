/**
 * Writes docs/schema/definition.json: the definition language's JSON Schema, generated from the
 * zod schema (the same document GET /v1/schemas/definition.json serves). A unit test fails when
 * the committed copy is stale: run `npm run schema` after changing interpreter/schema.ts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { definitionJsonSchema } from '../api/app.ts';

export const SCHEMA_FILE = fileURLToPath(new URL('../docs/schema/definition.json', import.meta.url));

export function renderSchema(): string {
  return `${JSON.stringify(definitionJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, renderSchema());
  console.log(`wrote ${SCHEMA_FILE}`);
}
