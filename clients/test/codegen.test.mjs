// Schema tools pointed at the URL: graphql-js's standard introspection query (what GraphiQL,
// GraphQL Code Generator and graphql-inspector send) at the server's default limits, and
// GraphQL Code Generator generating TypeScript types from it.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { generate } from '@graphql-codegen/cli';
import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

import { startServer } from '../lib/server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

test('the standard introspection query passes and builds the schema', async () => {
  const response = await fetch(server.graphql, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: getIntrospectionQuery({ specifiedByUrl: true, inputValueDeprecation: true }),
    }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const schema = buildClientSchema(body.data);
  assert.equal(schema.getQueryType().name, 'Query');
  assert.equal(schema.getMutationType().name, 'Mutation');
  assert.equal(schema.getSubscriptionType().name, 'Subscription');
  assert.equal(
    schema.getType('DateTime').specifiedByURL,
    'https://datatracker.ietf.org/doc/html/rfc3339',
  );
  assert.match(printSchema(schema), /type MatchEvent \{/);
});

test('GraphQL Code Generator generates types for an operation from the URL', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'scoreline-codegen-'));
  try {
    const documents = path.join(dir, 'score.graphql');
    writeFileSync(
      documents,
      'query ScoreScreen($id: ID!) { match(id: $id) { id status version score { home away } homeTeam { name shortName } } }\n',
    );
    const [output] = await generate(
      {
        schema: server.graphql,
        documents,
        generates: {
          [path.join(dir, 'types.ts')]: { plugins: ['typescript', 'typescript-operations'] },
        },
        silent: true,
      },
      false,
    );
    assert.match(output.content, /export type Match = \{/);
    assert.match(output.content, /export type ScoreScreenQuery = /);
    assert.match(output.content, /export type ScoreScreenQueryVariables = /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
