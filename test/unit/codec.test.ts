import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultPayloadConverter } from '@temporalio/common';
import {
  CodecError,
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  KEY_ID_METADATA,
  ensureKeyFile,
  loadCodecKeys,
  newKeyEntry,
  parseCodecKeys,
  rotateKeyFile,
} from '../../common/codec.ts';

const converter = new DefaultPayloadConverter();
const text = (bytes: Uint8Array | null | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());
const keyList = (...entries: Array<{ id: string; key: string }>) => parseCodecKeys(JSON.stringify(entries), 'test');

describe('payload codec (AES-256-GCM)', () => {
  const k1 = newKeyEntry();
  const k2 = newKeyEntry();

  test('seals a payload: no plaintext in the data, the key id and encoding in the metadata; opens it back exactly', async () => {
    const codec = new EncryptionCodec(keyList(k1));
    const payload = converter.toPayload({ ssn: '078-05-1120', note: 'hello' });
    const [sealed] = await codec.encode([payload]);
    assert.ok(sealed);
    assert.equal(text(sealed.metadata?.encoding), ENCRYPTED_ENCODING);
    assert.equal(text(sealed.metadata?.[KEY_ID_METADATA]), k1.id);
    assert.ok(!Buffer.from(sealed.data!).toString('latin1').includes('078-05-1120'));
    assert.ok(!Object.values(sealed.metadata ?? {}).some((v) => text(v).includes('json/plain')), 'the original encoding is sealed too');
    const [opened] = await codec.decode([sealed]);
    assert.deepEqual(converter.fromPayload(opened!), { ssn: '078-05-1120', note: 'hello' });
  });

  test('two seals of one value differ (fresh IV); a tampered payload is refused', async () => {
    const codec = new EncryptionCodec(keyList(k1));
    const payload = converter.toPayload('same');
    const [a, b] = await codec.encode([payload, payload]);
    assert.notDeepEqual(Buffer.from(a!.data!), Buffer.from(b!.data!));
    const tampered = { ...a!, data: Uint8Array.from(a!.data!, (byte, i) => (i === 20 ? byte ^ 1 : byte)) };
    await assert.rejects(codec.decode([tampered]), /auth|unable/i);
  });

  test('rotation: the new first key seals, the old one still opens what it sealed; a missing key is a clear error', async () => {
    const before = new EncryptionCodec(keyList(k1));
    const [old] = await before.encode([converter.toPayload('written before rotation')]);
    const after = new EncryptionCodec(keyList(k2, k1));
    assert.equal(after.currentKeyId, k2.id);
    assert.equal(converter.fromPayload((await after.decode([old!]))[0]!), 'written before rotation');
    const [fresh] = await after.encode([converter.toPayload('new')]);
    assert.equal(text(fresh!.metadata?.[KEY_ID_METADATA]), k2.id);
    await assert.rejects(new EncryptionCodec(keyList(k2)).decode([old!]), (e: Error) => e instanceof CodecError && e.message.includes(k1.id));
  });

  test('payloads without the encrypted encoding pass through (runs from before the codec)', async () => {
    const codec = new EncryptionCodec(keyList(k1));
    const plain = converter.toPayload({ a: 1 });
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });

  test('key lists are checked: JSON, 32-byte keys, unique ids', () => {
    assert.throws(() => parseCodecKeys('nope', 'X'), /X: not valid JSON/);
    assert.throws(() => parseCodecKeys('[{"id":"a","key":"c2hvcnQ="}]', 'X'), /32 bytes/);
    assert.throws(() => parseCodecKeys(JSON.stringify([k1, { ...k2, id: k1.id }]), 'X'), /unique/);
    assert.throws(() => parseCodecKeys('[]', 'X'), /at least one key/);
  });

  test('key files: created once with mode 0600, rotated by putting a new key first; env, file and secrets folder are read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codec-keys-'));
    try {
      const path = join(dir, 'data', 'codec-keys.json');
      assert.deepEqual(ensureKeyFile(path), { created: true });
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const first = loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: path })!;
      assert.deepEqual(ensureKeyFile(path), { created: false });
      assert.deepEqual(loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: path }), first);
      const { id } = rotateKeyFile(path);
      const rotated = loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: path })!;
      assert.deepEqual(rotated.map((k) => k.id), [id, first[0]!.id]);
      assert.equal(loadCodecKeys({ PAYLOAD_CODEC_KEYS: JSON.stringify([k1]) })![0]!.id, k1.id);
      writeFileSync(join(dir, 'PAYLOAD_CODEC_KEYS'), readFileSync(path));
      assert.deepEqual(loadCodecKeys({ SECRETS_DIR: dir }), rotated);
      assert.equal(loadCodecKeys({}), undefined);
      assert.throws(() => loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: join(dir, 'missing.json') }), /does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
