import { pino } from 'pino';
import type { Pool } from '../../common/db.ts';
import { REDACTED_PATHS, type Logger } from '../../common/logger.ts';

/**
 * The workers' log lines of each run (docs/cli.md "logs", docs/api.md): every line an activity
 * writes at `info` or above through its run's logger (the one that carries `workflowId` and
 * `tenant`) is also kept in `run_logs`, so `GET /v1/runs/{id}/logs` and `workflow logs <id>` show
 * it beside the run's lifecycle events. Bounded three ways: lines per run per worker process,
 * characters per message and per line's fields, and lines waiting in memory while the database is
 * away (the oldest are dropped first, and counted in a warning). Redacted as stdout is (the same
 * pino paths); the API masks declared sensitive values when it serves them.
 */

export const RUN_LOG_LEVELS = ['info', 'warn', 'error', 'fatal'] as const;
export type RunLogLevel = (typeof RUN_LOG_LEVELS)[number];

/** A line as stored and served. */
export interface RunLogLine {
  /** Increasing in the order lines were recorded: the `after` cursor. */
  id: number;
  time: string;
  level: RunLogLevel;
  lane?: string;
  stepId?: string;
  attempt?: number;
  msg: string;
  /** The line's other fields (skill, ms, errorType, traceId, …). */
  fields: Record<string, unknown>;
}

/** A line on its way to the table. */
export interface RunLogRow extends Omit<RunLogLine, 'id'> {
  runId: string;
  tenant: string;
  definition?: string;
  version?: string;
}

const MAX_MSG = 2000;
const MAX_FIELDS = 8000;
/** Bindings every line of a run carries: columns of their own, or not worth repeating per line. */
const COLUMNS = new Set(['level', 'time', 'msg', 'svc', 'workflowId', 'tenant', 'lane', 'stepId', 'attempt', 'definition', 'version', 'family', 'temporalRunId', 'pid', 'hostname']);

export class RunLogStore {
  constructor(private readonly pool: Pool) {}

  async append(rows: readonly RunLogRow[]): Promise<void> {
    if (rows.length === 0) return;
    const col = <T>(pick: (r: RunLogRow) => T) => rows.map(pick);
    await this.pool.query(
      `INSERT INTO run_logs (run_id, tenant, time, level, lane, step_id, attempt, definition, version, msg, fields)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[], $10::text[], $11::jsonb[])`,
      [
        col((r) => r.runId),
        col((r) => r.tenant),
        col((r) => r.time),
        col((r) => r.level),
        col((r) => r.lane ?? null),
        col((r) => r.stepId ?? null),
        col((r) => r.attempt ?? null),
        col((r) => r.definition ?? null),
        col((r) => r.version ?? null),
        col((r) => r.msg),
        col((r) => JSON.stringify(r.fields)),
      ],
    );
  }

  /** A run's lines in recording order, after a cursor, at `minLevel` or above. */
  async forRun(tenant: string, runId: string, options: { after?: number; limit: number; minLevel?: RunLogLevel }): Promise<Array<RunLogLine & { definition?: string; version?: string }>> {
    const levels = RUN_LOG_LEVELS.slice(RUN_LOG_LEVELS.indexOf(options.minLevel ?? 'info'));
    const result = await this.pool.query<Record<string, any>>(
      `SELECT id, time, level, lane, step_id, attempt, definition, version, msg, fields FROM run_logs
       WHERE tenant = $1 AND run_id = $2 AND id > $3 AND level = ANY($4::text[]) ORDER BY id LIMIT $5`,
      [tenant, runId, options.after ?? 0, levels, options.limit],
    );
    return result.rows.map((r) => ({
      id: Number(r.id),
      time: new Date(r.time).toISOString(),
      level: r.level as RunLogLevel,
      ...(r.lane ? { lane: r.lane } : {}),
      ...(r.step_id ? { stepId: r.step_id } : {}),
      ...(r.attempt === null || r.attempt === undefined ? {} : { attempt: Number(r.attempt) }),
      ...(r.definition ? { definition: r.definition, version: r.version } : {}),
      msg: r.msg,
      fields: (r.fields ?? {}) as Record<string, unknown>,
    }));
  }
}

export interface RunLogWriterOptions {
  lane: string;
  /** Lines kept per run by this process; one more line says the rest were not kept. @default 1000 */
  maxPerRun?: number;
  /** Lines held in memory while the table cannot be written; the oldest go first. @default 10000 */
  maxBuffered?: number;
  /** @default 250 */
  flushMs?: number;
}

/** Runs whose line count is tracked (least recently logged forgotten first). */
const TRACKED_RUNS = 10_000;

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

/**
 * Turns one worker process's run log lines into `run_logs` rows, in batches. `logger` is a pino
 * logger at `info` with the platform's redaction whose lines land here (activities/skills/activities.ts
 * tees each attempt's logger into a child of it).
 */
