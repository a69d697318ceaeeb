import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { ApiKeyStore, apiKeysSchema, authenticate, loadApiKeys, principalOf, requireRole, type Principal, type Role } from '../../api/auth.ts';
import { HttpProblem } from '../../api/problem.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdef';
const SUBMIT_KEY = 'submit-key-0123456789abcdef';
const HASHED_KEY = 'hashed-key-0123456789abcdef';
const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex');

const entries = [
  { key: ADMIN_KEY, principal: 'alice', roles: ['admin'], tenant: 'acme', groups: ['ops'] },
  { key: SUBMIT_KEY, principal: 'bob', roles: ['submit'] },
  { sha256: sha256Hex(HASHED_KEY), principal: 'carol', roles: ['approve', 'submit'], tenant: 'globex' },
];

const work = mkdtempSync(join(tmpdir(), 'auth-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

function keysFile(name: string, content: string): string {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
}

function loadError(source: Parameters<typeof loadApiKeys>[0]): Error {
  try {
    loadApiKeys(source);
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail('loadApiKeys should have thrown');
}

describe('ApiKeyStore / loadApiKeys', () => {
  const store = loadApiKeys({ API_KEYS: JSON.stringify(entries) });

  test('loads every entry', () => {
    assert.equal(store.size, 3);
  });

  test('a plain key resolves to its principal, with defaults for tenant and groups', () => {
    assert.deepEqual(store.resolve(ADMIN_KEY), { principal: 'alice', roles: ['admin'], tenant: 'acme', groups: ['ops'] });
    assert.deepEqual(store.resolve(SUBMIT_KEY), { principal: 'bob', roles: ['submit'], tenant: 'default', groups: [] });
  });

  test('a sha256 entry resolves from the key itself', () => {
    assert.equal(store.resolve(HASHED_KEY)?.principal, 'carol');
    assert.equal(store.resolve(HASHED_KEY)?.tenant, 'globex');
  });

  test('the digest itself is not a key', () => {
    assert.equal(store.resolve(sha256Hex(HASHED_KEY)), undefined);
  });

  test('wrong, empty, near-miss and differently-sized keys resolve to undefined', () => {
    for (const key of ['nope', '', `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1), ADMIN_KEY.toUpperCase(), 'x'.repeat(10_000)]) {
      assert.equal(store.resolve(key), undefined, key);
    }
  });

  test('keys load from API_KEYS_FILE', () => {
    const path = keysFile('keys.json', JSON.stringify(entries));
    assert.equal(loadApiKeys({ API_KEYS_FILE: path }).resolve(SUBMIT_KEY)?.principal, 'bob');
  });

  test('API_KEYS wins over API_KEYS_FILE', () => {
    const path = keysFile('other.json', JSON.stringify([{ key: 'file-key-0123456789abcdef', principal: 'file', roles: ['submit'] }]));
    const s = loadApiKeys({ API_KEYS: JSON.stringify(entries), API_KEYS_FILE: path });
    assert.equal(s.resolve('file-key-0123456789abcdef'), undefined);
    assert.equal(s.resolve(ADMIN_KEY)?.principal, 'alice');
  });

  test('no keys configured throws: the API never runs as an open door', () => {
    for (const source of [{}, { API_KEYS: '', API_KEYS_FILE: '' }, { API_KEYS: undefined, API_KEYS_FILE: undefined }]) {
      const error = loadError(source);
      assert.match(error.message, /no API keys configured/);
      assert.match(error.message, /open door/);
    }
  });

  test('an empty list throws', () => {
    assert.match(loadError({ API_KEYS: '[]' }).message, /API_KEYS lists no keys/);
  });

  test('invalid JSON names its origin: the variable or the file path', () => {
    assert.match(loadError({ API_KEYS: '{not json' }).message, /^API_KEYS is not valid JSON/);
    const path = keysFile('broken.json', '[{"key": ');
    const error = loadError({ API_KEYS_FILE: path });
    assert.ok(error.message.startsWith(`${path} is not valid JSON`), error.message);
  });

  test('a missing file throws', () => {
    assert.throws(() => loadApiKeys({ API_KEYS_FILE: join(work, 'does-not-exist.json') }), /ENOENT/);
  });

  test('bad entries give messages with the file path and the entry path', () => {
    const path = keysFile(
      'bad.json',
      JSON.stringify([
        { key: 'short', principal: 'x', roles: ['submit'] },
        { key: SUBMIT_KEY, principal: 'y', roles: ['superuser'] },
        { key: ADMIN_KEY, principal: '', roles: ['admin'] },
        { key: ADMIN_KEY, principal: 'z', roles: ['admin'], extra: true },
      ]),
    );
    const message = loadError({ API_KEYS_FILE: path }).message;
    assert.ok(message.startsWith(`${path}: `), message);
    assert.match(message, /\/0\/key: API keys must be at least 16 characters/);
    assert.match(message, /\/1\/roles\/0: /);
    assert.match(message, /\/2\/principal: /);
    assert.match(message, /\/3: .*extra/);
  });

  test('an entry needs exactly one of key and sha256', () => {
    const both = { key: ADMIN_KEY, sha256: sha256Hex(ADMIN_KEY), principal: 'x', roles: ['admin'] };
    const neither = { principal: 'x', roles: ['admin'] };
    for (const entry of [both, neither]) {
      assert.match(loadError({ API_KEYS: JSON.stringify([entry]) }).message, /exactly one of "key" or "sha256"/);
    }
  });

  test('sha256 must be 64 lower-case hex digits', () => {
    for (const sha256 of ['abc', sha256Hex('x').toUpperCase(), `${sha256Hex('x')}00`]) {
      assert.match(loadError({ API_KEYS: JSON.stringify([{ sha256, principal: 'x', roles: ['admin'] }]) }).message, /\/0\/sha256/);
    }
  });

  test('an entry needs at least one role', () => {
    assert.match(loadError({ API_KEYS: JSON.stringify([{ key: ADMIN_KEY, principal: 'x', roles: [] }]) }).message, /\/0\/roles/);
  });

  test('ApiKeyStore can be built directly from parsed entries', () => {
    const s = new ApiKeyStore(apiKeysSchema.parse([{ key: ADMIN_KEY, principal: 'direct', roles: ['approve'] }]));
    assert.equal(s.resolve(ADMIN_KEY)?.principal, 'direct');
  });
});

// Minimal fakes: the middlewares only use req.principal, req.get and next.
function fakeReq(principal?: Principal, authorization?: string): Request {
  const req = {
    principal,
    get: (name: string) => (name.toLowerCase() === 'authorization' ? authorization : undefined),
  };
  return req as unknown as Request;
}

function drive(middleware: (req: Request, res: Response, next: NextFunction) => void, req: Request): unknown[] {
  const nextCalls: unknown[] = [];
  middleware(req, {} as Response, ((arg?: unknown) => {
    nextCalls.push(arg);
  }) as NextFunction);
  return nextCalls;
}

const principalWith = (...roles: Role[]): Principal => ({ principal: 'p', roles, tenant: 'default', groups: [] });

describe('requireRole', () => {
  test('admin passes any role check', () => {
    assert.deepEqual(drive(requireRole('submit'), fakeReq(principalWith('admin'))), [undefined]);
    assert.deepEqual(drive(requireRole('approve'), fakeReq(principalWith('admin'))), [undefined]);
  });

  test('a principal holding one of the roles passes', () => {
    assert.deepEqual(drive(requireRole('submit', 'approve'), fakeReq(principalWith('approve'))), [undefined]);
  });

  test('others are refused with 403 naming the role', () => {
    const calls = drive(requireRole('approve'), fakeReq(principalWith('submit')));
    assert.equal(calls.length, 1);
    const problem = calls[0];
    assert.ok(problem instanceof HttpProblem);
    assert.equal(problem.status, 403);
    assert.match(problem.detail ?? '', /"approve"/);
  });

  test('requireRole("admin") refuses non-admins', () => {
    const problem = drive(requireRole('admin'), fakeReq(principalWith('submit', 'approve')))[0];
    assert.ok(problem instanceof HttpProblem);
    assert.equal(problem.status, 403);
  });

  test('a request without a principal is refused', () => {
    const problem = drive(requireRole('submit'), fakeReq(undefined))[0];
    assert.ok(problem instanceof HttpProblem);
    assert.ok(problem.status === 401 || problem.status === 403);
  });
});

describe('authenticate', () => {
  const store = loadApiKeys({ API_KEYS: JSON.stringify(entries) });

  test('a valid bearer key sets req.principal', () => {
    const req = fakeReq(undefined, `Bearer ${SUBMIT_KEY}`);
    assert.deepEqual(drive(authenticate(store), req), [undefined]);
    assert.equal(req.principal?.principal, 'bob');
    assert.equal(principalOf(req).principal, 'bob');
  });

  test('the scheme is case-insensitive', () => {
    const req = fakeReq(undefined, `bearer ${ADMIN_KEY}`);
    assert.deepEqual(drive(authenticate(store), req), [undefined]);
    assert.equal(req.principal?.principal, 'alice');
  });

  test('missing, malformed and unknown keys give 401 and no principal', () => {
    for (const header of [undefined, '', ADMIN_KEY, `Basic ${ADMIN_KEY}`, 'Bearer ', 'Bearer wrong-key-0123456789abcdef', `Bearer ${ADMIN_KEY} extra`]) {
      const req = fakeReq(undefined, header);
      const calls = drive(authenticate(store), req);
      assert.equal(calls.length, 1, String(header));
      assert.ok(calls[0] instanceof HttpProblem, String(header));
      assert.equal((calls[0] as HttpProblem).status, 401, String(header));
      assert.equal(req.principal, undefined, String(header));
    }
  });

  test('principalOf throws 401 for an unauthenticated request', () => {
    assert.throws(() => principalOf(fakeReq()), (error: unknown) => error instanceof HttpProblem && error.status === 401);
  });
});
