import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { z } from 'zod';

/**
 * Encryption at rest (docs/sensitive-data.md): every payload a client or worker sends to Temporal
 * (workflow and activity inputs and results, signals, updates, queries, memos, failure details)
 * is the protobuf of the original payload sealed with AES-256-GCM. Its metadata names the scheme
 * (`encoding: binary/encrypted`) and the key (`encryption-key-id`), so a rotated-out key still
 * decodes the runs it wrote, and a payload without that encoding (a run from before the codec)
 * passes through unchanged.
 */

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const { temporal } = proto;
const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One key: an id (stored with every payload it seals) and 32 bytes, base64 in files and env. */
export interface CodecKey {
  id: string;
  key: Buffer;
}

const keyFileSchema = z
  .array(
    z.strictObject({
      id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'key ids are 1-64 letters, digits, ".", "_" or "-"'),
      key: z
        .string()
        .refine((k) => Buffer.from(k, 'base64').length === 32, 'a key is 32 bytes, base64-encoded (openssl rand -base64 32)'),
    }),
  )
  .min(1, 'name at least one key')
  .refine((keys) => new Set(keys.map((k) => k.id)).size === keys.length, 'key ids are unique');

/** Thrown for a key list that does not parse, or a payload no configured key opens. */
export class CodecError extends Error {
  override name = 'CodecError';
}

/**
 * Parses a key list: `[{"id": "...", "key": "<base64 of 32 bytes>"}, ...]`. The first key seals
 * new payloads; every key opens the payloads that name it. Rotation puts a new key first.
 */
export function parseCodecKeys(text: string, source: string): CodecKey[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CodecError(`${source}: not valid JSON: ${(error as Error).message}`);
  }
  const parsed = keyFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CodecError(`${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') }));
}

/** A fresh key entry for a key file, with an id that sorts by creation time. */
export function newKeyEntry(now = new Date()): { id: string; key: string } {
  return { id: `k${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`, key: randomBytes(32).toString('base64') };
}

/**
 * The embedded platform's key file, `<DATA_DIR>/codec-keys.json`: created with one key on first
 * start (mode 0600), read as it is afterwards.
 */
export function ensureKeyFile(path: string): { created: boolean } {
  if (existsSync(path)) return { created: false };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify([newKeyEntry()], null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { created: true };
}

/** Rotation: a new key goes first in the file (it seals from now on); the old ones stay to open old runs. */
export function rotateKeyFile(path: string): { id: string } {
  const existing = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as unknown[]) : [];
  parseCodecKeys(JSON.stringify(existing.length > 0 ? existing : [newKeyEntry()]), path);
  const entry = newKeyEntry();
  writeFileSync(path, `${JSON.stringify([entry, ...existing], null, 2)}\n`, { mode: 0o600 });
  return { id: entry.id };
}

export class EncryptionCodec implements PayloadCodec {
  readonly #keys: Map<string, Buffer>;
  readonly #current: CodecKey;

  constructor(keys: readonly CodecKey[]) {
    const first = keys[0];
    if (!first) throw new CodecError('the payload codec needs at least one key');
    this.#current = first;
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** The id of the key that seals new payloads. */
  get currentKeyId(): string {
    return this.#current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(ALGORITHM, this.#current.key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: encoder.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: encoder.encode(this.#current.id) },
        data: new Uint8Array(sealed),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding;
      if (!encoding || decoder.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
      const idBytes = payload.metadata?.[KEY_ID_METADATA];
      const id = idBytes ? decoder.decode(idBytes) : '';
      const key = this.#keys.get(id);
      if (!key) throw new CodecError(`no configured payload key has the id "${id}" (PAYLOAD_CODEC_KEYS); a rotated-out key must stay in the list to read old runs`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new CodecError('an encrypted payload is too short to hold its IV and tag');
      const decipher = createDecipheriv(ALGORITHM, key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** Where a process finds its keys: PAYLOAD_CODEC_KEYS, PAYLOAD_CODEC_KEYS_FILE, or `<SECRETS_DIR>/PAYLOAD_CODEC_KEYS`. */
export interface CodecKeySettings {
  PAYLOAD_CODEC_KEYS?: string | undefined;
  PAYLOAD_CODEC_KEYS_FILE?: string | undefined;
  SECRETS_DIR?: string | undefined;
}

/** The keys configured for this process, or undefined (no codec: payloads go to Temporal as they are). */
export function loadCodecKeys(config: CodecKeySettings): CodecKey[] | undefined {
  if (config.PAYLOAD_CODEC_KEYS) return parseCodecKeys(config.PAYLOAD_CODEC_KEYS, 'PAYLOAD_CODEC_KEYS');
  if (config.PAYLOAD_CODEC_KEYS_FILE) {
    const path = config.PAYLOAD_CODEC_KEYS_FILE;
    if (!existsSync(path)) throw new CodecError(`PAYLOAD_CODEC_KEYS_FILE: ${path} does not exist`);
    return parseCodecKeys(readFileSync(path, 'utf8'), path);
  }
  if (config.SECRETS_DIR) {
    const path = join(config.SECRETS_DIR, 'PAYLOAD_CODEC_KEYS');
    if (existsSync(path)) return parseCodecKeys(readFileSync(path, 'utf8'), path);
  }
  return undefined;
}

/** The payload codecs of a client's or worker's data converter (empty without keys). */
export function payloadCodecs(config: CodecKeySettings): PayloadCodec[] {
  const keys = loadCodecKeys(config);
  return keys ? [new EncryptionCodec(keys)] : [];
}
