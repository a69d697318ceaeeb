import type { Pool } from './db.ts';
import type { Logger } from './logger.ts';
import type { AttemptSample } from './metrics-activity.ts';

/** One model request as `model.generate` ended it (activities/models/generate.ts). */
export interface ModelRequestSample {
  at: Date;
  lane: string;
  requested: string;
  /** The route that answered (or the last one tried). */
  route?: string;
  provider?: string;
  /** Whether the chain's first route is a cloud route, and whether the one that answered is. */
  firstCloud: boolean;
  cloud: boolean;
  fellBack: boolean;
  outcome: string;
  latencyMs: number;
  tokensPerSecond?: number;
}

let modelSink: ((sample: ModelRequestSample) => void) | undefined;

/** Called by `model.generate` at the end of every request; a no-op unless a writer listens. */
export function recordModelRequest(sample: ModelRequestSample): void {
  modelSink?.(sample);
}

/**
 * Writes the samples the SLO report reads (tables step_attempts and model_requests, migration
 * 1796420000000) in batches: every `flushMs`, or sooner once `maxBuffered` are waiting. Losing a
 * batch (the database down) loses samples, never work: a failed write is logged and dropped, and
 * the buffer is bounded, so a worker never grows or blocks on it.
 */
export class SloSampleWriter {
  private attempts: AttemptSample[] = [];
  private models: ModelRequestSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly sink = (s: ModelRequestSample) => this.push(this.models, s);

  constructor(
    readonly pool: Pool,
    private readonly logger: Logger,
    private readonly options: { flushMs?: number; maxBuffered?: number } = {},
  ) {}

  start(): this {
    this.timer = setInterval(() => void this.flush(), this.options.flushMs ?? 2000);
    this.timer.unref();
    modelSink = this.sink;
    return this;
  }

  attempt = (sample: AttemptSample): void => this.push(this.attempts, sample);

  private push<T>(buffer: T[], sample: T): void {
    const max = this.options.maxBuffered ?? 5000;
    if (buffer.length >= max) return;
    buffer.push(sample);
    if (buffer.length >= Math.min(500, max)) void this.flush();
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const attempts = this.attempts.splice(0);
    const models = this.models.splice(0);
    if (attempts.length === 0 && models.length === 0) return;
    this.flushing = this.write(attempts, models)
      .catch((error: unknown) => this.logger.warn({ err: (error as Error).message, attempts: attempts.length, models: models.length }, 'SLO samples not written'))
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(attempts: AttemptSample[], models: ModelRequestSample[]): Promise<void> {
    if (attempts.length > 0) {
      await this.pool.query(
        `INSERT INTO step_attempts (at, lane, kind, task_queue, activity, priority, wait_ms, duration_ms, outcome)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::integer[], $8::integer[], $9::text[])`,
        [
          attempts.map((a) => a.at.toISOString()),
          attempts.map((a) => a.lane),
          attempts.map((a) => a.kind),
          attempts.map((a) => a.taskQueue),
          attempts.map((a) => a.activity),
          attempts.map((a) => a.priority),
          attempts.map((a) => Math.round(a.waitMs)),
          attempts.map((a) => Math.round(a.durationMs)),
          attempts.map((a) => a.outcome),
        ],
      );
    }
    if (models.length > 0) {
      await this.pool.query(
        `INSERT INTO model_requests (at, lane, requested, route, provider, first_cloud, cloud, fell_back, outcome, latency_ms, tokens_per_second)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::boolean[], $8::boolean[], $9::text[], $10::integer[], $11::real[])`,
        [
          models.map((m) => m.at.toISOString()),
          models.map((m) => m.lane),
          models.map((m) => m.requested),
          models.map((m) => m.route ?? null),
          models.map((m) => m.provider ?? null),
          models.map((m) => m.firstCloud),
          models.map((m) => m.cloud),
          models.map((m) => m.fellBack),
          models.map((m) => m.outcome),
          models.map((m) => Math.round(m.latencyMs)),
          models.map((m) => m.tokensPerSecond ?? null),
        ],
      );
    }
  }

  /** Writes what is buffered and stops the timer. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (modelSink === this.sink) modelSink = undefined;
    await this.flush();
    await this.flushing;
  }
}
