import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { isPlatformSecretName } from '../../common/constants.ts';

/**
 * Secrets by reference. A definition never holds a secret: where a value is secret it writes
 * `{"secret": "CRM_TOKEN"}` (optionally `{"secret": "CRM_TOKEN", "prefix": "Bearer "}`). The
 * reference travels through the workflow and its history as written; only inside the activity is it
 * replaced by the value, read from the environment variable `SECRET_CRM_TOKEN` or else from the file
 * `<SECRETS_DIR>/CRM_TOKEN` (Docker/Kubernetes secret mounts). Every resolved value is remembered so
 * the activity boundary can redact it from outputs and errors before they reach Temporal.
 */

/** A secret's name: letters, digits, `_`, `.`, `-` (it is a file name too, so no `/` or `..`). */
export const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;

/** Replaces a resolved secret wherever it would be shown. */
export const REDACTED = '[redacted]';

export interface SecretReference {
  secret: string;
  prefix?: string;
}

/** True for `{"secret": "NAME"}` or `{"secret": "NAME", "prefix": "..."}` and nothing else. */
export function isSecretReference(value: unknown): value is SecretReference {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const ref = value as Record<string, unknown>;
  return (
    typeof ref.secret === 'string' &&
    keys.every((k) => k === 'secret' || k === 'prefix') &&
    (ref.prefix === undefined || typeof ref.prefix === 'string')
  );
}

/** The environment variable a secret name reads: `crm-token` → `SECRET_CRM_TOKEN`. */
export function secretEnvName(name: string): string {
  return `SECRET_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

export interface SecretSource {
  env: NodeJS.ProcessEnv;
  /** Folder of secret files (config SECRETS_DIR); unset means environment only. */
  dir?: string;
}

/** Resolves secret references to their values; remembers what it resolved, for redaction. */
export class SecretResolver {
  readonly #source: SecretSource;
  readonly #resolved = new Set<string>();

  constructor(source: SecretSource) {
    this.#source = source;
  }

  /** The values resolved so far (what must never leave the activity). */
  get values(): readonly string[] {
    return [...this.#resolved];
  }

  /** Reads one secret; a missing or unreadable secret is a non-retryable `SecretNotFound`. */
  async read(name: string): Promise<string> {
    if (!SECRET_NAME.test(name) || name.includes('..')) {
      throw ApplicationFailure.nonRetryable(`"${name}" is not a valid secret name (letters, digits, "_", ".", "-")`, 'InvalidSecretReference');
    }
    if (isPlatformSecretName(name)) {
      throw ApplicationFailure.nonRetryable(`"${name}" is the platform's own key file in SECRETS_DIR, not a secret a definition may read`, 'InvalidSecretReference');
    }
    let value = this.#source.env[secretEnvName(name)];
    if ((value === undefined || value === '') && this.#source.dir) {
      try {
        value = (await readFile(join(this.#source.dir, name), 'utf8')).replace(/\r?\n$/, '');
      } catch {
        value = undefined;
      }
    }
    if (value === undefined || value === '') {
      const where = this.#source.dir ? `${secretEnvName(name)} or ${join(this.#source.dir, name)}` : `${secretEnvName(name)} (SECRETS_DIR is not set)`;
      throw ApplicationFailure.nonRetryable(`secret "${name}" is not configured: set ${where}`, 'SecretNotFound');
    }
    this.#resolved.add(value);
    return value;
  }

  /** A copy of `value` with every secret reference replaced by its value. */
  async resolve(value: unknown): Promise<unknown> {
    if (isSecretReference(value)) return `${value.prefix ?? ''}${await this.read(value.secret)}`;
    if (Array.isArray(value)) return Promise.all(value.map((v) => this.resolve(v)));
    if (value !== null && typeof value === 'object') {
      const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await this.resolve(v)] as const));
      return Object.fromEntries(entries);
    }
    return value;
  }
}

/** True when a value holds a secret reference anywhere. */
export function containsSecretReference(value: unknown): boolean {
  if (isSecretReference(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecretReference);
  if (value !== null && typeof value === 'object') return Object.values(value).some(containsSecretReference);
  return false;
}

/** Replaces every occurrence of the given secret values in a string. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** A deep copy of a JSON value with every secret value replaced, in strings and object keys. */
export function redactValue<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redactText(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, inner]) => [redactText(k, secrets), walk(inner)]));
    }
    return v;
  };
  return walk(value) as T;
}
