/**
 * The test command (`npm test`): starts one headless Temporal dev server and builds the workflow
 * bundle once for the whole suite, then runs every test file with node's test runner. Test files
 * find the server through TEST_TEMPORAL_ADDRESS and the bundle through WORKFLOW_BUNDLE_PATH.
 *
 *   npm test                       all tests
 *   npm test -- test/unit          only files under a folder (or name files)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../common/logger.ts';
import { startDevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function testFiles(paths: string[]): string[] {
  const found: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const entry of readdirSync(p).sort()) walk(join(p, entry));
    } else if (p.endsWith('.test.ts')) {
      found.push(relative(ROOT, p));
    }
  };
  for (const p of paths.length > 0 ? paths : ['test']) walk(join(ROOT, p));
  return found;
}

async function main(): Promise<number> {
  const files = testFiles(process.argv.slice(2));
  const logger = createLogger('test', process.env.LOG_LEVEL ?? 'warn');
  const work = mkdtempSync(join(tmpdir(), 'platform-test-'));
  const server = await startDevServer({ cliPath: resolveTemporalCli(), port: await freePort(), headless: true, logger });
  try {
    const bundlePath = join(work, 'workflow-bundle.js');
    const tapPath = join(work, 'results.tap');
    writeFileSync(bundlePath, (await buildWorkflowBundle(logger)).code);
    const env = {
      ...process.env,
      TEST_TEMPORAL_ADDRESS: server.address,
      WORKFLOW_BUNDLE_PATH: bundlePath,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    };
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        // A second reporter to a file, for the closing line's counts.
        '--test-reporter=tap',
        `--test-reporter-destination=${tapPath}`,
        '--test-concurrency=2',
        ...files,
      ],
      { cwd: ROOT, env, stdio: 'inherit' },
    );
    const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
    // The closing line: how many tests ran, and how they ended (from the TAP summary).
    const tap = existsSync(tapPath) ? readFileSync(tapPath, 'utf8') : '';
    const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0);
    process.stdout.write(`\n${count('tests')} tests run: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped (${files.length} files)\n`);
    return code;
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
