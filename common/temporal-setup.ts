import type { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from './constants.ts';
import type { Logger } from './logger.ts';

const INDEXED_VALUE_TYPE = { Keyword: 2, KeywordList: 7 } as const;

/**
 * Registers the platform's search attributes on a self-hosted server (idempotent). The embedded dev
 * server gets them at launch; Temporal Cloud manages them in its console, so failure only warns.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string, logger: Logger): Promise<void> {
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const known = new Set(Object.keys(existing.customAttributes ?? {}));
    const missing = Object.values(SEARCH_ATTRIBUTES).filter((a) => !known.has(a.name));
    if (missing.length === 0) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((a) => [a.name, INDEXED_VALUE_TYPE[a.type]])),
    });
    logger.info({ added: missing.map((a) => a.name) }, 'search attributes registered');
  } catch (error) {
    logger.warn(
      { err: (error as Error).message, required: Object.values(SEARCH_ATTRIBUTES).map((a) => `${a.name}=${a.type}`) },
      'could not check or register search attributes; register them with `temporal operator search-attribute create`',
    );
  }
}
