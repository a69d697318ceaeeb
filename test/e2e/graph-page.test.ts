import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openPage } from '../support/browser.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * The graph page the API serves at /graph/ (issue 15): headless Chromium loads it, enters a key,
 * and mermaid (served by the API from the installed package) parses and renders the graph
 * endpoints' flowchart into SVG: a node per step the API names, and for a run each step's status
 * as the node's class. A wrong key shows the API's problem, and no script fails on the page.
 */

const definition = {
  name: 'graph-page',
  version: '1.0.0',
  steps: [
    { id: 'fetch', type: 'skill', skill: 'echo', inputs: { healthy: true } },
    {
      id: 'healthy',
      type: 'conditional',
      condition: 'fetch.healthy == true',
      then: [{ id: 'fine', type: 'set', values: { verdict: 'ok' } }],
      else: [{ id: 'page', type: 'skill', skill: 'echo', inputs: { text: 'down' } }],
    },
    {
      id: 'fan',
      type: 'parallel',
      steps: [
        { id: 'l1', type: 'set', values: { l: 1 } },
        { id: 'r1', type: 'set', values: { r: 1 } },
      ],
    },
  ],
};

/** The rendered SVG's node groups: mermaid ids them `<render id>-flowchart-<node>-<n>` and gives them the node's classes. */
async function renderedNodes(page: Page): Promise<Map<string, string[]>> {
  const found = await page.$$eval('#graph svg g.node', (groups) => groups.map((g) => [g.id, g.getAttribute('class') ?? '']));
  return new Map(found.map(([id, classes]) => [/flowchart-(.+)-\d+$/.exec(id!)?.[1] ?? id!, classes!.split(/\s+/)]));
}

describe('the graph page renders Mermaid in Chromium', () => {
  let platform: TestPlatform;
  let browser: Browser;

  before(async () => {
    platform = await startTestPlatform({ database: 'pglite' });
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await platform?.stop();
  });

  test('a definition: every step the API names is a node of the drawn SVG', async () => {
    const graph = (await platform.api('/v1/definitions/graph-page/versions/1.0.0/graph')).body;
    const { page, errors } = await openPage(browser);
    const response = await page.goto(`${platform.url}/graph/?definition=graph-page&version=1.0.0`);
    assert.equal(response?.status(), 200);
    await page.fill('#key', KEYS.submitter);
    await page.click('#show');
    await page.waitForSelector('body[data-rendered="definition:graph-page@1.0.0"]', { timeout: 30_000 });
    const nodes = await renderedNodes(page);
    for (const [step, node] of Object.entries(graph.nodes as Record<string, string>)) assert.ok(nodes.has(node), `step ${step} (node ${node}) is drawn: ${[...nodes.keys()]}`);
    const labels = await page.$$eval('#graph svg g.node', (groups) => groups.map((g) => g.textContent?.trim() ?? ''));
    for (const step of ['fetch', 'healthy', 'fine', 'page', 'l1', 'r1']) assert.ok(labels.some((l) => l.includes(step)), `a label names ${step}: ${labels}`);
    assert.ok((await page.$$('#graph svg .edgePath, #graph svg path.flowchart-link')).length > 0, 'edges are drawn');
    assert.match(await page.textContent('#status') ?? '', /graph-page@1\.0\.0/);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('a run: each step node carries its status, and the untaken branch none', async () => {
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'graph-page', input: {} } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const graph = (await platform.api(`/v1/runs/${encodeURIComponent(run.runId)}/graph`)).body;
    const { page, errors } = await openPage(browser);
    await page.goto(`${platform.url}/graph/`);
    await page.fill('#key', KEYS.submitter);
    await page.fill('#run', run.runId);
    await page.click('#show');
    await page.waitForSelector(`body[data-rendered="run:${run.runId}"]`, { timeout: 30_000 });
    const nodes = await renderedNodes(page);
    assert.ok(nodes.get(graph.nodes.fetch)?.includes('completed'), JSON.stringify([...nodes]));
    assert.ok(nodes.get(graph.nodes.fine)?.includes('completed'));
    assert.ok(!nodes.get(graph.nodes.page)?.includes('completed'), 'the else branch did not run');
    // The key stays in the tab's session storage and the run in the URL: a reload draws it again.
    await page.reload();
    await page.waitForSelector(`body[data-rendered="run:${run.runId}"]`, { timeout: 30_000 });
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('a wrong key shows the API\'s 401; an unknown version its 404', async () => {
    const { page, errors } = await openPage(browser);
    await page.goto(`${platform.url}/graph/?definition=graph-page&version=1.0.0`);
    await page.fill('#key', 'not-a-key-0000000000000');
    await page.click('#show');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error') ?? '', /^401 /);
    await page.fill('#key', KEYS.submitter);
    await page.fill('#version', '9.9.9');
    await page.click('#show');
    await page.waitForSelector('#error:has-text("404 ")');
    assert.equal(await page.$('#graph svg'), null);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test('the page and mermaid come from the API, same-origin, under its CSP', async () => {
    const pageResponse = await fetch(`${platform.url}/graph/`);
    assert.equal(pageResponse.status, 200);
    assert.match(pageResponse.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const script = await fetch(`${platform.url}/graph/mermaid.min.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.ok(Number(script.headers.get('content-length')) > 1_000_000, 'the browser build of mermaid');
    assert.equal((await fetch(`${platform.url}/graph/nothing-here.js`)).status, 404);
  });
});
