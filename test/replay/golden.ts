import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden', import.meta.url));
export const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/histories', import.meta.url));

/** Golden definitions: each has a committed history recorded by `npm run record-histories`. */
export function goldenDefinitions(): Array<{ name: string; definition: unknown }> {
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: basename(f, '.json'), definition: JSON.parse(readFileSync(join(GOLDEN_DIR, f), 'utf8')) as unknown }));
}

/** Input each golden run receives. */
export const GOLDEN_INPUT = { customer: 'ada' };
