import type { Command } from 'commander';
import type { ApiClient } from './client.ts';
import { seg } from './client.ts';
import { follow } from './follow.ts';
import { printJson, type Io } from './output.ts';

type Ctx = (command: Command) => { json: boolean; client: () => ApiClient };

/** One lifecycle event as a line: time, type, step, what happened. */
export function eventLine(e: any): string {
  const d = e.data ?? {};
  const step = d.stepPath ?? d.stepId ?? '';
  const detail =
    e.type === 'workflow.step.failed'
      ? `${d.error?.message ?? ''}${d.error?.attempts ? ` (after ${d.error.attempts} attempt(s))` : ''}${d.continued ? ' (the run went on)' : ''}`
      : e.type === 'workflow.approval.requested'
        ? `${d.summary ?? ''} (quorum ${d.quorum})`
        : e.type === 'workflow.approval.decided'
          ? `${d.status}${d.deciders?.length ? ` by ${d.deciders.map((x: any) => x.principal ?? x).join(', ')}` : ''}`
          : e.type === 'workflow.run.failed'
            ? (d.error?.message ?? '')
            : e.type === 'workflow.run.started'
              ? `by ${d.startedBy ?? '?'} on ${d.lane ?? '?'}`
              : '';
  return `${e.time}  ${e.type.replace(/^workflow\./, '').padEnd(18)}  ${step}${step && detail ? '  ' : ''}${detail}`;
}

/** Fields a worker line carries that say nothing to a reader of one run. */
const QUIET_FIELDS = new Set(['traceId', 'spanId', 'correlationId', 'causationId']);

/** One worker log line, aligned with the events: time, `log <level>`, step, message, key=value fields. */
export function workerLine(l: any): string {
  const fields = Object.entries(l.fields ?? {})
    .filter(([k, v]) => !QUIET_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`);
  const step = `${l.stepId ?? ''}${l.attempt && l.attempt > 1 ? `#${l.attempt}` : ''}`;
  return `${l.time}  ${`log ${l.level}`.padEnd(18)}  ${step}${step ? '  ' : ''}${l.msg}${fields.length ? `  ${fields.join(' ')}` : ''}`;
}

/** Every page of a cursor-paged list. */
async function allPages(api: ApiClient, path: string, key: 'events' | 'lines'): Promise<any[]> {
  const out: any[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await api.get(`${path}${path.includes('?') ? '&' : '?'}limit=1000${after === undefined ? '' : `&after=${after}`}`);
    out.push(...page[key]);
    if (page.next === undefined) return out;
    after = page.next;
  }
}

/**
 * `workflow logs <id>`: the run's lifecycle events and its workers' log lines, merged by time;
 * `--follow` keeps printing both until the run ends.
 */
export function addLogsCommand(program: Command, ctx: Ctx, io: Io): void {
  program
    .command('logs')
    .description('A run\'s lifecycle events and its workers\' log lines: steps starting, completing and failing, approvals, the run\'s end')
    .argument('<runId>')
    .option('--follow', 'keep printing events, retries and log lines until the run ends')
    .option('--level <level>', 'worker lines at this level or above: info, warn, error, fatal', 'info')
    .option('--events-only', 'lifecycle events only, no worker lines')
    .action(async (runId: string, o: { follow?: boolean; level: string; eventsOnly?: boolean }, command: Command) => {
      const { json, client } = ctx(command);
      const api = client();
      const logsPath = `/v1/runs/${seg(runId)}/logs?level=${encodeURIComponent(o.level)}`;
      if (o.follow) {
        await followWithLines(api, runId, io, { json, logsPath: o.eventsOnly ? undefined : logsPath });
        return;
      }
      const events = await allPages(api, `/v1/runs/${seg(runId)}/events`, 'events');
      const lines = o.eventsOnly ? [] : await allPages(api, logsPath, 'lines');
      if (json) return printJson(io, { runId, events, ...(o.eventsOnly ? {} : { lines }) });
      const merged = [...events.map((e) => ({ at: e.time, text: eventLine(e) })), ...lines.map((l) => ({ at: l.time, text: workerLine(l) }))];
      // Stable: an event and a line of the same millisecond keep events first.
      merged.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      if (merged.length === 0) io.stdout.write('(no events yet)\n');
      for (const m of merged) io.stdout.write(`${m.text}\n`);
    });
}

/** How often `--follow` asks for new worker lines. */
const POLL_MS = 1000;

async function followWithLines(api: ApiClient, runId: string, io: Io, options: { json: boolean; logsPath: string | undefined }): Promise<void> {
  const asJson = options.json || !io.stderr.isTTY;
  let after: number | undefined;
  const printNew = async () => {
    if (!options.logsPath) return;
    for (;;) {
      const page = await api.get(`${options.logsPath}&limit=1000${after === undefined ? '' : `&after=${after}`}`);
      for (const l of page.lines) io.stdout.write(asJson ? `${JSON.stringify({ type: 'log', ...l })}\n` : `${workerLine(l)}\n`);
      if (page.lines.length > 0) after = page.lines.at(-1).id;
      if (page.next === undefined) return;
    }
  };
  let done = false;
  const poller = (async () => {
    while (!done) {
      await printNew().catch(() => undefined);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  try {
    await follow(api, runId, io, { json: options.json, logs: true, logLine: eventLine });
  } finally {
    done = true;
    await poller;
  }
  // Workers write their lines in batches (every 250 ms): the run's last ones may land after its end.
  await new Promise((r) => setTimeout(r, 600));
  await printNew();
}
