import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** What the `up` supervisor knows about one of its parts (the Temporal dev server, a lane worker, the API). */
export interface ComponentState {
  state: 'starting' | 'running' | 'restarting' | 'failed';
  pid?: number;
  /** Restarts since the platform came up. */
  restarts: number;
  lastExit?: { code: number | null; signal: string | null; at: string; error?: string };
  /** When the next start is due (state `restarting`). */
  restartAt?: string;
}

export interface SupervisorState {
  supervisorPid: number;
  updatedAt: string;
  components: Record<string, ComponentState>;
}

/** Written whole to a temporary file and renamed, so a reader never sees half a state. */
export function writeSupervisorState(file: string, state: SupervisorState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readSupervisorState(file: string): SupervisorState {
  return JSON.parse(readFileSync(file, 'utf8')) as SupervisorState;
}

/**
 * The API's `supervisor` readiness check under `up`: resolves when every supervised part runs;
 * otherwise rejects naming each part that does not and why (e.g. `temporal restarting after
 * SIGKILL (restart 1)`), which /readyz reports with a 503.
 */
export async function checkSupervisorState(file: string): Promise<void> {
  const state = readSupervisorState(file);
  const down = Object.entries(state.components).filter(([, c]) => c.state !== 'running');
  if (down.length === 0) return;
  throw new Error(
    down
      .map(([name, c]) => {
        const why = c.lastExit ? ` after ${c.lastExit.signal ?? (c.lastExit.error ? `a failed start (${c.lastExit.error})` : `exit code ${c.lastExit.code}`)}` : '';
        return `${name} ${c.state}${why}${c.restarts > 0 ? ` (restart ${c.restarts})` : ''}`;
      })
      .join('; '),
  );
}
