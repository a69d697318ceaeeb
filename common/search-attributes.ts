import { SearchAttributeType, defineSearchAttributeKey, type SearchAttributePair } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from './constants.ts';

/**
 * Typed keys for the platform's search attributes, for clients and workflows alike (this module
 * imports only sandbox-safe code).
 */
export const SA = {
  definition: defineSearchAttributeKey(SEARCH_ATTRIBUTES.definition.name, SearchAttributeType.KEYWORD),
  version: defineSearchAttributeKey(SEARCH_ATTRIBUTES.version.name, SearchAttributeType.KEYWORD),
  lane: defineSearchAttributeKey(SEARCH_ATTRIBUTES.lane.name, SearchAttributeType.KEYWORD),
  tenant: defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenant.name, SearchAttributeType.KEYWORD),
  startedBy: defineSearchAttributeKey(SEARCH_ATTRIBUTES.startedBy.name, SearchAttributeType.KEYWORD),
  correlationId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.correlationId.name, SearchAttributeType.KEYWORD),
  causationId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.causationId.name, SearchAttributeType.KEYWORD),
  pendingApprovers: defineSearchAttributeKey(SEARCH_ATTRIBUTES.pendingApprovers.name, SearchAttributeType.KEYWORD_LIST),
} as const;

/** The identity every run carries in its search attributes. */
export interface RunAttributes {
  definition: string;
  version: string;
  lane: string;
  tenant: string;
  startedBy: string;
  correlationId: string;
  /** What caused the run: its triggering event, or the parent run of a child. */
  causationId?: string;
}

/**
 * The one search-attribute builder for a run's identity (Temporal Web filters on them; the API
 * checks tenancy and lists by them): the API's starts, child runs and agent runs alike.
 */
export function runSearchAttributePairs(run: RunAttributes): SearchAttributePair[] {
  return [
    { key: SA.definition, value: run.definition },
    { key: SA.version, value: run.version },
    { key: SA.lane, value: run.lane },
    { key: SA.tenant, value: run.tenant },
    { key: SA.startedBy, value: run.startedBy },
    { key: SA.correlationId, value: run.correlationId },
    ...(run.causationId !== undefined ? [{ key: SA.causationId, value: run.causationId }] : []),
  ];
}

/** `Name=Type` pairs for `temporal server start-dev --search-attribute`. */
export function searchAttributeFlags(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).map((a) => `${a.name}=${a.type}`);
}
