/**
 * Writes the operator doc (seed 001's template, sections 0–13) of definition files:
 *
 *   npm run docs:operator                           docs/examples/fetch-and-analyze.json → docs/workflows/fetch-and-analyze.md
 *   npm run docs:operator -- <file>... [--out <dir>] each file → <dir>/<name>.md (default docs/workflows)
 *
 * The same generator as GET /v1/definitions/{name}/versions/{version}/operator-doc
 * (api/authoring/operator-doc.ts), over this checkout's catalog and the default configuration, so
 * the output does not depend on the machine. A unit test fails when the committed
 * docs/workflows/fetch-and-analyze.md is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogNames, createActivityCatalog, outputContracts } from '../activities/catalog.ts';
import { operatorDoc } from '../api/authoring/operator-doc.ts';
import { definitionHash } from '../api/definitions-store.ts';
import { catalogView } from '../api/routes/catalog.ts';
import { loadConfig } from '../common/config.ts';
import { validateDefinition } from '../interpreter/validate.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DEFAULT_SOURCES = ['docs/examples/fetch-and-analyze.json'];

/** The operator doc of one definition file (a path relative to the repository root). */
export function operatorDocOf(file: string): { name: string; markdown: string } {
  const config = loadConfig({});
  const catalog = createActivityCatalog(config);
  const names = catalogNames(catalog);
  const lanes = config.LANES;
  const defaultLane = config.DEFAULT_LANE ?? (lanes[0] as string);
  const result = validateDefinition(JSON.parse(readFileSync(join(ROOT, file), 'utf8')), { ...names, lanes, outputs: outputContracts(catalog), continueAsNewAfterEvents: config.RUN_CONTINUE_AS_NEW_EVENTS });
  if (!result.ok) throw new Error(`${file} is not a valid definition: ${result.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  const markdown = operatorDoc({
    definition: result.definition,
    plan: result.plan,
    estimate: result.estimate,
    catalog: catalogView(catalog, undefined, names.agents, lanes, defaultLane),
    lane: result.definition.lane ?? defaultLane,
    hash: definitionHash(result.definition),
    source: file,
  });
  return { name: result.definition.name, markdown };
}

function main(argv: string[]): void {
  const files: string[] = [];
  let outDir = 'docs/workflows';
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--out') outDir = argv[++i] ?? outDir;
    else files.push(argv[i] as string);
  }
  for (const file of files.length > 0 ? files : DEFAULT_SOURCES) {
    const { name, markdown } = operatorDocOf(relative(ROOT, join(process.cwd(), file)));
    const target = join(ROOT, outDir, `${name}.md`);
    writeFileSync(target, markdown);
    process.stdout.write(`wrote ${relative(ROOT, target)}\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
