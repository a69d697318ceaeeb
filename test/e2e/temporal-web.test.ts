import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createLogger } from '../../common/logger.ts';
import { startDevServer, type DevServer } from '../../embedded/dev-server.ts';
import { freePort } from '../../embedded/ports.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import { launchBrowser } from '../support/browser.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Approvals from Temporal Web, as an approver would do it: headless Chromium drives the real UI
 * (2.54, served by the dev server this file starts) through "More Actions → Send a Signal" and
 * "Send an Update" on a run waiting at an approval step. The inbox's ready-to-paste signal lets the
 * run go on; a forged signal (no token, another approver's name) and a forged `decideApproval`
 * update (claiming a principal and groups) are refused, and the audit trail says so with the true
 * channel. Bob is in `finance`; mallory holds no key.
 */
describe('approvals from Temporal Web (Chromium)', () => {
  let server: DevServer;
  let platform: TestPlatform;
  let browser: Browser;

  before(async () => {
    server = await startDevServer({
      cliPath: resolveTemporalCli(),
      port: await freePort(),
      uiPort: await freePort(),
      logger: createLogger('test', 'silent'),
    });
    platform = await startTestPlatform({
      database: 'pglite',
      env: { TEMPORAL_ADDRESS: server.address, TEMPORAL_UI_URL: server.uiUrl! },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await platform?.stop();
    await server?.stop();
  });

  async function startApprovalRun(name: string): Promise<string> {
    const steps = [
      { id: 'sign-off', type: 'approval', approvers: { groups: ['finance'] }, summary: 'Pay ${input.amount} EUR' },
      { id: 'pay', type: 'skill', skill: 'echo', inputs: { decision: '${steps.sign-off.output.decision}' } },
    ];
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps } });
    assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: { amount: 120 } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    return started.body.runId as string;
  }

  /** Bob's inbox entry for the run, once the run waits at the approval. */
  async function inboxEntry(runId: string): Promise<any> {
    for (let i = 0; i < 200; i += 1) {
      const inbox = await platform.api('/v1/approvals', { key: KEYS.bob });
      assert.equal(inbox.status, 200, JSON.stringify(inbox.body));
      const entry = (inbox.body.approvals ?? inbox.body.items ?? inbox.body).find?.((a: any) => a.runId === runId);
      if (entry) return entry;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`run ${runId} never reached bob's inbox`);
  }

  async function openRun(runId: string): Promise<Page> {
    const view = await platform.api(`/v1/runs/${encodeURIComponent(runId)}`);
    const link = view.body.links?.temporalUi as string;
    assert.ok(link?.startsWith(server.uiUrl!), `the run links to this Temporal Web: ${link}`);
    const page = await browser.newPage();
    await page.goto(link);
    await page.getByRole('button', { name: 'More Actions' }).waitFor({ timeout: 30_000 });
    return page;
  }

  /** Fills one of the UI's action forms (signal or update) and submits it. */
  async function sendFromUi(page: Page, action: 'Send a Signal' | 'Send an Update', name: string, data: unknown): Promise<{ outcome: 'sent' | 'refused' | 'pending'; shown: string }> {
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: action }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    // With a worker polling, the UI lists the workflow's handlers (with their descriptions) from
    // its metadata query: pick ours from that list.
    await dialog.locator('[data-testid$="-select-button"]').click();
    await dialog.getByRole('option', { name: new RegExp(`^${name}`) }).click();
    const editor = dialog.getByRole('textbox', { name: 'Data' });
    await editor.click();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(JSON.stringify(data));
    // The editor pretty-prints its JSON when it loses focus, which moves the Submit button: blur
    // it first, so that the click lands on the button and not where it was.
    await editor.blur();
    await page.waitForTimeout(300);
    await dialog.getByRole('button', { name: 'Submit' }).click();
    // Sent: the form closes. Refused by the workflow (an update's answer): the form stays open and
    // shows the failure; it is read and the form cancelled. The UI 2.54 sometimes keeps spinning
    // on a signal after the run it let go on has completed: `pending`, the caller checks the run.
    for (let waited = 0; waited < 20_000; waited += 250) {
      if ((await dialog.count()) === 0) return { outcome: 'sent', shown: '' };
      const shown = await dialog.innerText().catch(() => '');
      if (/ApplicationFailure/.test(shown)) {
        await dialog.getByTestId('cancel-modal-button').click();
        return { outcome: 'refused', shown };
      }
      await page.waitForTimeout(250);
    }
    return { outcome: 'pending', shown: await dialog.innerText().catch(() => '') };
  }

  async function audit(runId: string): Promise<any[]> {
    return (await platform.api(`/v1/runs/${runId}/audit`)).body.entries;
  }

  async function waitForAudit(runId: string, count: number): Promise<any[]> {
    for (let i = 0; i < 300; i += 1) {
      const entries = await audit(runId);
      if (entries.length >= count) return entries;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`run ${runId}: fewer than ${count} audit entries: ${JSON.stringify(await audit(runId))}`);
  }

  test('a forged signal is refused; the inbox signal pasted into Send a Signal lets the run go on', async () => {
    const runId = await startApprovalRun('web-signal');
    const entry = await inboxEntry(runId);
    assert.equal(entry.signal.name, 'approval');
    const page = await openRun(runId);
    try {
      // Forged: mallory names herself, carries no token.
      const forged = await sendFromUi(page, 'Send a Signal', 'approval', { step: 'sign-off', approver: 'mallory', decision: 'approve' });
      assert.notEqual(forged.outcome, 'refused', 'a signal is never answered with an error');
      const refused = await waitForAudit(runId, 1);
      assert.deepEqual(
        refused.map((e) => [e.principal, e.decision, e.outcome, e.via, e.code]),
        [['mallory', 'approve', 'refused', 'signal', 'unproven']],
      );
      assert.equal((await platform.api(`/v1/runs/${runId}`)).body.status, 'running', 'the forged signal decided nothing');

      // The real one: exactly what the inbox hands out.
      assert.notEqual((await sendFromUi(page, 'Send a Signal', entry.signal.name, entry.signal.input)).outcome, 'refused');
      const done = await platform.waitForRun(runId, 60_000);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      const entries = await audit(runId);
      assert.deepEqual(
        entries.map((e) => [e.principal, e.decision, e.outcome, e.via]),
        [
          ['mallory', 'approve', 'refused', 'signal'],
          ['bob', 'approve', 'accepted', 'signal'],
        ],
      );
    } finally {
      await page.close();
    }
  });

  test('a forged decideApproval update from Send an Update is refused and audited with its true channel', async () => {
    const runId = await startApprovalRun('web-update');
    await inboxEntry(runId);
    const page = await openRun(runId);
    try {
      const forged = await sendFromUi(page, 'Send an Update', 'decideApproval', { step: 'sign-off', decision: 'approve', principal: 'mallory', groups: ['finance'] });
      assert.equal(forged.outcome, 'refused', 'the update is answered with its refusal');
      assert.match(forged.shown, /no decision token: a decideApproval update is the API's own/);
      const entries = await waitForAudit(runId, 1);
      assert.equal(entries.length, 1, JSON.stringify(entries));
      assert.equal(entries[0].principal, 'mallory');
      assert.equal(entries[0].outcome, 'refused');
      assert.equal(entries[0].code, 'unproven');
      assert.notEqual(entries[0].via, 'api', 'the audit does not claim the API path');
      const view = (await platform.api(`/v1/runs/${runId}`)).body;
      assert.equal(view.status, 'running', 'the forged update decided nothing');
      // Bob still decides through the API afterwards.
      const answer = await platform.api(`/v1/runs/${runId}/approvals/sign-off`, { method: 'POST', key: KEYS.bob, json: { decision: 'approve' } });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal((await platform.waitForRun(runId, 60_000)).status, 'completed');
    } finally {
      await page.close();
    }
  });
});
