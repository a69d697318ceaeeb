import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isHostAllowed } from '../../activities/skills/http-fetch.ts';

const allowed = (url: string, list: readonly string[]) => isHostAllowed(new URL(url), list);

describe('isHostAllowed', () => {
  test('an exact host matches on any port and path', () => {
    const list = ['api.example.com'];
    assert.equal(allowed('https://api.example.com/data', list), true);
    assert.equal(allowed('http://api.example.com/data?x=1', list), true);
    assert.equal(allowed('https://api.example.com:8443/', list), true);
  });

  test('an exact host does not match other hosts, subdomains or parents', () => {
    const list = ['api.example.com'];
    for (const url of [
      'https://example.com/',
      'https://v2.api.example.com/',
      'https://api.example.com.evil.net/',
      'https://evilapi.example.com/',
      'https://api.example.co/',
    ]) {
      assert.equal(allowed(url, list), false, url);
    }
  });

  test('userinfo in the URL does not fool the check', () => {
    assert.equal(allowed('https://api.example.com@evil.net/', ['api.example.com']), false);
    assert.equal(allowed('https://evil.net@api.example.com/', ['api.example.com']), true);
  });

  test('host:port restricts the port', () => {
    const list = ['api.example.com:8443'];
    assert.equal(allowed('https://api.example.com:8443/x', list), true);
    assert.equal(allowed('https://api.example.com:9443/x', list), false);
    assert.equal(allowed('https://api.example.com/x', list), false);
  });

  test('default ports: 443 for https, 80 for http', () => {
    assert.equal(allowed('https://api.example.com/', ['api.example.com:443']), true);
    assert.equal(allowed('http://api.example.com/', ['api.example.com:443']), false);
    assert.equal(allowed('http://api.example.com/', ['api.example.com:80']), true);
    assert.equal(allowed('https://api.example.com/', ['api.example.com:80']), false);
    // An explicit default port is the same URL.
    assert.equal(allowed('https://api.example.com:443/', ['api.example.com:443']), true);
    assert.equal(allowed('http://api.example.com:80/', ['api.example.com:80']), true);
  });

  test('*.example.com matches subdomains but not the domain itself or look-alikes', () => {
    const list = ['*.example.com'];
    assert.equal(allowed('https://sub.example.com/', list), true);
    assert.equal(allowed('https://a.b.example.com/', list), true);
    assert.equal(allowed('https://example.com/', list), false);
    assert.equal(allowed('https://evil-example.com/', list), false);
    assert.equal(allowed('https://evilexample.com/', list), false);
    assert.equal(allowed('https://sub.example.com.evil.net/', list), false);
    assert.equal(allowed('https://example.com.sub/', list), false);
  });

  test('a wildcard with a port restricts the port', () => {
    const list = ['*.example.com:8443'];
    assert.equal(allowed('https://sub.example.com:8443/', list), true);
    assert.equal(allowed('https://sub.example.com/', list), false);
  });

  test('IPv6 [::1]:8080', () => {
    const list = ['[::1]:8080'];
    assert.equal(allowed('http://[::1]:8080/health', list), true);
    assert.equal(allowed('http://[::1]:8081/health', list), false);
    assert.equal(allowed('http://[::1]/health', list), false);
    assert.equal(allowed('http://[::2]:8080/health', list), false);
    assert.equal(allowed('http://127.0.0.1:8080/health', list), false);
  });

  test('IPv6 without a port matches any port', () => {
    assert.equal(allowed('http://[::1]:9000/', ['[::1]']), true);
    assert.equal(allowed('http://[::1]/', ['[::1]']), true);
  });

  test('IPv4 hosts and localhost are only reachable when listed', () => {
    assert.equal(allowed('http://127.0.0.1:8080/', ['127.0.0.1:8080']), true);
    assert.equal(allowed('http://127.0.0.1:8080/', ['localhost:8080']), false);
    assert.equal(allowed('http://localhost/', ['api.example.com']), false);
    assert.equal(allowed('http://169.254.169.254/latest/meta-data', ['*.example.com', 'api.example.com']), false);
  });

  test('matching is case-insensitive on both sides', () => {
    assert.equal(allowed('https://API.Example.COM/', ['api.example.com']), true);
    assert.equal(allowed('https://api.example.com/', ['API.EXAMPLE.COM']), true);
    assert.equal(allowed('https://Sub.Example.com/', ['*.EXAMPLE.com']), true);
  });

  test('an empty list denies everything', () => {
    for (const url of ['https://api.example.com/', 'http://localhost/', 'http://[::1]:8080/', 'http://127.0.0.1/']) {
      assert.equal(allowed(url, []), false, url);
    }
  });

  test('any matching entry in a longer list allows', () => {
    const list = ['one.example.org', '*.example.com', 'localhost:3000'];
    assert.equal(allowed('http://localhost:3000/', list), true);
    assert.equal(allowed('https://x.example.com/', list), true);
    assert.equal(allowed('https://one.example.org/', list), true);
    assert.equal(allowed('http://localhost:3001/', list), false);
    assert.equal(allowed('https://two.example.org/', list), false);
  });
});
