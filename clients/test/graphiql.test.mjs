// GraphiQL at / in Debian's Chromium with every other origin cut off: the page renders from the
// server's own files, its docs show the schema, a query runs over HTTP and a subscription
// streams over a graphql-transport-ws WebSocket. Any request to another origin, failed request,
// page error or console error (CSP violations are reported there) fails the run. Screenshots go
// to clients/artifacts/.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ARTIFACTS, launchChromium } from '../lib/browser.mjs';
import { recordGoal, sleep, startServer } from '../lib/server.mjs';

const QUERY = '{ liveMatches { id status } }';
const SUBSCRIPTION =
  'subscription { matchUpdated(id: "soccer-live-1", sinceVersion: 0) { version } }';

let server;
let browser;
let page;
/** Requests to any origin but the server's: aborted, and a failure. */
const foreign = [];
/** Page errors, console errors and failed same-origin requests. */
const problems = [];
/** WebSocket URLs the page opened and the frames it sent on them. */
const sockets = [];

before(async () => {
  server = await startServer();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === server.url) return route.continue();
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  // page.route does not see WebSockets: they are recorded here and checked at the end (the
  // page's CSP would refuse another origin anyway, which shows as a console error).
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), sent: [] };
    sockets.push(socket);
    ws.on('framesent', (frame) => socket.sent.push(frame.payload.toString()));
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('requestfailed', (request) => {
    if (!foreign.includes(request.url())) {
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });
});

after(async () => {
  await page?.screenshot({ path: path.join(ARTIFACTS, 'graphiql-final.png') }).catch(() => {});
  await browser?.close();
  await server?.stop();
});

function screenshot(name) {
  return page.screenshot({ path: path.join(ARTIFACTS, `graphiql-${name}.png`) });
}

/** The text of the CodeMirror editor inside `selector`. */
function editorText(selector) {
  return page.evaluate(
    (s) => document.querySelector(`${s} .CodeMirror`)?.CodeMirror.getValue() ?? '',
    selector,
  );
}

/** Polls the response pane until `predicate(text)` holds; fails after `ms` with the text. */
async function responseWhere(predicate, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    text = await editorText('.graphiql-response');
    if (predicate(text)) return text;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}; the response pane shows:\n${text}`);
}

/** Puts `query` in the query editor and presses the run button. */
async function run(query) {
  await page.evaluate((q) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
  }, query);
  // GraphiQL parses the editor 100 ms after a change (debounced), and its fetcher picks the
  // transport from that parse: run sooner and a subscription goes out as an HTTP request.
  await sleep(300);
  await page.locator('.graphiql-execute-button').click();
}

test('GraphiQL renders from the server alone', async () => {
  const response = await page.goto(`${server.url}/`);
  assert.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self';/);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: 15_000 });
  await page.locator('.graphiql-execute-button').waitFor();
  await screenshot('loaded');
  assert.deepEqual(foreign, []);
});

test('the docs explorer shows the schema', async () => {
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).click({ timeout: 15_000 });
  await docs.getByText('liveMatches', { exact: true }).waitFor({ timeout: 15_000 });
  await screenshot('docs');
});

test('a query runs over HTTP and shows its result', async () => {
  await run(QUERY);
  const text = await responseWhere((t) => t.includes('soccer-live-1'), 'soccer-live-1');
  const result = JSON.parse(text);
  assert.ok(
    result.data.liveMatches.some((m) => m.id === 'soccer-live-1' && m.status === 'LIVE'),
    text,
  );
  await screenshot('query');
});

test('a subscription streams over a graphql-transport-ws WebSocket', async () => {
  await run(SUBSCRIPTION);
  // sinceVersion 0: the stored state comes first.
  const first = await responseWhere((t) => /"version": \d+/.test(t), 'a first version');
  const version = JSON.parse(first).data.matchUpdated.version;
  // A change made elsewhere reaches the open subscription.
  const next = await recordGoal(server, 'soccer-live-1', 'HOME');
  assert.equal(next, version + 1);
  await responseWhere((t) => t.includes(`"version": ${next}`), `version ${next}`);
  await screenshot('subscription');

  const wsUrl = `${server.url.replace(/^http:/, 'ws:')}/graphql`;
  assert.deepEqual(
    sockets.map((s) => s.url),
    [wsUrl],
  );
  const types = sockets[0].sent.map((frame) => JSON.parse(frame).type);
  // connection_init then subscribe: graphql-transport-ws (the legacy protocol says "start").
  assert.deepEqual(types.slice(0, 2), ['connection_init', 'subscribe'], `${types}`);
  // The run button now stops the subscription.
  await page.locator('.graphiql-execute-button').click();
});

test('nothing was requested from another origin, and nothing failed', () => {
  assert.deepEqual(foreign, [], `requests to other origins: ${foreign.join(', ')}`);
  assert.deepEqual(problems, [], problems.join('\n'));
});
