import { MAX_WAIT_SECONDS } from './steps/parts.ts';

/** Durations as definitions write them: seconds, duration text (`1h30m`) or ISO 8601 (`PT30S`). */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration: seconds as a number, or text such as `1h30m`. */
const ISO_DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * A duration computed at run time, in milliseconds: seconds (a number), duration text (`90s`,
 * `1h30m`) or ISO 8601 (`PT1M30S`, `P1D`). Throws a message for anything else, or a negative or
 * too long wait.
 */
export function runtimeDurationMs(value: unknown): number {
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) ms = Math.round(value * 1000);
  else if (typeof value === 'string') {
    const iso = ISO_DURATION.exec(value);
    if (iso && value !== 'P' && !value.endsWith('T')) {
      const [d, h, m, sec] = iso.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number];
      ms = Math.round((((d * 24 + h) * 60 + m) * 60 + sec) * 1000);
    } else if (/^(\d+(\.\d+)?(ms|s|m|h|d)\s*)+$/.test(value)) ms = durationMs(value);
  }
  if (ms === undefined) throw new Error(`${JSON.stringify(value)} is not a duration (seconds, text such as "90s", or ISO 8601 such as "PT30S")`);
  if (ms < 0) throw new Error(`the duration ${JSON.stringify(value)} is negative`);
  if (ms > MAX_WAIT_SECONDS * 1000) throw new Error(`the wait is longer than ${MAX_WAIT_SECONDS / 86_400} days`);
  return ms;
}

export function durationMs(duration: number | string): number {
  if (typeof duration === 'number') return Math.round(duration * 1000);
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000);
  return Math.round(total);
}
