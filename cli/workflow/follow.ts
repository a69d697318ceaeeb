import { EventSourceParserStream } from 'eventsource-parser/stream';
import ora, { type Ora } from 'ora';
import { ApiClient, CliError, EXIT, seg } from './client.ts';
import { duration, type Io } from './output.ts';

/**
 * `run --follow`, `status --follow`, `logs --follow`: reads the API's progress stream
 * (Server-Sent Events on GET /v1/runs/{id}/events) and shows it. On a terminal the running steps
 * spin in place and each finished step leaves a line; anywhere else every event is one JSON line.
 * Ctrl-C detaches: the run goes on.
 */

export interface StreamEvent {
  event: string;
  data: any;
  id?: string;
}

/** Reads the stream to its end (`end` event), reconnecting from the last lifecycle seq when the connection drops. */
export async function* runStream(client: ApiClient, runId: string, signal: AbortSignal): AsyncGenerator<StreamEvent> {
  let lastSeq: string | undefined;
  let failures = 0;
  for (;;) {
    let response: Response;
    try {
      response = await client.fetch(`/v1/runs/${seg(runId)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastSeq ? { 'last-event-id': lastSeq } : {}) },
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      if (++failures > 5) throw error;
      await new Promise((r) => setTimeout(r, 1000 * failures));
      continue;
    }
    if (!response.ok) {
      // Errors are problem+json: let the ordinary client path format them.
      await response.body?.cancel();
      await client.request(`/v1/runs/${seg(runId)}/events?limit=1`);
      throw new CliError(`the progress stream answered ${response.status}`, EXIT.unavailable);
    }
    if (!response.body) throw new CliError('the progress stream has no body', EXIT.unavailable);
    const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    try {
      for await (const message of events) {
        failures = 0;
        const data = JSON.parse(message.data) as unknown;
        if (message.event === 'lifecycle' && message.id) lastSeq = message.id;
        yield { event: message.event ?? 'message', data, ...(message.id ? { id: message.id } : {}) };
        if (message.event === 'end' || message.event === 'error') return;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (++failures > 5) throw error;
    }
    if (signal.aborted) return;
    // The connection ended without `end` (an API restart): pick up where it was.
    await new Promise((r) => setTimeout(r, 500));
  }
}

function approversText(approvers: { principals?: string[]; groups?: string[] } | undefined): string {
  const parts = [...(approvers?.principals ?? []).map((u) => `${u}`), ...(approvers?.groups ?? []).map((g) => `group ${g}`)];
  return parts.join(', ') || 'any approver';
}

/** The terminal view: one spinner for the steps under way, a persisted line for each thing that happened. */
class TerminalView {
  private readonly spinner: Ora;
  private readonly active = new Map<string, { since: number; note: string }>();
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly io: Io,
    private readonly runId: string,
  ) {
    this.spinner = ora({ stream: io.stderr as NodeJS.WriteStream, discardStdin: false, hideCursor: true });
    this.ticker = setInterval(() => this.refresh(), 250);
  }

  private refresh(): void {
    if (this.active.size === 0) {
      if (this.spinner.isSpinning) this.spinner.stop();
      return;
    }
    const now = Date.now();
    this.spinner.text = [...this.active].map(([id, a]) => `${id} ${duration(now - a.since)}${a.note ? ` (${a.note})` : ''}`).join('  ·  ');
    if (!this.spinner.isSpinning) this.spinner.start();
  }

  private line(symbol: string, text: string): void {
    const spinning = this.spinner.isSpinning;
    this.spinner.stopAndPersist({ symbol, text });
    if (spinning) this.refresh();
  }

  handle(event: StreamEvent): void {
    const d = event.data;
    if (event.event === 'run') {
      this.line('▶', `${d.definition?.name}@${d.definition?.version}  run ${d.runId}  (${d.status})${d.links?.temporalUi ? `\n  Temporal Web: ${d.links.temporalUi}` : ''}`);
    } else if (event.event === 'step') {
      const since = Date.parse(d.at) - (d.elapsedMs ?? 0);
      switch (d.status) {
        case 'started':
          this.active.set(d.stepId, { since: Date.now(), note: '' });
          break;
        case 'retrying': {
          const a = this.active.get(d.stepId) ?? { since, note: '' };
          a.note = `attempt ${d.attempt}${d.maximumAttempts ? `/${d.maximumAttempts}` : ''}`;
          this.active.set(d.stepId, a);
          // Inside a loop or for_each the path says which iteration retries (`loop[2]/flaky`).
          this.line('↻', `${d.stepPath ?? d.stepId}  attempt ${d.attempt - 1} failed: ${d.error?.message ?? 'error'}; retrying`);
          break;
        }
        case 'waiting': {
          const a = this.active.get(d.stepId) ?? { since, note: '' };
          a.note = `waiting for approval ${d.approval.approvals}/${d.approval.quorum}`;
          this.active.set(d.stepId, a);
          this.line(
            '⏸',
            `${d.stepId}  waits for approval by ${approversText(d.approval.approvers)} (quorum ${d.approval.quorum}${d.approval.deadline ? `, until ${d.approval.deadline}` : ''}): ${d.approval.summary}\n` +
              `  workflow approve ${this.runId} ${d.stepId} [--comment …]   or   workflow reject ${this.runId} ${d.stepId}`,
          );
          break;
        }
        default: {
          this.active.delete(d.stepId);
          const symbol = d.status === 'completed' ? '✔' : d.status === 'failed' ? '✖' : '–';
          const took = d.elapsedMs === undefined ? '' : `  ${duration(d.elapsedMs)}`;
          const error = d.error ? `: ${d.error.message}${d.continued ? ' (the run goes on)' : ''}` : '';
          this.line(symbol, `${d.stepId}  ${d.status}${took}${error}`);
        }
      }
      this.refresh();
    } else if (event.event === 'end') {
      this.active.clear();
      this.refresh();
      const symbol = d.status === 'completed' ? '✔' : '✖';
      this.line(symbol, `run ${d.status}${d.error ? `: ${d.error.message}${d.error.step ? ` (step ${d.error.step})` : ''}` : ''}`);
    } else if (event.event === 'error') {
      this.line('✖', `stream error: ${d.message}`);
    }
  }

  close(): void {
    clearInterval(this.ticker);
    if (this.spinner.isSpinning) this.spinner.stop();
  }
}

export interface FollowOptions {
  json: boolean;
  /** Only lifecycle events (and retries): `logs --follow`. */
  logs?: boolean;
  /** Prints one lifecycle event as a log line. */
  logLine?: (event: any) => string;
}

/**
 * Follows a run to its end and returns the exit code: 0 when it completed, 1 when it failed or was
 * cancelled, 130 when the user detached with Ctrl-C.
 */
export async function follow(client: ApiClient, runId: string, io: Io, options: FollowOptions): Promise<{ code: number; end?: any }> {
  const controller = new AbortController();
  let detached = false;
  const onSigint = () => {
    detached = true;
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const lines = options.json || !io.stderr.isTTY;
  const view = lines || options.logs ? undefined : new TerminalView(io, runId);
  let end: any;
  try {
    for await (const event of runStream(client, runId, controller.signal)) {
      if (event.event === 'end') end = event.data;
      if (options.logs) {
        if (event.event === 'lifecycle') io.stdout.write(lines ? `${JSON.stringify(event.data)}\n` : `${options.logLine?.(event.data) ?? JSON.stringify(event.data)}\n`);
        else if (event.event === 'step' && event.data.status === 'retrying') {
          io.stdout.write(lines ? `${JSON.stringify({ type: 'step.retrying', ...event.data })}\n` : `${event.data.at}  step.retrying        ${event.data.stepPath ?? event.data.stepId}  attempt ${event.data.attempt}: ${event.data.error?.message ?? ''}\n`);
        }
      } else if (view) view.handle(event);
      else io.stdout.write(`${JSON.stringify({ event: event.event, ...(event.id ? { id: event.id } : {}), data: event.data })}\n`);
    }
  } catch (error) {
    if (!detached) throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
    view?.close();
  }
  if (detached || !end) {
    io.stderr.write(`\ndetached; the run goes on. Follow it again: workflow status ${runId} --follow\n`);
    return { code: EXIT.detached };
  }
  return { code: end.status === 'completed' ? EXIT.ok : EXIT.failed, end };
}
