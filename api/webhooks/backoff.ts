/** How long to wait before attempt `attempt + 1` of a webhook delivery. */
export interface RetryPolicy {
  /** Delay after the first failed attempt, before jitter. */
  baseMs: number;
  /** No delay exceeds this, jitter and Retry-After included. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": after the n-th failed attempt the nominal delay is
 * base·2^(n-1), capped at max, and the actual delay is uniformly drawn from [nominal/2, nominal],
 * so receivers recovering from an outage are not hit by every sender at once. A receiver's
 * Retry-After (seconds) is honoured as a lower bound, still capped at max.
 */
export function retryDelayMs(failedAttempts: number, policy: RetryPolicy, random: () => number = Math.random, retryAfterMs?: number): number {
  const exponent = Math.max(0, failedAttempts - 1);
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(exponent, 52));
  const jittered = Math.round(nominal / 2 + random() * (nominal / 2));
  return Math.min(policy.maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** Parses a Retry-After header (delta-seconds or an HTTP date) to milliseconds from `now`. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
