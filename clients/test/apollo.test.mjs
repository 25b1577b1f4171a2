// Apollo Client 4, set up as app teams do: HttpLink for queries and mutations split with
// GraphQLWsLink (graphql-ws) for subscriptions, typePolicies on `Query` (relay pagination),
// automatic persisted queries (PersistedQueryLink, POST and GET) and BatchHttpLink.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  gql,
} from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition, relayStylePagination } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { startServer, waitFor, within } from '../lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** A fetch that records what Apollo sends (method, URL, parsed body) and what it got back. */
function recordingFetch() {
  const calls = [];
  const spy = async (uri, options = {}) => {
    const response = await fetch(uri, options);
    calls.push({
      method: options.method ?? 'GET',
      url: String(uri),
      body: options.body ? JSON.parse(options.body) : undefined,
      status: response.status,
      contentType: response.headers.get('content-type'),
    });
    return response;
  };
  return { calls, fetch: spy };
}

/** HTTP for queries and mutations, graphql-ws for subscriptions, as Apollo's docs set it up. */
function splitClient(token, cache = new InMemoryCache()) {
  const ws = createClient({ url: server.wsUrl, webSocketImpl: WebSocket });
  const http = new HttpLink({ uri: server.graphql, headers: { authorization: `Bearer ${token}` } });
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    new GraphQLWsLink(ws),
    http,
  );
  return { client: new ApolloClient({ link, cache }), ws };
}

const MATCH_UPDATED = gql`
  subscription MatchUpdated($id: ID!) {
    matchUpdated(id: $id, sinceVersion: 0) {
      id
      version
      score { home away }
    }
  }
`;

test('queries over HTTP, a mutation, and its update over the WebSocket land in one cache', async () => {
  const { client, ws } = splitClient(server.token('operator'));
  const live = await client.query({
    query: gql`query Live { liveMatches { id status version } }`,
  });
  assert.ok(live.data.liveMatches.some((m) => m.id === 'soccer-live-2'));

  const versions = [];
  const subscription = client
    .subscribe({ query: MATCH_UPDATED, variables: { id: 'soccer-live-2' } })
    .subscribe({ next: ({ data }) => data && versions.push(data.matchUpdated.version) });
  await within(10_000, waitFor(() => versions.length === 1), 'the stored state');

  // soccer-live-2 is PAUSED in the demo: resume it, then score.
  const setStatus = await client.mutate({
    mutation: gql`
      mutation Resume($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { id version status } }
    `,
    variables: { i: { matchId: 'soccer-live-2', status: 'LIVE' } },
  });
  const goal = await client.mutate({
    mutation: gql`
      mutation Goal($i: RecordEventInput!) {
        recordEvent(input: $i) { id version score { home away } }
      }
    `,
    variables: { i: { matchId: 'soccer-live-2', type: 'GOAL', side: 'AWAY' } },
  });
  const target = goal.data.recordEvent.version;
  assert.equal(target, setStatus.data.setMatchStatus.version + 1);
  await within(10_000, waitFor(() => versions.at(-1) === target), `version ${target} pushed`);
  subscription.unsubscribe();

  // Normalized by `Match:<id>`, the cache holds the newest state.
  const cached = client.cache.readFragment({
    id: 'Match:soccer-live-2',
    fragment: gql`fragment Newest on Match { version }`,
  });
  assert.equal(cached.version, target);
  await ws.dispose();
});

test('timeline events are normalized by their id', async () => {
  const { client, ws } = splitClient(server.token('operator'));
  await client.query({
    query: gql`
      query Timeline { match(id: "soccer-live-1") { id events(afterSeq: 0, first: 3) { id seq type } } }
    `,
  });
  const keys = Object.keys(client.cache.extract());
  assert.ok(keys.includes('MatchEvent:soccer-live-1:1'), keys.join(' '));
  await ws.dispose();
});

