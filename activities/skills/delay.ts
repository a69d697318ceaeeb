import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineSkill } from './skill.ts';

/** How long the skill may wait; longer waits belong to the `wait` step (a durable timer). */
export const MAX_DELAY_SECONDS = 3600;

/**
 * Waits inside an activity, heartbeating every second so a cancelled run stops it at once. For
 * pacing calls to an external system (e.g. before polling again); a pause in the run itself is the
 * `wait` step, which costs no worker slot.
 */
export const delaySkill = defineSkill({
  name: 'delay',
  description:
    `Waits \`seconds\` (at most ${MAX_DELAY_SECONDS}) inside an activity, heartbeating; cancelling the run stops it. ` +
    'Returns {waited_seconds}. Set the step timeout above `seconds` (default 3600). For long pauses use the wait step.',
  input: z.strictObject({ seconds: z.number().min(0).max(MAX_DELAY_SECONDS) }),
  output: z.object({ waited_seconds: z.number() }),
  sideEffects: false,
  defaults: { timeoutSeconds: MAX_DELAY_SECONDS + 60, retry: { maxAttempts: 3 } },
  async handler(input, ctx) {
    const started = Date.now();
    const end = started + input.seconds * 1000;
    for (let now = Date.now(); now < end; now = Date.now()) {
      // Aborts with the activity's cancellation; the wrapper reports it.
      await sleep(Math.min(1000, end - now), undefined, { signal: ctx.signal });
      ctx.heartbeat({ remaining_seconds: Math.max(0, Math.round((end - Date.now()) / 1000)) });
    }
    return { waited_seconds: Math.round((Date.now() - started) / 100) / 10 };
  },
});
