import type { Config } from '../../common/config.ts';
import { createHttpClient, createHttpFetchSkill } from '../skills/http-fetch.ts';
import type { SkillSpec } from '../skills/skill.ts';

/**
 * Every integration the workers call, on each lane's `integrations` queue. An integration is
 * declared like a skill (name, schemas, side effects, defaults, handler) but talks to an external
 * system only through a dedicated module: HTTP through ./http-client.ts, secrets through
 * ./secrets.ts. Adding one: a file beside this one exporting the spec, plus one line below.
 */
export function createIntegrationRegistry(config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'>): SkillSpec[] {
  const http = createHttpFetchSkill(createHttpClient(config.HTTP_FETCH_ALLOWED_HOSTS, 'http.request'));
  return [
    {
      ...http,
      name: 'http.request',
      description:
        'An HTTP request to an allow-listed host through the integrations HTTP client; same inputs, output and error types as the http-fetch skill. ' +
        'Writes carry an Idempotency-Key stable across retries; header values may be secret references {"secret": "NAME"}.',
    },
  ];
}
