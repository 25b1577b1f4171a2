// The legacy protocol (subscriptions-transport-ws, `graphql-ws` subprotocol) that older mobile
// clients still speak: its own client, and Apollo's WebSocketLink over it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { WebSocketLink } from '@apollo/client/link/ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { recordGoal, startServer, waitFor, within } from '../lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const MATCH_UPDATED = `
  subscription ($id: ID!) { matchUpdated(id: $id, sinceVersion: 0) { id version } }
`;

function legacyClient() {
  return new SubscriptionClient(server.wsUrl, { reconnect: false, lazy: true }, WebSocket);
}

test('the legacy client gets the stored state and live changes', async () => {
  const client = legacyClient();
  const versions = [];
  const subscription = client
    .request({ query: MATCH_UPDATED, variables: { id: 'hockey-live-1' } })
    .subscribe({ next: (result) => versions.push(result.data.matchUpdated.version) });
  await within(10_000, waitFor(() => versions.length === 1), 'the stored state');
  const target = await recordGoal(server, 'hockey-live-1', 'HOME');
  await within(10_000, waitFor(() => versions.at(-1) === target), `version ${target}`);
  subscription.unsubscribe();
  client.close();
});

test('through Apollo WebSocketLink, a refusal arrives as GraphQL errors with their code', async () => {
  const subscriptions = legacyClient();
  const client = new ApolloClient({
    link: new WebSocketLink(subscriptions),
    cache: new InMemoryCache(),
  });
  const outcome = await within(
    10_000,
    new Promise((resolve) => {
      client
        .subscribe({ query: gql(MATCH_UPDATED), variables: { id: 'no-such-match' } })
        .subscribe({ next: (result) => result.error && resolve(result.error), error: resolve });
    }),
    'the refusal',
  );
  assert.equal(outcome.errors?.[0]?.extensions?.code, 'NOT_FOUND', `${outcome}`);
  subscriptions.close();
});
