import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { ActivityCatalog } from '../../activities/catalog.ts';
import { defineSkill, type SkillSpec } from '../../activities/skills/skill.ts';

/**
 * Implementations registered under the names the user's seed documents use (process-a, cleanup,
 * data-analyzer, forum.post.create, ...) plus a few that fail on purpose. They run in real
 * workers on the real dev server; `calls` records each call, in order, for assertions.
 */
export interface SeedCatalog {
  catalog: Partial<ActivityCatalog>;
  calls: Array<{ name: string; input: any; idempotencyKey: string; attempt: number }>;
}

const anyInput = z.unknown();
const anyOutput = z.unknown();

export function seedCatalog(): SeedCatalog {
  const calls: SeedCatalog['calls'] = [];
  const failuresByKey = new Map<string, number>();
  const spec = (name: string, handler: (input: any, meta: { idempotencyKey: string; attempt: number; signal: AbortSignal }) => Promise<unknown>): SkillSpec =>
    defineSkill({
      name,
      description: `test stand-in for ${name}`,
      input: anyInput,
      output: anyOutput,
      sideEffects: false,
      async handler(input, ctx) {
        calls.push({ name, input, idempotencyKey: ctx.meta.idempotencyKey, attempt: ctx.attempt });
        return handler(input, { idempotencyKey: ctx.meta.idempotencyKey, attempt: ctx.attempt, signal: ctx.signal });
      },
    });
  const skills = [
    spec('process-a', async (input) => ({ processed: 'a', input })),
    spec('process-b', async (input) => ({ processed: 'b', input })),
    spec('process', async () => ({ ok: true })),
    spec('log-error', async () => ({ logged: true })),
    spec('process-item', async (input) => ({ item: input ?? null })),
    spec('cleanup', async (input) => ({ cleaned: true, input })),
    spec('record', async (input) => ({ recorded: input })),
    // Sleeps `ms` (default 5 s) unless cancelled first; cancellation arrives through heartbeats.
    spec('slow', async (input, meta) => {
      await delay(Number(input?.ms ?? 5000), undefined, { signal: meta.signal });
      return { slept: input?.ms ?? 5000 };
    }),
    // Fails with type `Boom`; `times` limits how many attempts per step fail (default: all).
    spec('boom', async (input, meta) => {
      const failed = failuresByKey.get(meta.idempotencyKey) ?? 0;
      if (input?.times === undefined || failed < Number(input.times)) {
        failuresByKey.set(meta.idempotencyKey, failed + 1);
        throw ApplicationFailure.create({ message: `boom #${failed + 1}`, type: input?.type ?? 'Boom', nonRetryable: input?.nonRetryable === true });
      }
      return { recovered: true, attempts: failed + 1 };
    }),
  ];
  const agents = [
    spec('data-analyzer', async (input) => ({ analysis: `analysed ${JSON.stringify(input)}` })),
    spec('forum_summary_agent', async (input) => ({ summary: `summary of ${input?.subject?.title ?? 'nothing'}` })),
  ];
  const integrations = [
    spec('forum.post.create', async (input, meta) => ({ post_id: `post-${input.thread_id}`, content: input.content, idempotencyKey: meta.idempotencyKey })),
  ];
  return { catalog: { skills, agents, integrations }, calls };
}
