import type { Config } from '../../common/config.ts';

/** Loopback receivers, allowed only where WEBHOOK_ALLOW_LOOPBACK says so (the embedded platform). */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The hosts webhook URLs may point at: WEBHOOK_ALLOWED_HOSTS, plus loopback when
 * WEBHOOK_ALLOW_LOOPBACK is set. Empty means none: an admin key cannot make the API POST to an
 * arbitrary (internal) address unless an operator listed it.
 */
export function webhookAllowList(config: Pick<Config, 'WEBHOOK_ALLOWED_HOSTS' | 'WEBHOOK_ALLOW_LOOPBACK'>): string[] {
  return [...config.WEBHOOK_ALLOWED_HOSTS, ...(config.WEBHOOK_ALLOW_LOOPBACK ? LOOPBACK_HOSTS : [])];
}
