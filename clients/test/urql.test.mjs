// urql (@urql/core 6) as app teams set it up: fetchExchange for queries (sent as GET when
// they fit the URL, urql's default) and mutations, subscriptionExchange over graphql-ws.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client, cacheExchange, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';

import { startServer, waitFor, within } from '../lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function urqlClient(token) {
  const ws = createWsClient({ url: server.wsUrl, webSocketImpl: WebSocket });
  const client = new Client({
    url: server.graphql,
    fetchOptions: token ? { headers: { authorization: `Bearer ${token}` } } : undefined,
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, ws };
}

const MATCH_UPDATED = gql`
  subscription ($id: ID!) { matchUpdated(id: $id, sinceVersion: 0) { id version } }
`;

test('a query, a mutation and the subscription that sees it', async () => {
  const { client, ws } = urqlClient(server.token('operator'));
  const live = await client.query(gql`{ liveMatches { id status } }`, {}).toPromise();
  assert.equal(live.error, undefined, `${live.error}`);
  assert.ok(live.data.liveMatches.some((m) => m.id === 'basketball-live-1'));

  const versions = [];
  const { unsubscribe } = client
    .subscription(MATCH_UPDATED, { id: 'basketball-live-1' })
    .subscribe((result) => result.data && versions.push(result.data.matchUpdated.version));
  await within(10_000, waitFor(() => versions.length === 1), 'the stored state');

  const scored = await client
    .mutation(
      gql`mutation ($i: RecordEventInput!) { recordEvent(input: $i) { id version } }`,
      { i: { matchId: 'basketball-live-1', type: 'THREE_POINTER', side: 'HOME' } },
    )
    .toPromise();
  assert.equal(scored.error, undefined, `${scored.error}`);
  const target = scored.data.recordEvent.version;
  await within(10_000, waitFor(() => versions.at(-1) === target), `version ${target}`);
  unsubscribe();
  await ws.dispose();
});

test('a subscription refused at subscribe time shows its code, not a network error', async () => {
  const { client, ws } = urqlClient();
  const result = await within(
    10_000,
    new Promise((resolve) => {
      client.subscription(MATCH_UPDATED, { id: 'no-such-match' }).subscribe(resolve);
    }),
    'the refusal',
  );
  assert.ok(result.error, 'an error');
  assert.equal(result.error.networkError, undefined, `${result.error}`);
  assert.equal(result.error.graphQLErrors[0].extensions.code, 'NOT_FOUND');
  await ws.dispose();
});

test('an anonymous mutation shows UNAUTHENTICATED', async () => {
  const { client, ws } = urqlClient();
  const result = await client
    .mutation(gql`mutation ($i: RecordEventInput!) { recordEvent(input: $i) { id } }`, {
      i: { matchId: 'soccer-live-1', type: 'GOAL', side: 'HOME' },
    })
    .toPromise();
  assert.equal(result.error.graphQLErrors[0].extensions.code, 'UNAUTHENTICATED');
  await ws.dispose();
});
