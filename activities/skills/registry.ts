import type { Config } from '../../common/config.ts';
import { echoSkill } from './echo.ts';
import { createHttpFetchSkill } from './http-fetch.ts';
import type { SkillSpec } from './skill.ts';

/**
 * Every skill the workers run. Adding a skill: write one file beside this one that exports a
 * `defineSkill({...})`, then add it to this list.
 */
export function createSkillRegistry(config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'>): SkillSpec[] {
  return [echoSkill, createHttpFetchSkill(config.HTTP_FETCH_ALLOWED_HOSTS)];
}

/** Names of the registered skills, for registration-time validation. */
export function skillNames(skills: readonly SkillSpec[]): Set<string> {
  return new Set(skills.map((s) => s.name));
}
