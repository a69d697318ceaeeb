/**
 * The host allow-list every external HTTP call is checked against before it connects, and again on
 * every redirect (SSRF guard: only listed hosts are reachable; an empty list denies everything).
 * Entries are `host`, `host:port`, `[ipv6]:port` or `*.domain` (any subdomain, not the domain
 * itself). Config: HTTP_FETCH_ALLOWED_HOSTS.
 */
export function isHostAllowed(url: URL, allowList: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowList.some((raw) => {
    const entry = raw.toLowerCase();
    const [entryHost = '', entryPort] = entry.startsWith('[')
      ? [entry.slice(1, entry.indexOf(']')), entry.slice(entry.indexOf(']') + 2) || undefined]
      : (entry.split(':') as [string, string | undefined]);
    if (entryPort !== undefined && entryPort !== port) return false;
    if (entryHost.startsWith('*.')) return host.endsWith(entryHost.slice(1));
    return host === entryHost;
  });
}
