import type { Config } from '../../common/config.ts';
import { codeInlineSkill, codeSessionSkill } from './code.ts';
import { delaySkill } from './delay.ts';
import { echoSkill } from './echo.ts';
import { createHttpClient, createHttpFetchSkill } from './http-fetch.ts';
import { createNotifyWebhookSkill } from './notify-webhook.ts';
import type { SkillSpec } from './skill.ts';
import { transformSkill } from './transform.ts';

/**
 * Every skill the workers run. Adding a skill: write one file beside this one that exports a
 * `defineSkill({...})` (name, description, zod input/output, sideEffects, defaults, handler), then
 * add it to this list; `npm run docs:skills` regenerates docs/skills.md from it.
 */
export function createSkillRegistry(config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'>): SkillSpec[] {
  const http = createHttpClient(config.HTTP_FETCH_ALLOWED_HOSTS, 'http');
  return [
    echoSkill,
    createHttpFetchSkill(http),
    transformSkill,
    delaySkill,
    createNotifyWebhookSkill(http),
    codeInlineSkill,
    codeSessionSkill,
  ];
}

/** Names of the registered skills, for registration-time validation. */
export function skillNames(skills: readonly SkillSpec[]): Set<string> {
  return new Set(skills.map((s) => s.name));
}
