import type { Config } from '../../common/config.ts';
import { createHttpFetchSkill } from '../skills/http-fetch.ts';
import type { SkillSpec } from '../skills/skill.ts';

/**
 * Every integration the workers call, on each lane's `integrations` queue. An integration is
 * declared like a skill (name, schemas, side effects, handler) but lives behind the dedicated
 * module that talks to one external system.
 */
export function createIntegrationRegistry(config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'>): SkillSpec[] {
  const http = createHttpFetchSkill(config.HTTP_FETCH_ALLOWED_HOSTS);
  return [
    {
      ...http,
      name: 'http.request',
      description: 'An HTTP request to an allow-listed host, with an idempotency key on writes; same inputs as the http-fetch skill.',
    },
  ];
}
