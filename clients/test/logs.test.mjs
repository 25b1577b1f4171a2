// What operators read: in JSON mode every line the server writes is JSON (the start-up banner
// and the development admin token included), with one access line per request and per
// WebSocket session, and one line per refused credential.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { sleep, startServer, waitFor, within } from '../lib/server.mjs';

test('every log line is JSON, with access lines for requests and sessions', async () => {
  // No AUTH_JWT_SECRET: the server makes its own secret and logs an admin token.
  const server = await startServer({ AUTH_JWT_SECRET: undefined });
  try {
    const live = await fetch(server.graphql, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query Live { liveMatches { id } }', operationName: 'Live' }),
    });
    assert.equal(live.status, 200);
    const refused = await fetch(server.graphql, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer garbage' },
      body: JSON.stringify({ query: '{ liveMatches { id } }' }),
    });
    assert.equal(refused.status, 401);

    const ws = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, lazy: false });
    await new Promise((resolve, reject) => {
      ws.subscribe({ query: '{ liveMatches { id } }' }, { next: () => {}, error: reject, complete: resolve });
    });
    await ws.dispose();
    await within(10_000, waitFor(() => server.logs.some((l) => l.includes('websocket session'))), 'the session line');
    await sleep(100);
  } finally {
    await server.stop();
  }
  const events = server.logs.map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      assert.fail(`a log line that is not JSON: ${line}`);
    }
  });
  const admin = events.find((e) => e.admin_token);
  assert.ok(admin && admin.admin_token.split('.').length === 3, 'the admin token is a log field');
  const request = events.find((e) => e.target === 'access' && e.operation === 'Live');
  assert.ok(request, 'an access line for the query');
  assert.equal(request.method, 'POST');
  assert.equal(request.path, '/graphql');
  assert.equal(request.status, 200);
  assert.equal(typeof request.latency_ms, 'number');
  const session = events.find((e) => e.message === 'websocket session');
  assert.ok(session && session.protocol === 'graphql-transport-ws' && session.operations === 1);
  assert.equal(events.filter((e) => e.message === 'authentication refused').length, 1);
});
