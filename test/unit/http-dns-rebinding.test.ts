import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import pino from 'pino';
import { isAddressAllowed, isHostAllowed, isPublicAddress, type Resolver } from '../../activities/integrations/allow-list.ts';
import { HttpClient, type HttpCall } from '../../activities/integrations/http-client.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';

/**
 * DNS rebinding (issue 12): a name on the allow-list whose DNS answers a private address must not
 * reach it. The client resolves names itself as each connection is made and refuses non-public
 * addresses the list does not name. The "DNS" here is a resolver that answers what the test says;
 * the servers are real loopback HTTP servers, so a refusal is proven by the request never arriving.
 */

describe('isPublicAddress and isAddressAllowed', () => {
  test('special ranges are not public', () => {
    for (const address of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
    ]) {
      assert.equal(isPublicAddress(address), false, address);
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPublicAddress(address), true, address);
    assert.equal(isPublicAddress('not-an-ip'), false);
  });

  test('a non-public address passes only when listed: the IP, a CIDR range, or localhost for loopback', () => {
    assert.equal(isAddressAllowed('127.0.0.1', '80', ['api.example.com']), false);
    assert.equal(isAddressAllowed('127.0.0.1', '80', ['127.0.0.1']), true);
    assert.equal(isAddressAllowed('127.0.0.1', '80', ['127.0.0.1:80']), true);
    assert.equal(isAddressAllowed('127.0.0.1', '81', ['127.0.0.1:80']), false, 'an entry with a port lists the address on that port only');
    assert.equal(isAddressAllowed('::ffff:127.0.0.1', '80', ['127.0.0.1']), true, 'IPv4-mapped is the IPv4 address');
    assert.equal(isAddressAllowed('127.0.0.1', '80', ['localhost']), true);
    assert.equal(isAddressAllowed('::1', '80', ['localhost:80']), true);
    assert.equal(isAddressAllowed('10.0.0.1', '80', ['localhost']), false, 'localhost lists loopback only');
    assert.equal(isAddressAllowed('10.20.30.40', '443', ['10.0.0.0/8']), true);
    assert.equal(isAddressAllowed('11.0.0.1', '443', ['10.0.0.0/8']), true, 'public anyway');
    assert.equal(isAddressAllowed('192.168.0.1', '443', ['10.0.0.0/8']), false);
    assert.equal(isAddressAllowed('fd12::1', '443', ['fd00::/8']), true);
    assert.equal(isAddressAllowed('fe80::1', '443', ['fd00::/8']), false);
    assert.equal(isAddressAllowed('169.254.169.254', '80', ['*.example.com', 'api.example.com']), false);
    assert.equal(isAddressAllowed('8.8.8.8', '53', []), true, 'the name was checked; a public address passes');
    assert.equal(isAddressAllowed('garbage', '80', ['garbage']), false);
  });

  test('CIDR entries also list IP-literal URLs', () => {
    assert.equal(isHostAllowed(new URL('http://10.1.2.3/x'), ['10.0.0.0/8']), true);
    assert.equal(isHostAllowed(new URL('http://192.168.1.1/x'), ['10.0.0.0/8']), false);
    assert.equal(isHostAllowed(new URL('http://[fd00::5]:8080/x'), ['fd00::/8']), true);
    assert.equal(isHostAllowed(new URL('http://[::ffff:7f00:1]/x'), ['127.0.0.1']), true, 'the same address written as IPv4-mapped IPv6');
  });
});

