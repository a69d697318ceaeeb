import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkSupervisorState, readSupervisorState, writeSupervisorState } from '../../embedded/supervisor-state.ts';

test('the supervisor state check passes when every part runs and names each part that does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supervisor-state-'));
  try {
    const file = join(dir, 'supervisor-state.json');
    const at = new Date(0).toISOString();
    writeSupervisorState(file, {
      supervisorPid: 1,
      updatedAt: at,
      components: { temporal: { state: 'running', pid: 10, restarts: 0 }, api: { state: 'running', pid: 11, restarts: 2 } },
    });
    await checkSupervisorState(file);
    assert.deepEqual(readdirSync(dir), ['supervisor-state.json'], 'written through a renamed temporary file');

    writeSupervisorState(file, {
      supervisorPid: 1,
      updatedAt: at,
      components: {
        temporal: { state: 'restarting', restarts: 1, lastExit: { code: null, signal: 'SIGKILL', at } },
        'worker:prod-critical': { state: 'starting', restarts: 3, lastExit: { code: 1, signal: null, at } },
        'worker:experimental': { state: 'failed', restarts: 5, lastExit: { code: null, signal: null, at, error: 'did not start' } },
        api: { state: 'running', restarts: 0 },
      },
    });
    assert.equal(readSupervisorState(file).components.temporal?.state, 'restarting');
    await assert.rejects(checkSupervisorState(file), {
      message:
        'temporal restarting after SIGKILL (restart 1); worker:prod-critical starting after exit code 1 (restart 3); ' +
        'worker:experimental failed after a failed start (did not start) (restart 5)',
    });
    await assert.rejects(checkSupervisorState(join(dir, 'missing.json')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
