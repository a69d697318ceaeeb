import Table from 'cli-table3';

/** Where a command writes: stdout for results, stderr for notes and errors (so --json stays parseable). */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A borderless, aligned table: readable in a terminal, greppable in a pipe. */
export function printTable(io: Io, head: string[], rows: Array<Array<string | number | undefined>>): void {
  if (rows.length === 0) {
    io.stdout.write('(none)\n');
    return;
  }
  const table = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: io.stdout.isTTY ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) table.push(row.map((c) => (c === undefined ? '' : String(c))));
  io.stdout.write(`${table.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`);
}

/** `1.2 s`, `3 min 4 s`: elapsed times for people. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function since(start: string | undefined, end?: string): string {
  if (!start) return '';
  return duration((end ? Date.parse(end) : Date.now()) - Date.parse(start));
}