describe('HttpClient resolves names itself and refuses private answers', () => {
  let server: LoopbackHttp;
  let port: string;
  const clients: HttpClient[] = [];
  const logger = pino({ level: 'silent' });
  before(async () => {
    server = await startLoopbackHttp({
      '/ok': (_req, res) => json(res, 200, { ok: true }),
      '/to-internal': (_req, res) => res.writeHead(302, { location: `http://internal.example:${port}/ok` }).end(),
    });
    port = new URL(server.url).port;
  });
  after(async () => {
    for (const c of clients) await c.close();
    await server.close();
  });

  /** A resolver that answers `answers[name]` and counts the names it was asked. */
  function dns(answers: Record<string, string[]>): Resolver & { asked: string[] } {
    const asked: string[] = [];
    const resolver = async (hostname: string) => {
      asked.push(hostname);
      const found = answers[hostname];
      if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };
    return Object.assign(resolver, { asked });
  }
  const client = (allowedHosts: string[], resolver: Resolver) => {
    const c = new HttpClient({ allowedHosts, resolver, name: 'test' });
    clients.push(c);
    return c;
  };
  const call = (url: string): HttpCall => ({
    method: 'GET',
    url,
    timeoutSeconds: 5,
    sideEffects: false,
    idempotencyKey: 'k',
    correlationId: 'c',
    signal: new AbortController().signal,
    logger,
  });
  const refusedAs = async (promise: Promise<unknown>, pattern: RegExp) => {
    await assert.rejects(promise, (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure, String(error));
      assert.equal(error.type, 'HostNotAllowed');
      assert.equal(error.nonRetryable, true);
      assert.match(error.message, pattern);
      return true;
    });
  };

  test('a listed name that resolves to loopback is refused before any request is sent', async () => {
    const resolver = dns({ 'partner.example': ['127.0.0.1'] });
    const before = server.requests.length;
    await refusedAs(client(['partner.example'], resolver).call(call(`http://partner.example:${port}/ok`)), /partner\.example.*resolves to 127\.0\.0\.1/);
    assert.deepEqual(resolver.asked, ['partner.example']);
    assert.equal(server.requests.length, before, 'the loopback server saw nothing');
  });

  test('metadata, private, link-local and IPv4-mapped answers are refused too, and a mixed answer is refused whole', async () => {
    for (const answer of [['169.254.169.254'], ['10.0.0.7'], ['192.168.1.20'], ['fd00::1'], ['::ffff:127.0.0.1'], ['93.184.216.34', '127.0.0.1']]) {
      const resolver = dns({ 'partner.example': answer });
      await refusedAs(client(['partner.example'], resolver).call(call(`http://partner.example:${port}/ok`)), /resolves to/);
    }
  });

  test('the same name reaches the server once its address is listed (IP, CIDR or localhost)', async () => {
    for (const extra of ['127.0.0.1', `127.0.0.1:${port}`, '127.0.0.0/8', 'localhost']) {
      const resolver = dns({ 'partner.example': ['127.0.0.1'] });
      const result = await client(['partner.example', extra], resolver).call(call(`http://partner.example:${port}/ok`));
      assert.equal(result.status, 200, extra);
      assert.deepEqual(result.data, { ok: true });
    }
    const last = server.requests.at(-1)!;
    assert.equal(last.headers.host, `partner.example:${port}`, 'the request went to the name, over the checked address');
  });

  test('an address listed for another port does not let the name through', async () => {
    const resolver = dns({ 'partner.example': ['127.0.0.1'] });
    await refusedAs(client(['partner.example', '127.0.0.1:1'], resolver).call(call(`http://partner.example:${port}/ok`)), /resolves to 127\.0\.0\.1/);
  });

  test('a redirect to a listed name that resolves privately is refused on that hop', async () => {
    const resolver = dns({ 'internal.example': ['10.1.1.1'] });
    const before = server.requests.length;
    await refusedAs(
      client([`127.0.0.1:${port}`, 'internal.example'], resolver).call(call(`${server.url}/to-internal`)),
      /internal\.example.*resolves to 10\.1\.1\.1/,
    );
    assert.equal(server.requests.length, before + 1, 'only the first hop arrived');
  });

  test('IP-literal URLs: a listed loopback address is reached without DNS; an unlisted private literal is refused', async () => {
    const resolver = dns({});
    const ok = await client([`127.0.0.1:${port}`], resolver).call(call(`${server.url}/ok`));
    assert.equal(ok.status, 200);
    assert.deepEqual(resolver.asked, []);
    await refusedAs(client(['*.example.com'], resolver).call(call('http://10.0.0.1/ok')), /not on the test allow-list/);
  });

  test('a name DNS does not know is a retryable network error, not a refusal', async () => {
    await assert.rejects(client(['nowhere.example'], dns({})).call(call(`http://nowhere.example:${port}/ok`)), (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure);
      assert.equal(error.type, 'NetworkError');
      assert.notEqual(error.nonRetryable, true);
      return true;
    });
  });
});
