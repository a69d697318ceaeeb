import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../../common/logger.ts';
import { teeLogger } from '../platform/run-logs.ts';
import { SecretResolver, redactText, redactValue, type SecretSource } from '../integrations/secrets.ts';
import type { SkillSpec } from './skill.ts';
import type { SkillRequest } from './types.ts';

/** The first detail of a failure when it is a plain object (e.g. the HTTP client's `{status}`). */
function detailsOf(error: ApplicationFailure): Record<string, unknown> {
  const first = error.details?.[0];
  return first !== null && typeof first === 'object' && !Array.isArray(first) ? (first as Record<string, unknown>) : {};
}

export type SkillActivity = (request: SkillRequest) => Promise<unknown>;

function describeZodError(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues.map((i) => `${i.path.length ? `/${i.path.map(String).join('/')}` : '(input)'}: ${i.message}`).join('; ');
}

/**
 * Wraps each skill as a Temporal activity named after it. The wrapper is the boundary: it
 * validates the input with the skill's schema (bad input is not retried), logs with the run's
 * correlation fields, and turns every error into an ApplicationFailure carrying the attempt number
 * so the workflow can report "failed after N attempts".
 */
export interface SkillActivitiesOptions {
  /**
   * Where `{"secret": "NAME"}` references resolve: env `SECRET_<NAME>`, then `<dir>/<NAME>`.
   * @default { env: process.env, dir: process.env.SECRETS_DIR } (workers pass config.SECRETS_DIR)
   */
  secrets?: SecretSource;
  /** Keeps each attempt's lines (info and above) for `GET /v1/runs/{id}/logs` (activities/platform/run-logs.ts). */
  runLogs?: Logger;
}

export function createSkillActivities(skills: readonly SkillSpec[], logger: Logger, options: SkillActivitiesOptions = {}): Record<string, SkillActivity> {
  const secretSource: SecretSource = options.secrets ?? { env: process.env, ...(process.env.SECRETS_DIR ? { dir: process.env.SECRETS_DIR } : {}) };
  const activities: Record<string, SkillActivity> = {};
  for (const skill of skills) {
    activities[skill.name] = async (request: SkillRequest): Promise<unknown> => {
      const ctx = Context.current();
      const { info } = ctx;
      const bindings = {
        // The platform's run id is the workflow id; Temporal's run id changes on continue-as-new.
        workflowId: info.workflowExecution?.workflowId,
        temporalRunId: info.workflowExecution?.runId,
        stepId: request.meta.stepId,
        definition: request.meta.definition,
        version: request.meta.version,
        tenant: request.meta.tenant,
        correlationId: request.meta.correlationId,
        ...(request.meta.causationId ? { causationId: request.meta.causationId } : {}),
        skill: skill.name,
        attempt: info.attempt,
      };
      const log = options.runLogs ? teeLogger(logger.child(bindings), options.runLogs.child(bindings)) : logger.child(bindings);
      const started = Date.now();
      log.info('skill started');
      // Heartbeats are how a cancelled run reaches a running activity (ctx.cancellationSignal);
      // the SDK throttles them and they add no history events.
      const heartbeat = setInterval(() => ctx.heartbeat(), 2000);
      // Secret references resolve here, inside the attempt; what they resolve to is redacted from
      // everything that leaves it (output, error messages), so histories and logs never hold it.
      const secrets = new SecretResolver(secretSource);
      try {
        const parsed = skill.input.safeParse(await secrets.resolve(request.input));
        if (!parsed.success) {
          throw ApplicationFailure.nonRetryable(
            `invalid input for skill "${skill.name}": ${describeZodError(parsed.error)}`,
            'InvalidSkillInput',
          );
        }
        const output = await skill.handler(parsed.data, {
          meta: request.meta,
          logger: log,
          signal: ctx.cancellationSignal,
          attempt: info.attempt,
          heartbeat: (details?: unknown) => ctx.heartbeat(details),
        });
        log.info({ ms: Date.now() - started }, 'skill completed');
        return redactValue(output, secrets.values);
      } catch (error) {
        const redact = (text: string) => redactText(text, secrets.values);
        const failure =
          error instanceof ApplicationFailure
            ? ApplicationFailure.create({
                message: redact(error.message),
                type: error.type ?? 'Error',
                nonRetryable: error.nonRetryable ?? false,
                ...(error.nextRetryDelay === undefined ? {} : { nextRetryDelay: error.nextRetryDelay }),
                details: [redactValue({ ...detailsOf(error), attempt: info.attempt }, secrets.values)],
              })
            : ApplicationFailure.create({
                message: redact(error instanceof Error ? error.message : String(error)),
                type: error instanceof Error ? error.name : 'Error',
                details: [{ attempt: info.attempt }],
              });
        // A definition that declares sensitive values may see one quoted in an error: its message is not logged.
        const message = request.meta.declaresSensitive ? { errWithheld: 'the definition declares sensitive values' } : { err: failure.message };
        log.warn({ ms: Date.now() - started, errorType: failure.type, nonRetryable: failure.nonRetryable, ...message }, 'skill failed');
        throw failure;
      } finally {
        clearInterval(heartbeat);
      }
    };
  }
  return activities;
}
