// Subscriptions over HTTP streams with the clients app teams use: graphql-sse (distinct
// connections mode, and single connection mode) and Apollo Client 4 over a plain HttpLink (Apollo's multipart
// subscriptions). Both reach the same fan-out as WebSocket subscribers.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApolloClient, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createClient } from 'graphql-sse';

import { recordGoal, sleep, startServer, within } from '../lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Subscribes with a graphql-sse client and collects results until `until(results)` holds. */
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

test('graphql-sse: a subscription gets the stored state, then live changes', async () => {
  const c = createClient({ url: server.graphql, retryAttempts: 0 });
  try {
    const sub = collect(
      c,
      {
        query:
          'subscription($id: ID!) { matchUpdated(id: $id, sinceVersion: 0) { id version score { home away } } }',
        variables: { id: 'soccer-live-1' },
      },
      (r) => r.length === 3,
    );
    await sleep(300);
    const v1 = await recordGoal(server, 'soccer-live-1');
    const v2 = await recordGoal(server, 'soccer-live-1', 'AWAY');
    const results = await within(10_000, sub.done, 'three results over SSE');
    sub.dispose();
    const versions = results.map((r) => r.data.matchUpdated.version);
    assert.equal(versions.at(-2), v1);
    assert.equal(versions.at(-1), v2);
    assert.ok(versions[0] < v1, `the stored state first: ${versions}`);
  } finally {
    c.dispose();
  }
});

test('graphql-sse: NOT_FOUND arrives as a result with its code, then the operation completes', async () => {
  const c = createClient({ url: server.graphql, retryAttempts: 0 });
  try {
    const sub = collect(
      c,
      { query: 'subscription { matchEvents(matchId: "no-such-match") { seq } }' },
      () => false,
    );
    const results = await within(10_000, sub.done, 'a refusal then complete');
    assert.equal(results.length, 1);
    assert.equal(results[0].errors[0].extensions.code, 'NOT_FOUND');
  } finally {
    c.dispose();
  }
});

test('graphql-sse: a query runs over the event stream too', async () => {
  const c = createClient({ url: server.graphql, retryAttempts: 0 });
  try {
    const sub = collect(c, { query: '{ match(id: "soccer-live-1") { id } }' }, () => false);
    const results = await within(10_000, sub.done, 'one result then complete');
    assert.deepEqual(results, [{ data: { match: { id: 'soccer-live-1' } } }]);
  } finally {
    c.dispose();
  }
});

test('EventSource-style reconnect: Last-Event-ID resumes the timeline with no gap and no repeat', async () => {
  const query = encodeURIComponent('subscription { matchEvents(matchId: "hockey-live-1") { seq } }');
  const url = `${server.graphql}?query=${query}`;
  /** Reads `count` next events from a GET event stream, then drops the connection. */
  async function read(count, lastEventId) {
    const controller = new AbortController();
    const headers = { accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const response = await fetch(url, { headers, signal: controller.signal });
    assert.equal(response.status, 200);
    const decoder = new TextDecoder();
    const events = [];
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((line) => !line.startsWith(':'))
            .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
        );
        if (fields.event === 'next') events.push({ id: fields.id, data: JSON.parse(fields.data) });
      }
      if (events.length >= count) break;
    }
    controller.abort();
    return events;
  }
  const first = read(1);
  await sleep(300);
  await recordGoal(server, 'hockey-live-1');
  const [one] = await within(10_000, first, 'a live event');
  assert.equal(one.id, String(one.data.data.matchEvents.seq));
  // Missed while disconnected:
  await recordGoal(server, 'hockey-live-1');
  await recordGoal(server, 'hockey-live-1', 'AWAY');
  const resumed = await within(10_000, read(2, one.id), 'the missed events');
  assert.deepEqual(
    resumed.map((e) => e.data.data.matchEvents.seq),
    [Number(one.id) + 1, Number(one.id) + 2],
  );
});

test('graphql-sse single connection mode: two operations share one reserved stream', async () => {
  const c = createClient({ url: server.graphql, singleConnection: true, retryAttempts: 0 });
  try {
    const updates = collect(
      c,
      {
        query: 'subscription($id: ID!) { matchUpdated(id: $id) { version } }',
        variables: { id: 'soccer-live-1' },
      },
      (r) => r.length === 1,
    );
    const events = collect(
      c,
      { query: 'subscription { matchEvents(matchId: "soccer-live-1") { seq type } }' },
      (r) => r.length === 1,
    );
    const refused = collect(
      c,
      { query: 'subscription { matchUpdated(id: "no-such-match") { version } }' },
      () => false,
    );
    const [refusal] = await within(10_000, refused.done, 'a refusal, then complete');
    assert.equal(refusal.errors[0].extensions.code, 'NOT_FOUND');
    await sleep(300);
    const version = await recordGoal(server, 'soccer-live-1');
    const [update] = await within(10_000, updates.done, 'the update');
    const [event] = await within(10_000, events.done, 'the event');
    assert.equal(update.data.matchUpdated.version, version);
    assert.equal(event.data.matchEvents.type, 'GOAL');
    updates.dispose();
    events.dispose();
  } finally {
    c.dispose();
  }
});

const MATCH_UPDATED = gql`
  subscription MatchUpdated($id: ID!) {
    matchUpdated(id: $id) {
      id
      version
      score { home away }
    }
  }
`;

test('Apollo Client over a plain HttpLink: multipart subscription results, then NOT_FOUND with its code', async () => {
  const contentTypes = [];
  const client = new ApolloClient({
    link: new HttpLink({
      uri: server.graphql,
      fetch: async (uri, options) => {
        const response = await fetch(uri, options);
        contentTypes.push(response.headers.get('content-type'));
        return response;
      },
    }),
    cache: new InMemoryCache(),
  });
  const results = [];
  let resolveTwo;
  const two = new Promise((resolve) => {
    resolveTwo = resolve;
  });
  const subscription = client.subscribe({ query: MATCH_UPDATED, variables: { id: 'hockey-live-1' } }).subscribe({
    next: (result) => {
      results.push(result);
      if (results.length === 2) resolveTwo();
    },
  });
  await sleep(500);
  const v1 = await recordGoal(server, 'hockey-live-1');
  const v2 = await recordGoal(server, 'hockey-live-1');
  await within(10_000, two, 'two multipart results');
  subscription.unsubscribe();
  assert.deepEqual(
    results.map((r) => r.data.matchUpdated.version),
    [v1, v2],
  );
  assert.ok(contentTypes[0].startsWith('multipart/mixed'), contentTypes[0]);
  // The cache holds the newest state, normalized.
  assert.equal(client.cache.extract()['Match:hockey-live-1'].version, v2);

  const refused = await within(
    10_000,
    new Promise((resolve) => {
      const got = [];
      client.subscribe({ query: MATCH_UPDATED, variables: { id: 'no-such-match' } }).subscribe({
        next: (result) => got.push(result),
        error: (error) => resolve({ error }),
        complete: () => resolve({ got }),
      });
    }),
    'a refusal',
  );
  const error = refused.error ?? refused.got.find((r) => r.error)?.error;
  assert.ok(CombinedGraphQLErrors.is(error), `${error}`);
  assert.equal(error.errors[0].extensions.code, 'NOT_FOUND');
  client.stop();
});
