import { LIFECYCLE_EVENT_TYPES } from '../../common/contracts/run-events.ts';

/**
 * Which lifecycle events a webhook subscription receives. A pattern is an exact type
 * (`workflow.run.failed`), a prefix ending in `.*` (`workflow.step.*`, `workflow.*`), or `*`.
 * Shared by the store that fans events out and the API that validates subscriptions.
 */

/** True when the event type matches the pattern. */
export function matchesEventPattern(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/** Why a pattern is refused (it matches no lifecycle event type), or undefined when it is fine. */
export function eventPatternProblem(pattern: string): string | undefined {
  if (!/^(\*|[a-z]+(\.[a-z]+)*(\.\*)?)$/.test(pattern)) {
    return `"${pattern}" is not an event type or a pattern like "workflow.step.*"`;
  }
  if (!LIFECYCLE_EVENT_TYPES.some((type) => matchesEventPattern(pattern, type))) {
    return `"${pattern}" matches no lifecycle event type (${LIFECYCLE_EVENT_TYPES.join(', ')})`;
  }
  return undefined;
}

/** What fan-out needs of a subscription. */
export interface SubscriptionFilter {
  tenant: string;
  events: readonly string[];
  /** Definition names; null or undefined = every definition. */
  definitions?: readonly string[] | null;
  enabled: boolean;
}

/** True when the subscription should receive the event (same tenant, a pattern matches, definition filter). */
export function subscriptionWants(subscription: SubscriptionFilter, event: { tenant: string; type: string; definition: string }): boolean {
  if (!subscription.enabled || subscription.tenant !== event.tenant) return false;
  if (subscription.definitions && subscription.definitions.length > 0 && !subscription.definitions.includes(event.definition)) return false;
  return subscription.events.some((pattern) => matchesEventPattern(pattern, event.type));
}
