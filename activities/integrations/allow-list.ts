import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The host allow-list every external HTTP call is checked against before it connects, and again on
 * every redirect (SSRF guard: only listed hosts are reachable; an empty list denies everything).
 * Entries are `host`, `host:port`, `[ipv6]:port`, `*.domain` (any subdomain, not the domain
 * itself), an IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`). Config: HTTP_FETCH_ALLOWED_HOSTS.
 *
 * A listed name is not enough to reach a private address: the addresses a name resolves to are
 * checked too, as the connection is made (DNS rebinding: a listed name whose DNS answers
 * 127.0.0.1, 10.x or 169.254.169.254). Only public unicast addresses pass on the name alone;
 * loopback, private, link-local, unique-local, CGNAT and every other special range must be listed
 * themselves, as an IP, a CIDR range that holds them, or (loopback only) as `localhost`.
 */

interface Entry {
  host: string;
  port: string | undefined;
  /** Set when the entry is a CIDR range. */
  cidr?: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

function parseEntry(raw: string): Entry {
  const entry = raw.trim().toLowerCase();
  if (entry.includes('/')) {
    try {
      return { host: entry, port: undefined, cidr: ipaddr.parseCIDR(entry) };
    } catch {
      return { host: entry, port: undefined };
    }
  }
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    return { host: entry.slice(1, close), port: entry.slice(close + 2) || undefined };
  }
  // A bare IPv6 address has colons of its own.
  if (ipaddr.IPv6.isValid(entry)) return { host: entry, port: undefined };
  const [host = '', port] = entry.split(':') as [string, string | undefined];
  return { host, port };
}

const defaultPort = (url: URL) => url.port || (url.protocol === 'https:' ? '443' : '80');

/** An address in its plain form (IPv4-mapped IPv6 as IPv4), or undefined when `text` is not an IP. */
function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const bare = text.replace(/^\[|\]$/g, '');
  return ipaddr.isValid(bare) ? ipaddr.process(bare) : undefined;
}

function sameAddress(a: ipaddr.IPv4 | ipaddr.IPv6, b: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return a.kind() === b.kind() && a.toNormalizedString() === b.toNormalizedString();
}

function inRange(address: ipaddr.IPv4 | ipaddr.IPv6, [base, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number]): boolean {
  const plainBase = base.kind() === 'ipv6' && (base as ipaddr.IPv6).isIPv4MappedAddress() ? (base as ipaddr.IPv6).toIPv4Address() : base;
  const plainBits = plainBase === base ? bits : bits - 96;
  if (address.kind() !== plainBase.kind()) return false;
  return address.kind() === 'ipv4' ? (address as ipaddr.IPv4).match(plainBase as ipaddr.IPv4, plainBits) : (address as ipaddr.IPv6).match(plainBase as ipaddr.IPv6, plainBits);
}

export function isHostAllowed(url: URL, allowList: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = defaultPort(url);
  const address = parseAddress(host);
  return allowList.some((raw) => {
    const entry = parseEntry(raw);
    if (entry.cidr) return address !== undefined && inRange(address, entry.cidr);
    if (entry.port !== undefined && entry.port !== port) return false;
    if (entry.host.startsWith('*.')) return host.endsWith(entry.host.slice(1));
    if (host === entry.host) return true;
    const listed = parseAddress(entry.host);
    return address !== undefined && listed !== undefined && sameAddress(address, listed);
  });
}

/** True for addresses the public internet routes (ipaddr.js range `unicast`); false for every special range. */
export function isPublicAddress(text: string): boolean {
  const address = parseAddress(text);
  return address !== undefined && address.range() === 'unicast';
}

/**
 * May a connection go to `addressText` on `port`? Public unicast addresses may (the name was
 * checked against the list already); any other address only when the list names it: the IP
 * itself, a CIDR range holding it, or `localhost` for loopback. An entry with a port lists the
 * address on that port only.
 */
export function isAddressAllowed(addressText: string, port: string, allowList: readonly string[]): boolean {
  const address = parseAddress(addressText);
  if (address === undefined) return false;
  if (address.range() === 'unicast') return true;
  return allowList.some((raw) => {
    const entry = parseEntry(raw);
    if (entry.cidr) return inRange(address, entry.cidr);
    if (entry.port !== undefined && entry.port !== port) return false;
    if (entry.host === 'localhost') return address.range() === 'loopback';
    const listed = parseAddress(entry.host);
    return listed !== undefined && sameAddress(address, listed);
  });
}

/** Whether a URL's host is an IP literal the list does not name while it is not public. */
export function literalAddressRefused(url: URL, allowList: readonly string[]): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (parseAddress(host) === undefined) return undefined;
  return isAddressAllowed(host, defaultPort(url), allowList) ? undefined : host;
}

/** A name resolver: every address of `hostname`. The system's (getaddrinfo) unless a test gives another. */
export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses)));
  });

/** The error a guarded lookup fails a connection with; its `code` is ADDRESS_NOT_ALLOWED. */
export class AddressNotAllowedError extends Error {
  readonly code = 'ADDRESS_NOT_ALLOWED';
  constructor(
    readonly hostname: string,
    readonly address: string,
  ) {
    super(`"${hostname}" resolves to ${address}, a non-public address the allow-list does not name`);
    this.name = 'AddressNotAllowedError';
  }
}

/**
 * A `lookup` for net/tls connections to `port` (undici's `connect` options) that resolves the name
 * and refuses the connection when any of its addresses is not allowed there (isAddressAllowed).
 * Checked at connect time, so the address checked is the address connected to.
 */
export function guardedLookup(allowList: readonly string[], port: string, resolver: Resolver = systemResolver): LookupFunction {
  return ((hostname: string, options: { family?: number | string; all?: boolean }, callback: (...args: unknown[]) => void) => {
    resolver(hostname).then(
      (found) => {
        const wanted = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
        const addresses = wanted === 0 ? found : found.filter((a) => a.family === wanted);
        const refused = addresses.find((a) => !isAddressAllowed(a.address, port, allowList));
        if (addresses.length === 0) {
          callback(Object.assign(new Error(`"${hostname}" has no address`), { code: 'ENOTFOUND' }));
        } else if (refused) {
          callback(new AddressNotAllowedError(hostname, refused.address));
        } else if (options.all) {
          callback(null, addresses);
        } else {
          callback(null, addresses[0]!.address, addresses[0]!.family);
        }
      },
      (error: unknown) => callback(error),
    );
  }) as LookupFunction;
}
