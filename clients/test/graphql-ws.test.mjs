// graphql-ws, the reference graphql-transport-ws client: subscriptions with live updates, lazy
// mode reconnecting without a wait, the closing handshake, subscribe-time errors and close
// codes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { recordGoal, sleep, startServer, waitFor, within } from '../lib/server.mjs';

const MATCH_UPDATED =
  'subscription($id: ID!) { matchUpdated(id: $id, sinceVersion: 0) { id version score { home away } } }';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function client(options = {}) {
  const closes = [];
  const c = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    on: { closed: (event) => closes.push(event) },
    ...options,
  });
  return { client: c, closes };
}

/** Subscribes and collects results until `until(results)` holds. */
function collect(c, payload, until) {
  const results = [];
  let dispose;
  const done = new Promise((resolve, reject) => {
    dispose = c.subscribe(payload, {
      next: (result) => {
        results.push(result);
        if (until(results)) resolve(results);
      },
      error: reject,
      complete: () => resolve(results),
    });
  });
  return { done, dispose: () => dispose() };
}

test('a subscription gets the stored state, then every live change', async () => {
  const { client: c } = client();
  const sub = collect(
    c,
    { query: MATCH_UPDATED, variables: { id: 'soccer-live-1' } },
    (r) => r.length === 3,
  );
  await sleep(300);
  await recordGoal(server, 'soccer-live-1', 'HOME');
  await recordGoal(server, 'soccer-live-1', 'AWAY');
  const results = await within(10_000, sub.done, 'three results');
  const versions = results.map((r) => r.data.matchUpdated.version);
  assert.equal(versions.length, 3);
  assert.ok(versions[1] === versions[0] + 1 && versions[2] === versions[1] + 1, `${versions}`);
  sub.dispose();
  await c.dispose();
});

test('a subscription to an unknown match ends with NOT_FOUND in its result', async () => {
  const { client: c } = client();
  const sub = collect(c, { query: MATCH_UPDATED, variables: { id: 'no-such-match' } }, () => false);
  const results = await within(10_000, sub.done, 'the refusal');
  assert.equal(results.length, 1);
  assert.equal(results[0].errors[0].extensions.code, 'NOT_FOUND');
  await c.dispose();
});

test('a document that does not validate is an error with its code', async () => {
  const { client: c } = client();
  const errored = new Promise((resolve, reject) => {
    c.subscribe(
      { query: 'subscription { noSuchField }' },
      { next: () => reject(new Error('no result expected')), error: resolve, complete: () => {} },
    );
  });
  const errors = await within(10_000, errored, 'the validation error');
  assert.ok(Array.isArray(errors), `${errors}`);
  assert.equal(errors[0].extensions.code, 'GRAPHQL_VALIDATION_FAILED');
  await c.dispose();
});

test('a lazy client closes cleanly with 1000 and reconnects for the next subscription', async () => {
  const { client: c, closes } = client({ lazy: true, lazyCloseTimeout: 0 });
  for (let round = 0; round < 3; round += 1) {
    const sub = collect(
      c,
      { query: MATCH_UPDATED, variables: { id: 'basketball-live-1' } },
      (r) => r.length === 1,
    );
    const [first] = await within(10_000, sub.done, `round ${round}`);
    assert.ok(first.data.matchUpdated.version > 0);
    sub.dispose();
    // The last subscription gone, the lazy client closes its socket; the server answers the
    // close frame, so the client sees a clean 1000 rather than an abnormal 1006.
    await within(10_000, waitFor(() => closes.length === round + 1), 'the socket to close');
    assert.equal(closes[round].code, 1000, `close ${round}: ${closes[round].code}`);
    assert.equal(closes[round].wasClean, true);
  }
  await c.dispose();
});

test('a forged token in connection_init is refused with 4403', async () => {
  const { client: c, closes } = client({
    connectionParams: { Authorization: 'Bearer not.a.token' },
  });
  const errored = new Promise((resolve) => {
    c.subscribe(
      { query: MATCH_UPDATED, variables: { id: 'soccer-live-1' } },
      { next: () => {}, error: resolve, complete: () => {} },
    );
  });
  const error = await within(10_000, errored, 'the refusal');
  assert.equal(error.code, 4403);
  assert.equal(closes.at(-1).code, 4403);
  await c.dispose();
});
