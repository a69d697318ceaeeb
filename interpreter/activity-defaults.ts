import type { ActivityCall } from './port.ts';
import { MAX_ATTEMPTS_CAP } from './schema.ts';

/** A skill's registered defaults, applied when a step sets no timeout or retry of its own. */
export interface ActivityDefaults {
  timeoutSeconds?: number;
  retry?: { maxAttempts?: number; initialIntervalSeconds?: number; backoffCoefficient?: number; maxIntervalSeconds?: number };
}

/**
 * Applies a skill's registered timeout and retry (`<family>:<name>` in the registry pinned at the
 * run's start) where its step set none: the workflow's port and the dry run alike.
 */
export function withRegisteredDefaults(call: ActivityCall, registry: Record<string, ActivityDefaults> | undefined): ActivityCall {
  const registered = call.defaulted ? registry?.[`${call.family}:${call.name}`] : undefined;
  if (!registered || !call.defaulted) return call;
  const retry = registered.retry;
  return {
    ...call,
    ...(call.defaulted.timeout && registered.timeoutSeconds !== undefined ? { timeoutSeconds: registered.timeoutSeconds } : {}),
    ...(call.defaulted.retry && retry
      ? {
          retry: {
            ...call.retry,
            ...(retry.maxAttempts !== undefined ? { maxAttempts: Math.min(retry.maxAttempts, MAX_ATTEMPTS_CAP) } : {}),
            ...(retry.initialIntervalSeconds !== undefined ? { initialIntervalSeconds: retry.initialIntervalSeconds } : {}),
            ...(retry.backoffCoefficient !== undefined ? { backoffCoefficient: retry.backoffCoefficient } : {}),
            ...(retry.maxIntervalSeconds !== undefined ? { maxIntervalSeconds: retry.maxIntervalSeconds } : {}),
          },
        }
      : {}),
  };
}
