import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the platform's own files are, whether it runs from its TypeScript sources (tsx) or from
 * the production build in dist/ (`npm run build`, tsconfig.build.json): modules other code loads by
 * path (a worker's entry, the failure converter, the workflows) take the running form's extension,
 * and files that are not code (migrations, the graph page, the sandbox thread) are read from the
 * checkout, which dist/ does not copy.
 */
const HERE = dirname(fileURLToPath(import.meta.url));

/** True when this process runs the compiled build. */
export const COMPILED = import.meta.url.endsWith('.js');

/** The checkout (or image) root: the folder holding package.json, db/ and .data/. */
export const CHECKOUT_ROOT = resolve(HERE, COMPILED ? '../..' : '..');

/** The root the running modules live under: the checkout, or its dist/. */
export const CODE_ROOT = resolve(HERE, '..');

/** A platform module by its source path (`workflows/index.ts`), in the form this process runs. */
export function modulePath(sourcePath: string): string {
  return join(CODE_ROOT, COMPILED ? sourcePath.replace(/\.ts$/, '.js') : sourcePath);
}

/** A file of the checkout that is not code (`db/migrations`). */
export function checkoutPath(path: string): string {
  return join(CHECKOUT_ROOT, path);
}
