import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
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

/** `Name=Type` pairs for `temporal server start-dev --search-attribute`. */
export function searchAttributeFlags(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).map((a) => `${a.name}=${a.type}`);
}
