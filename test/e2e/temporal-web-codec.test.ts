import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page, Response } from 'playwright-core';
import { ENCRYPTED_ENCODING, newKeyEntry } from '../../common/codec.ts';
import { createLogger } from '../../common/logger.ts';
import { startDevServer, uiCodecEndpoint, type DevServer } from '../../embedded/dev-server.ts';
import { freePort } from '../../embedded/ports.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import { launchBrowser } from '../support/browser.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Temporal Web reads encrypted runs through the API's codec server (issue 18), set up as `npm
 * start` does it: the dev server's UI is started with `--ui-codec-endpoint` naming the API's
 * `/codec/ui/<CODEC_UI_TOKEN>` path, and the API answers browsers from that UI's origin. Headless
 * Chromium opens a run whose input holds a value declared sensitive: the SRE's browser sees the
 * input and the result decoded; a browser whose Codec Server setting names a wrong token gets the
 * API's 404 and is shown the ciphertext Temporal holds (read with a plain client), never the value.
 */

const SSN = '078-05-1120';
const UI_TOKEN = `ui-token-${newKeyEntry().key.replace(/[^A-Za-z0-9]/g, '').slice(0, 24)}`;
// The submitter is the test platform's default key (waitForRun reads with it).
const keys = { submitter: KEYS.submitter, reader: 'web-codec-reader-key-0000' };
/** `binary/encrypted` as the UI prints undecoded metadata: base64. */
const ENCRYPTED_BASE64 = Buffer.from(ENCRYPTED_ENCODING).toString('base64');
/** The start of a payload's sealed bytes as the UI prints them (base64, long strings wrapped). */
const sealedPrefix = (payload: { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null } | undefined): string => {
  assert.equal(Buffer.from(payload?.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING, 'Temporal holds the payload sealed');
  return Buffer.from(payload?.data ?? []).toString('base64').slice(0, 32);
};

describe('Temporal Web decodes through the codec server (Chromium)', () => {
  let server: DevServer;
  let platform: TestPlatform;
  let browser: Browser;
  let runId: string;
  /** The sealed input and result as Temporal holds them. */
  const sealed = { input: '', result: '' };

  before(async () => {
    const apiPort = await freePort();
    server = await startDevServer({
      cliPath: resolveTemporalCli(),
      port: await freePort(),
      uiPort: await freePort(),
      logger: createLogger('test', 'silent'),
      codecEndpoint: uiCodecEndpoint({ API_HOST: '127.0.0.1', API_PORT: apiPort }, UI_TOKEN),
    });
    platform = await startTestPlatform({
      database: 'pglite',
      env: (lanes) => {
        const tenant = `web-codec-${lanes[0]!.slice(-6)}`;
        return {
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_UI_URL: server.uiUrl!,
          API_PORT: String(apiPort),
          PAYLOAD_CODEC_KEYS: JSON.stringify([newKeyEntry()]),
          CODEC_UI_TOKEN: UI_TOKEN,
          API_KEYS: JSON.stringify([
            { key: keys.submitter, principal: 'sam', roles: ['submit'], tenant },
            { key: keys.reader, principal: 'sre', roles: ['submit', 'sensitive-reader'], tenant },
          ]),
        };
      },
    });
    browser = await launchBrowser();

    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: keys.submitter,
      json: {
        name: 'web-kyc',
        version: '1.0.0',
        sensitive: { input: ['/customer/ssn'] },
        steps: [{ id: 'lookup', type: 'skill', skill: 'echo', inputs: { ssn: '${input.customer.ssn}', name: '${input.customer.name}' } }],
        output: { checked: '${lookup.ssn}' },
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', key: keys.submitter, json: { definition: 'web-kyc', input: { customer: { ssn: SSN, name: 'Ada' } } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    runId = started.body.runId;
    const done = await platform.waitForRun(runId, 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const plain = new Client({ connection: await Connection.connect({ address: server.address }) });
    try {
      const events = (await plain.workflow.getHandle(runId).fetchHistory()).events ?? [];
      sealed.input = sealedPrefix(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]);
      sealed.result = sealedPrefix(events.at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0]);
    } finally {
      await plain.connection.close();
    }
  });

  after(async () => {
    await browser?.close();
    await platform?.stop();
    await server?.stop();
  });

  /** Opens the run in Temporal Web, recording every answer of the API's codec server. */
  async function openRun(setup?: (page: Page) => Promise<void>): Promise<{ page: Page; codec: Array<{ url: string; status: number }> }> {
    const view = await platform.api(`/v1/runs/${encodeURIComponent(runId)}`, { key: keys.reader });
    const link = view.body.links?.temporalUi as string;
    assert.ok(link?.startsWith(server.uiUrl!), `the run links to this Temporal Web: ${link}`);
    const context = await browser.newContext();
    const page = await context.newPage();
    const codec: Array<{ url: string; status: number }> = [];
    page.on('response', (response: Response) => {
      if (response.url().startsWith(`${platform.url}/codec/`)) codec.push({ url: response.url(), status: response.status() });
    });
    if (setup) await setup(page);
    await page.goto(link);
    await page.getByTestId('input-and-result').waitFor({ timeout: 30_000 });
    return { page, codec };
  }

  /** The text of the run's Input and Result blocks once `ready` holds for both (or 30 s passed). */
  async function inputAndResult(page: Page, ready: (text: string) => boolean): Promise<{ input: string; result: string }> {
    const read = async () => ({
      input: await page.locator('[data-testid="input-and-result"] [aria-label="Input"]').innerText(),
      result: await page.locator('[data-testid="input-and-result"] [aria-label="Result"]').innerText(),
    });
    for (let waited = 0; waited < 30_000; waited += 250) {
      const shown = await read();
      if (ready(shown.input) && ready(shown.result)) return shown;
      await page.waitForTimeout(250);
    }
    return read();
  }

  test('the SRE\'s browser, with the endpoint the dev server was started with, shows the input and the result decoded', async () => {
    const { page, codec } = await openRun();
    try {
      const shown = await inputAndResult(page, (text) => text.includes(SSN));
      assert.ok(shown.input.includes(SSN), `the input is shown decoded: ${shown.input.slice(0, 400)}`);
      assert.ok(shown.input.includes('web-kyc'), 'the decoded input is the run input (the pinned definition)');
      assert.ok(shown.result.includes(SSN), `the result is shown decoded: ${shown.result.slice(0, 400)}`);
      assert.ok(!shown.input.includes(ENCRYPTED_BASE64) && !shown.result.includes(ENCRYPTED_BASE64), 'nothing is left encoded');
      const decodes = codec.filter((c) => c.url.startsWith(`${platform.url}/codec/ui/${UI_TOKEN}/decode`));
      assert.ok(decodes.length > 0 && decodes.every((c) => c.status === 200), JSON.stringify(codec));
    } finally {
      await page.context().close();
    }
  });

  test('a browser whose Codec Server setting has a wrong token is refused by the API and shown ciphertext', async () => {
    const wrong = uiCodecEndpoint({ API_HOST: '127.0.0.1', API_PORT: Number(new URL(platform.url).port) }, 'not-the-token-0000000000000000');
    const { page, codec } = await openRun();
    try {
      // Temporal Web's own Codec Server dialog: "Use my browser setting and ignore Cluster-level setting".
      await page.locator('[data-testid^="data-encoder-status"]').first().click();
      const dialog = page.locator('dialog[open]');
      await dialog.getByTestId('use-local-endpoint-input').check();
      await dialog.getByTestId('data-encoder-endpoint-input').fill(wrong);
      await dialog.getByTestId('confirm-modal-button').click();
      await dialog.waitFor({ state: 'detached' }).catch(() => undefined);
      await page.reload();
      await page.getByTestId('input-and-result').waitFor({ timeout: 30_000 });
      const unwrapped = (text: string) => text.replace(/\s+/g, '');
      const shown = await inputAndResult(page, (text) => unwrapped(text).includes(sealed.input) || unwrapped(text).includes(sealed.result));
      assert.ok(unwrapped(shown.input).includes(sealed.input), `the input is shown as the ciphertext Temporal holds: ${shown.input.slice(0, 200)}`);
      assert.ok(unwrapped(shown.result).includes(sealed.result), `the result is shown as the ciphertext Temporal holds: ${shown.result.slice(0, 200)}`);
      const body = await page.innerText('body');
      assert.ok(!body.includes(SSN), 'the sensitive value appears nowhere on the page');
      const refused = codec.filter((c) => c.url.startsWith(`${wrong}/decode`));
      assert.ok(refused.length > 0 && refused.every((c) => c.status === 404), JSON.stringify(codec));
    } finally {
      await page.context().close();
    }
  });
});