test('typePolicies on Query apply: relayStylePagination merges the pages of matches', async () => {
  const cache = new InMemoryCache({
    typePolicies: { Query: { fields: { matches: relayStylePagination(['filter']) } } },
  });
  const client = new ApolloClient({ link: new HttpLink({ uri: server.graphql }), cache });
  const PAGE = gql`
    query Page($after: String) {
      matches(filter: { sport: SOCCER }, first: 2, after: $after) {
        edges { cursor node { id } }
        pageInfo { hasNextPage endCursor }
      }
    }
  `;
  const first = await client.query({ query: PAGE });
  assert.equal(first.data.matches.edges.length, 2);
  assert.ok(first.data.matches.pageInfo.hasNextPage);
  // As fetchMore does: the next page from the network, merged by the field policy.
  await client.query({
    query: PAGE,
    variables: { after: first.data.matches.pageInfo.endCursor },
    fetchPolicy: 'network-only',
  });
  const merged = client.readQuery({ query: PAGE });
  const ids = merged.matches.edges.map((e) => e.node.id);
  assert.ok(ids.length > 2, `the pages were merged: ${ids}`);
  assert.equal(new Set(ids).size, ids.length, `no duplicates: ${ids}`);
});

test('PersistedQueryLink sends a hash, falls back to the document once, then hashes alone', async () => {
  const QUERY = gql`query Competitions { competitions { id name sport } }`;
  for (const useGETForHashedQueries of [false, true]) {
    const recorder = recordingFetch();
    const make = () =>
      new ApolloClient({
        link: new PersistedQueryLink({ sha256, useGETForHashedQueries }).concat(
          new HttpLink({ uri: server.graphql, fetch: recorder.fetch }),
        ),
        cache: new InMemoryCache(),
      });
    // A distinct document per round, so the first request of each round misses.
    const query = useGETForHashedQueries
      ? gql`query CompetitionsByGet { competitions { id name } }`
      : QUERY;
    const first = await make().query({ query });
    assert.ok(first.data.competitions.length > 0);
    const again = await make().query({ query });
    assert.deepEqual(again.data, first.data);

    const hashOnly = (call) => {
      if (call.method === 'GET') return !new URL(call.url).searchParams.has('query');
      return call.body.query === undefined;
    };
    const kinds = recorder.calls.map((c) => (hashOnly(c) ? 'hash' : 'document'));
    assert.deepEqual(kinds, ['hash', 'document', 'hash'], JSON.stringify(recorder.calls));
    if (useGETForHashedQueries) assert.equal(recorder.calls[2].method, 'GET');
  }
});

test('BatchHttpLink sends queries together in one request and gets each answer', async () => {
  const recorder = recordingFetch();
  const client = new ApolloClient({
    link: new BatchHttpLink({
      uri: server.graphql,
      batchMax: 5,
      batchInterval: 20,
      fetch: recorder.fetch,
    }),
    cache: new InMemoryCache(),
  });
  const [live, competitions] = await Promise.all([
    client.query({ query: gql`query BatchA { liveMatches { id } }` }),
    client.query({ query: gql`query BatchB { competitions { id } }` }),
  ]);
  assert.ok(live.data.liveMatches.length > 0);
  assert.ok(competitions.data.competitions.length > 0);
  assert.equal(recorder.calls.length, 1);
  assert.ok(Array.isArray(recorder.calls[0].body) && recorder.calls[0].body.length === 2);
});

test('a subscription refused at subscribe time exposes extensions.code', async () => {
  const { client, ws } = splitClient(server.token('operator'));
  const outcome = await within(
    10_000,
    new Promise((resolve) => {
      client
        .subscribe({ query: MATCH_UPDATED, variables: { id: 'no-such-match' } })
        .subscribe({
          next: (result) => result.error && resolve(result.error),
          error: resolve,
        });
    }),
    'the refusal',
  );
  assert.ok(CombinedGraphQLErrors.is(outcome), `${outcome}`);
  assert.equal(outcome.errors[0].extensions.code, 'NOT_FOUND');
  await ws.dispose();
});

test('an anonymous mutation is refused with UNAUTHENTICATED, which Apollo exposes', async () => {
  const client = new ApolloClient({
    link: new HttpLink({ uri: server.graphql }),
    cache: new InMemoryCache(),
  });
  await assert.rejects(
    client.mutate({
      mutation: gql`mutation Anon($i: RecordEventInput!) { recordEvent(input: $i) { id } }`,
      variables: { i: { matchId: 'soccer-live-1', type: 'GOAL', side: 'HOME' } },
    }),
    (error) => {
      assert.ok(CombinedGraphQLErrors.is(error), `${error}`);
      assert.equal(error.errors[0].extensions.code, 'UNAUTHENTICATED');
      return true;
    },
  );
});
