/**
 * Parses an HTTP `Retry-After` header (RFC 9110 §10.2.3): either a number of seconds or an
 * HTTP-date. Returns milliseconds to wait, capped at `capMs`, or undefined when the header is absent,
 * malformed or already in the past.
 */
export function parseRetryAfter(header: string | null | undefined, capMs: number, now: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (text === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // Only the RFC's date forms: IMF-fixdate and the two obsolete ones Date.parse also reads.
    if (!/^[A-Za-z]{3},? /.test(text) && !/^[A-Za-z]+day, /.test(text)) return undefined;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return Math.min(ms, capMs);
}
