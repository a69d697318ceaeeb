import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * Webhook signing secrets at rest: AES-256-GCM with a 32-byte key from WEBHOOK_SECRET_KEY (base64
 * or hex), else from `<DATA_DIR>/webhook-secret.key` (created on first use, mode 0600: the
 * embedded platform's). Every API replica must use the same key, so set WEBHOOK_SECRET_KEY (or mount
 * it as `<SECRETS_DIR>/WEBHOOK_SECRET_KEY`, as docker-compose.yml does) when
 * more than one runs. A sealed value is `v1.<key id>.<iv>.<ciphertext+tag>` (base64url), bound to
 * the subscription id (additional data), so a value copied to another row does not open.
 */
export const SEALED_PREFIX = 'v1.';

export class SecretBox {
  readonly keyId: string;
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error(`the webhook secret key must be 32 bytes (AES-256), not ${key.length}`);
    this.#key = key;
    // A short fingerprint of the key, so a value sealed with another key is named as such.
    this.keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  }

  /**
   * WEBHOOK_SECRET_KEY, else `<SECRETS_DIR>/WEBHOOK_SECRET_KEY` (a Docker/Kubernetes secret mount,
   * shared by every replica), else the data folder's key file (created when missing).
   */
  static fromConfig(config: { WEBHOOK_SECRET_KEY?: string | undefined; SECRETS_DIR?: string | undefined; DATA_DIR: string }): SecretBox {
    if (config.WEBHOOK_SECRET_KEY) return new SecretBox(parseKey(config.WEBHOOK_SECRET_KEY, 'WEBHOOK_SECRET_KEY'));
    if (config.SECRETS_DIR) {
      const mounted = join(config.SECRETS_DIR, 'WEBHOOK_SECRET_KEY');
      if (existsSync(mounted)) return new SecretBox(parseKey(readFileSync(mounted, 'utf8').trim(), mounted));
    }
    const file = resolve(join(config.DATA_DIR, 'webhook-secret.key'));
    try {
      return new SecretBox(parseKey(readFileSync(file, 'utf8').trim(), file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      // Another process created it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    return new SecretBox(parseKey(readFileSync(file, 'utf8').trim(), file));
  }

  static isSealed(value: string): boolean {
    return value.startsWith(SEALED_PREFIX);
  }

  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(boundTo, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${SEALED_PREFIX}${this.keyId}.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  open(value: string, boundTo: string): string {
    const [version, keyId, iv, sealed] = value.split('.');
    if (`${version}.` !== SEALED_PREFIX || !keyId || !iv || !sealed) throw new Error('not a sealed webhook secret');
    if (keyId !== this.keyId) {
      throw new Error(`the webhook secret was sealed with another key (${keyId}; this API has ${this.keyId}): every API replica needs the same WEBHOOK_SECRET_KEY`);
    }
    const bytes = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(boundTo, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8');
  }
}

function parseKey(text: string, source: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error(`${source}: a webhook secret key is 32 bytes, as 64 hex digits or base64 (openssl rand -base64 32)`);
  return key;
}
