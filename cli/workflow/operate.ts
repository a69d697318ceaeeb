import type { Command } from 'commander';
import type { ApiClient } from './client.ts';
import { seg } from './client.ts';
import { printJson, printTable, type Io } from './output.ts';

type Ctx = (command: Command) => { json: boolean; client: () => ApiClient };

const pausedText = (lane: any) => (lane.paused ? `paused${lane.pause?.reason ? ` (${lane.pause.reason})` : ''}` : 'running');

/**
 * The operator's commands (docs/OPERATIONS.md): lane status, pause and resume, retry of failed
 * runs. They call the same API routes as curl would and need a key with the `operator` role.
 */
export function addOperateCommands(program: Command, ctx: Ctx, io: Io): void {
  const lanes = program
    .command('lanes')
    .description('Lanes: workers, pollers, backlog, runs in flight and whether each is paused (operator role)')
    .action(async (_o, command: Command) => {
      const { json, client } = ctx(command);
      const body = await client().get('/v1/lanes');
      if (json) return printJson(io, body);
      printTable(
        io,
        ['LANE', 'STATE', 'WORKERS', 'POLLERS', 'BACKLOG', 'OLDEST', 'RUNNING'],
        body.lanes.map((l: any) => [l.lane, pausedText(l), l.workers.length, l.pollers, l.backlog, `${Math.round(l.backlogAgeSeconds)}s`, l.runsInFlight]),
      );
    });
  for (const action of ['pause', 'resume'] as const) {
    lanes
      .command(action)
      .description(action === 'pause' ? 'Pause a lane: no new step of it starts; queued work waits' : 'Resume a paused lane where it stood')
      .argument('<lane>')
      .option('--reason <text>', 'kept in the audit trail and with the queue config')
      .action(async (lane: string, o: { reason?: string }, command: Command) => {
        const { json, client } = ctx(command);
        const { body } = await client().request(`/v1/lanes/${seg(lane)}/${action}`, { method: 'POST', json: o.reason ? { reason: o.reason } : {} });
        if (json) return printJson(io, body);
        io.stdout.write(`${lane}: ${pausedText(body)}, backlog ${body.backlog}\n`);
      });
  }

  program
    .command('retry')
    .description('Retry a failed run from its failed step (or --rerun: as a new run with the same input) (operator role)')
    .argument('<runId>')
    .option('--rerun', 'start a new run of the same version with the same input instead')
    .option('--reason <text>', 'kept in the audit trail and the reset reason')
    .option('--idempotency-key <key>', 'the same key retries once')
    .action(async (runId: string, o: { rerun?: boolean; reason?: string; idempotencyKey?: string }, command: Command) => {
      const { json, client } = ctx(command);
      const { body } = await client().request(`/v1/runs/${seg(runId)}/retry`, {
        method: 'POST',
        json: { mode: o.rerun ? 'rerun' : 'reset', ...(o.reason ? { reason: o.reason } : {}) },
        ...(o.idempotencyKey ? { headers: { 'idempotency-key': o.idempotencyKey } } : {}),
      });
      if (json) return printJson(io, body);
      io.stdout.write(
        body.mode === 'rerun'
          ? `re-run as ${body.newRunId}\n  workflow status ${body.newRunId} --follow\n`
          : `reset ${body.runId} to before step ${body.step ?? '?'} (event ${body.resetToEventId}); it is running again\n  workflow status ${body.runId} --follow\n`,
      );
    });

  program
    .command('slo')
    .description("Seed 003's daily report: queues, success by definition, model fallback and latency, cron health, each SLO's verdict (operator role)")
    .option('--window <window>', 'how far back, e.g. 24h, 90m, 7d', '24h')
    .action(async (o: { window: string }, command: Command) => {
      const { json, client } = ctx(command);
      const body = await client().get(`/v1/reports/slo?window=${encodeURIComponent(o.window)}`);
      if (json) return printJson(io, body);
      printSloReport(io, body);
    });
}

const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v * 1000) / 10}%`);
const sec = (v: number | null) => (v === null ? '-' : `${v}s`);

/** The report as an operator reads it in a terminal: the verdicts first, then the figures behind them. */
function printSloReport(io: Io, r: any): void {
  io.stdout.write(`SLO report ${r.window.from} .. ${r.window.to} (${r.window.spec}), tenant ${r.tenant}; prod lanes: ${r.prodLanes.join(', ') || '(none)'}\n\n`);
  printTable(
    io,
    ['SLO', 'TARGET', 'VALUE', 'VERDICT'],
    r.slos.map((s: any) => [s.objective, s.unit === 'ratio' ? pct(s.target) : `${s.target}s`, s.unit === 'ratio' ? pct(s.value) : sec(s.value), s.verdict]),
  );
  io.stdout.write('\n');
  printTable(
    io,
    ['LANE', 'STATE', 'DEPTH', 'OLDEST', 'WAIT P50', 'WAIT P95', 'SAMPLES'],
    r.queues.map((q: any) => [q.lane, q.paused ? 'paused' : 'running', q.depth, `${Math.round(q.oldestWaitSeconds)}s`, sec(q.wait.p50Seconds), sec(q.wait.p95Seconds), q.wait.samples]),
  );
  io.stdout.write('\n');
  printTable(
    io,
    ['DEFINITION', 'LANE', 'COMPLETED', 'FAILED', 'CANCELLED', 'SUCCESS'],
    r.runs.byDefinition.map((d: any) => [d.definition, d.lane, d.completed, d.failed, d.cancelled, pct(d.successRate)]),
  );
  const m = r.models;
  io.stdout.write(
    `\nmodels: ${m.requests} requests, fallback local -> cloud ${pct(m.fallbackRateLocalToCloud)} (${m.localToCloud} of ${m.localFirst}), ` +
      `latency p50 ${m.latencyMs.p50 ?? '-'} ms p95 ${m.latencyMs.p95 ?? '-'} ms, tokens/s p50 ${m.tokensPerSecond.p50 ?? '-'}\n`,
  );
  io.stdout.write(`cron: ${r.cron.schedules.length} schedule(s), ${r.cron.missedExecutions} missed, ${r.cron.healthy === null ? 'no schedules' : r.cron.healthy ? 'healthy' : 'NOT healthy'}\n`);
  for (const s of r.cron.schedules) {
    io.stdout.write(`  ${s.scheduleId}: ${s.firesInWindow} fired, ${s.failedInWindow} failed, ${s.missedCatchupWindow} missed${s.paused ? ', paused' : ''}${s.healthy ? '' : ' (unhealthy)'}\n`);
  }
}
