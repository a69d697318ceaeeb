import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { CliError, EXIT } from './client.ts';

/** Reads a definition (JSON, or YAML by extension) from a file, or `-` for stdin. */
export function readDefinitionFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`, EXIT.usage);
  }
  try {
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(error as Error).message}`, EXIT.usage);
  }
}

/**
 * A set that holds every name: offline, the CLI does not know the installation's skills, agents,
 * models, lanes or registered definitions, so those checks are left to the server (`--remote`).
 */
function anyName(): ReadonlySet<string> {
  const base = new Set<string>();
  return new Proxy(base, {
    get(target, property) {
      if (property === 'has') return () => true;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const OFFLINE: ValidationContext = {
  skills: anyName(),
  integrations: anyName(),
  agents: anyName(),
  definitions: anyName(),
  lanes: { includes: () => true, join: () => '(any)' } as unknown as readonly string[],
};

export interface ValidationOutcome {
  valid: boolean;
  errors: Array<{ path: string; message: string; stepId?: string }>;
}

/** The same validator the API runs (interpreter/validate.ts), without the installation's catalog. */
export function validateOffline(document: unknown): ValidationOutcome {
  const result = validateDefinition(document, OFFLINE);
  return result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.problems };
}

/** Parses `--input`: JSON text, else a file holding JSON (or YAML by extension). */
export function parseInput(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return readDefinitionFile(value.startsWith('@') ? value.slice(1) : value);
  }
}