export class RunLogWriter {
  readonly logger: Logger;
  readonly #buffer: RunLogRow[] = [];
  readonly #perRun = new Map<string, number>();
  readonly #maxPerRun: number;
  readonly #maxBuffered: number;
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> | undefined;
  #dropped = 0;

  constructor(
    private readonly store: RunLogStore,
    private readonly options: RunLogWriterOptions,
    private readonly log: Logger,
  ) {
    this.#maxPerRun = options.maxPerRun ?? 1000;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.logger = pino(
      {
        level: 'info',
        base: null,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      },
      { write: (line: string) => this.accept(line) },
    );
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? 250);
    this.#timer.unref();
  }

  /** One serialized line (pino's destination). Lines without a run and tenant are not kept. */
  accept(line: string): void {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const runId = parsed.workflowId;
    const tenant = parsed.tenant;
    if (typeof runId !== 'string' || typeof tenant !== 'string') return;
    const seen = (this.#perRun.get(runId) ?? 0) + 1;
    this.#perRun.delete(runId);
    this.#perRun.set(runId, seen);
    if (this.#perRun.size > TRACKED_RUNS) this.#perRun.delete(this.#perRun.keys().next().value as string);
    if (seen > this.#maxPerRun + 1) return;
    const row = this.#row(parsed, runId, tenant);
    this.#push(
      seen === this.#maxPerRun + 1
        ? { ...row, level: 'warn', msg: `further log lines of this run are not kept by this worker (RUN_LOGS_MAX_PER_RUN=${this.#maxPerRun})`, fields: {} }
        : row,
    );
  }

  #row(parsed: Record<string, unknown>, runId: string, tenant: string): RunLogRow {
    const rest = Object.fromEntries(Object.entries(parsed).filter(([k]) => !COLUMNS.has(k)));
    const text = JSON.stringify(rest);
    const fields = text.length <= MAX_FIELDS ? rest : { truncated: true, keys: Object.keys(rest).slice(0, 50) };
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const level = RUN_LOG_LEVELS.includes(parsed.level as RunLogLevel) ? (parsed.level as RunLogLevel) : 'info';
    return {
      runId,
      tenant,
      time: str(parsed.time) ?? new Date().toISOString(),
      level,
      lane: this.options.lane,
      ...(str(parsed.stepId) ? { stepId: str(parsed.stepId) } : {}),
      ...(typeof parsed.attempt === 'number' ? { attempt: parsed.attempt } : {}),
      ...(str(parsed.definition) ? { definition: str(parsed.definition), version: str(parsed.version) } : {}),
      msg: truncate(str(parsed.msg) ?? '', MAX_MSG),
      fields,
    };
  }

  #push(row: RunLogRow): void {
    this.#buffer.push(row);
    this.#trim();
  }

  /** Drops the oldest lines past the bound, counting them. */
  #trim(): void {
    const over = this.#buffer.length - this.#maxBuffered;
    if (over > 0) {
      this.#buffer.splice(0, over);
      this.#dropped += over;
    }
  }

  /** Writes what is buffered (one batch at a time); on failure the lines wait for the next round. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#buffer.length === 0) return Promise.resolve();
    const batch = this.#buffer.splice(0, 1000);
    this.#flushing = this.store
      .append(batch)
      .catch((error: unknown) => {
        this.#buffer.unshift(...batch);
        this.#trim();
        this.log.warn({ err: error instanceof Error ? error.message : String(error), waiting: this.#buffer.length, dropped: this.#dropped }, 'run log lines not written yet');
      })
      .finally(() => {
        this.#flushing = undefined;
      });
    return this.#flushing;
  }

  /** Lines dropped since start because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Stops the timer and writes what is left (one try per batch). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (let rounds = 0; rounds < 100 && this.#buffer.length > 0; rounds++) {
      const before = this.#buffer.length;
      await this.flush();
      if (this.#buffer.length >= before) break;
    }
    if (this.#buffer.length > 0) this.log.warn({ lost: this.#buffer.length }, 'run log lines not written before the worker stopped');
  }
}

/**
 * A logger that writes every line to `primary` (stdout) and to `secondary` (a RunLogWriter's),
 * children included. Everything else (level, bindings, …) is the primary's.
 */
export function teeLogger(primary: Logger, secondary: Logger): Logger {
  const levels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
  return new Proxy(primary, {
    get(target, prop) {
      if (prop === 'child') {
        return (bindings: Record<string, unknown>, options?: Record<string, unknown>) => teeLogger(target.child(bindings, options), secondary.child(bindings, options));
      }
      if (typeof prop === 'string' && levels.has(prop)) {
        return (...args: unknown[]) => {
          (secondary as any)[prop](...args);
          (target as any)[prop](...args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
