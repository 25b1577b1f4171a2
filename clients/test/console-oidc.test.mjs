// The console signing in through an OpenID provider, in Debian's Chromium at a phone's width.
// The provider is a mock written here (node:http on 127.0.0.1, an RSA key pair from
// node:crypto): discovery, JWKS, an authorization endpoint that sends the browser straight back
// with a code (as if the user had signed in), a token endpoint that checks the PKCE verifier
// against the challenge and issues RS256 tokens shaped like Cognito's (`cognito:groups`), with
// a short lifetime and a refresh token, a revocation endpoint and an end-session endpoint. The
// API trusts it through AUTH_JWKS_URL (and no HS256 secret), and the console is configured with
// CONSOLE_OIDC_*:
// - an operator signs in through the flow and records a goal, which the API applies;
// - the token is refreshed before it expires, and a write after the refresh carries the new one;
// - when the API refuses a token, the console renews it once and sends the tap again, and no
//   more than once;
// - a forged state, a tampered verifier and a provider's error are shown, and nobody is signed in;
// - nothing but the outbox and the matches last seen is kept in storage, and no token anywhere;
// - a reload signs out; signing out revokes the refresh token and offers the provider's sign-out.
// Requests to origins other than the server's and the provider's, page errors and console
// errors (CSP violations are reported there) fail the run, except those a test expects.
// Screenshots go to clients/artifacts/.

import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ARTIFACTS, launchChromium } from '../lib/browser.mjs';
import { graphql, sleep, startServer } from '../lib/server.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PHONE = { width: 360, height: 780 };
const CLIENT_ID = 'scoreline-console-test';
const PROVIDER = 'Scoreline Test IdP';
const SIGN_IN = `Sign in with ${PROVIDER}`;
/** Seconds the provider's tokens live: the console refreshes them a quarter of that early. */
const LIFETIME = 6;
const MATCH = 'soccer-live-1';
/** Where oidc.js keeps the flow under way (sessionStorage). */
const FLOW_KEY = 'scoreline.console.oidc.flow';

let provider;
let server;
let browser;
let home;

// ---------------------------------------------------------------------------------------------
// The mock provider

function base64url(data) {
  return Buffer.from(data).toString('base64url');
}

function s256(verifier) {
  return createHash('sha256').update(verifier).digest('base64url');
}

async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the provider on a free loopback port. Its fields record what it saw: `authorizations`
 * (the query of each authorization request), `grants` (`{ type, at, ok, error }` for each token
 * request), `revoked`, `logouts`; `issued` maps every token it issued to the grant that made it.
 * Set `deny` to answer the next authorization with an error, `expiresIn` for the lifetime of
 * the tokens issued next. */
async function startProvider() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'test-key-1';
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const state = {
    issuer: null,
    origin: null,
    redirectUri: null,
    expiresIn: LIFETIME,
    deny: null,
    authorizations: [],
    grants: [],
    revoked: [],
    logouts: [],
    issued: new Map(),
    /** code → { challenge, nonce, redirectUri, used } */
    codes: new Map(),
    /** refresh token → subject */
    refreshTokens: new Map(),
  };

  function jwt(claims) {
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const payload = base64url(JSON.stringify(claims));
    const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
    return `${header}.${payload}.${signature}`;
  }

  function tokens(grant, { sub, nonce }) {
    const now = Math.floor(Date.now() / 1000);
    const common = { sub, 'cognito:groups': ['operator'], iss: state.issuer, iat: now, auth_time: now, exp: now + state.expiresIn };
    const access = jwt({ ...common, token_use: 'access', scope: 'openid profile email', jti: randomUUID(), client_id: CLIENT_ID, username: 'olive' });
    const id = jwt({ ...common, token_use: 'id', aud: CLIENT_ID, email: 'olive@example.com', 'cognito:username': 'olive', ...(nonce ? { nonce } : {}) });
    state.issued.set(access, grant);
    state.issued.set(id, grant);
    const body = { access_token: access, id_token: id, token_type: 'Bearer', expires_in: state.expiresIn };
    if (grant === 'authorization_code') {
      // As Cognito: a refresh token with the code's tokens, none with refreshed ones.
      body.refresh_token = randomBytes(32).toString('base64url');
      state.refreshTokens.set(body.refresh_token, sub);
      state.issued.set(body.refresh_token, grant);
    }
    return body;
  }

  function send(response, status, body, headers = {}) {
    response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    response.end(JSON.stringify(body));
  }

  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url, state.issuer);
    // The console posts from the API's origin: CORS, without credentials.
    response.setHeader('access-control-allow-origin', request.headers.origin ?? '*');
    response.setHeader('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      response.writeHead(204, {
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
      });
      return response.end();
    }
    if (request.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return send(response, 200, {
        issuer: state.issuer,
        authorization_endpoint: `${state.issuer}/oauth2/authorize`,
        token_endpoint: `${state.issuer}/oauth2/token`,
        revocation_endpoint: `${state.issuer}/oauth2/revoke`,
        end_session_endpoint: `${state.issuer}/logout`,
        jwks_uri: `${state.issuer}/.well-known/jwks.json`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: ['openid', 'profile', 'email'],
      });
    }
    if (request.method === 'GET' && url.pathname === '/.well-known/jwks.json') {
      return send(response, 200, { keys: [jwk] });
    }
    if (request.method === 'GET' && url.pathname === '/oauth2/authorize') {
      const query = Object.fromEntries(url.searchParams);
      state.authorizations.push(query);
      const problems = [];
      if (query.response_type !== 'code') problems.push('response_type');
      if (query.client_id !== CLIENT_ID) problems.push('client_id');
      if (query.redirect_uri !== state.redirectUri) problems.push('redirect_uri');
      if (query.code_challenge_method !== 'S256') problems.push('code_challenge_method');
      if (!/^[A-Za-z0-9_-]{43}$/.test(query.code_challenge ?? '')) problems.push('code_challenge');
      if (!query.scope?.split(' ').includes('openid')) problems.push('scope');
      if (!query.state || !query.nonce) problems.push('state or nonce');
      if (problems.length) {
        // A provider does not send the browser back to an unchecked redirect URI.
        response.writeHead(400, { 'content-type': 'text/plain' });
        return response.end(`bad authorization request: ${problems.join(', ')}`);
      }
      const back = new URL(query.redirect_uri);
      if (state.deny) {
        back.searchParams.set('error', state.deny.error);
        back.searchParams.set('error_description', state.deny.description);
        state.deny = null;
      } else {
        const code = randomBytes(24).toString('base64url');
        state.codes.set(code, { challenge: query.code_challenge, nonce: query.nonce, redirectUri: query.redirect_uri, used: false });
        back.searchParams.set('code', code);
      }
      back.searchParams.set('state', query.state);
      response.writeHead(302, { location: back.href });
      return response.end();
    }
    if (request.method === 'POST' && url.pathname === '/oauth2/token') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(request)));
      const refuse = (error, description) => {
        state.grants.push({ type: form.grant_type, at: Date.now(), ok: false, error, form });
        send(response, 400, { error, error_description: description });
      };
      if (request.headers['content-type'] !== 'application/x-www-form-urlencoded') {
        return refuse('invalid_request', 'the body must be form-encoded');
      }
      if (form.client_id !== CLIENT_ID) return refuse('invalid_client', 'unknown client');
      if (form.grant_type === 'authorization_code') {
        const grant = state.codes.get(form.code);
        if (!grant || grant.used) return refuse('invalid_grant', 'unknown or used code');
        grant.used = true;
        if (form.redirect_uri !== grant.redirectUri) return refuse('invalid_grant', 'redirect_uri differs');
        if (!form.code_verifier || s256(form.code_verifier) !== grant.challenge) {
          return refuse('invalid_grant', 'PKCE verification failed');
        }
        const body = tokens('authorization_code', { sub: 'olive-0001', nonce: grant.nonce });
        state.grants.push({ type: form.grant_type, at: Date.now(), ok: true, form, body });
        return send(response, 200, body);
      }
      if (form.grant_type === 'refresh_token') {
        const sub = state.refreshTokens.get(form.refresh_token);
        if (!sub) return refuse('invalid_grant', 'unknown or revoked refresh token');
        const body = tokens('refresh_token', { sub });
        state.grants.push({ type: form.grant_type, at: Date.now(), ok: true, form, body });
        return send(response, 200, body);
      }
      return refuse('unsupported_grant_type', form.grant_type);
    }
    if (request.method === 'POST' && url.pathname === '/oauth2/revoke') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(request)));
      state.revoked.push(form);
      if (form.client_id === CLIENT_ID) state.refreshTokens.delete(form.token);
      response.writeHead(200);
      return response.end();
    }
    if (request.method === 'GET' && url.pathname === '/logout') {
      const query = Object.fromEntries(url.searchParams);
      state.logouts.push(query);
      response.writeHead(302, { location: query.logout_uri });
      return response.end();
    }
    response.writeHead(404);
    response.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.origin = `http://127.0.0.1:${server.address().port}`;
  state.issuer = state.origin;
  state.close = () => new Promise((resolve) => server.close(resolve));
  // Keep-alive connections from the API and the browser would hold close() open.
  state.closeConnections = () => server.closeAllConnections();
  return state;
}

// ---------------------------------------------------------------------------------------------
// The browser

/** Pages and what went wrong on them; `allow` lists problems a test expects on that page. */
const watched = [];

function watch(page, name, allow = []) {
  const record = { name, foreign: [], problems: [], allow };
  watched.push(record);
  const allowed = (text) => record.allow.some((pattern) => pattern.test(text));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:') return;
    const origin = url.origin.replace(/^ws/, 'http');
    if (origin !== server.url && origin !== provider.origin) record.foreign.push(request.url());
  });
  page.on('pageerror', (error) => record.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !allowed(message.text())) record.problems.push(`console error: ${message.text()}`);
  });
  page.on('requestfailed', (request) => {
    const text = `request failed: ${request.url()} ${request.failure()?.errorText}`;
    if (!allowed(text)) record.problems.push(text);
  });
  page.on('response', (response) => {
    const text = `${response.status()} for ${response.url()}`;
    if (response.status() >= 400 && !allowed(text)) record.problems.push(text);
  });
}

/** A new phone-sized context and its page, watched. */
async function newPage(name, allow = []) {
  const context = await browser.newContext({ viewport: PHONE, hasTouch: true, isMobile: true });
  const page = await context.newPage();
  watch(page, name, allow);
  return page;
}

function shot(page, name) {
  return page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** No WCAG 2.1 A or AA violation that axe-core can find. */
async function accessible(page, what) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  });
  assert.deepEqual(violations, [], `${what}:\n${violations.join('\n')}`);
}

/** The match as stored, over HTTP (queries are public). */
async function stored() {
  const body = await graphql(server, `query($id: ID!) { match(id: $id) { version score { home away } } }`, { id: MATCH });
  return body.data.match;
}

/** The successful token requests of `type` so far. */
function grants(type) {
  return provider.grants.filter((g) => g.type === type && g.ok);
}

/** The refresh requests, successful or not, made with `refreshToken` (one console's session). */
function refreshesWith(refreshToken) {
  return provider.grants.filter((g) => g.type === 'refresh_token' && g.form.refresh_token === refreshToken);
}

/** The refresh token of the last sign-in. */
function lastRefreshToken() {
  return grants('authorization_code').at(-1).body.refresh_token;
}

/** Signs in through the provider from the console's sign-in screen. */
async function signIn(page) {
  await page.getByRole('button', { name: SIGN_IN }).click();
  await page.getByText('Signed in as').waitFor({ timeout: 15_000 });
}

/** Opens the match and records a home goal; resolves once the API has applied it and the
 * outbox is empty. */
async function recordGoal(page) {
  const select = page.getByLabel('Match', { exact: true });
  if ((await select.inputValue()) !== MATCH) await select.selectOption(MATCH);
  const goal = page.getByRole('button', { name: `Goal for ${home}`, exact: true });
  await goal.waitFor({ timeout: 10_000 });
  await page.getByText(/version \d+/).waitFor({ timeout: 10_000 });
  const before = (await stored()).version;
  await goal.click();
  await eventually(15_000, 'the goal applied', async () => (await stored()).version > before);
  await page.locator('.outbox[data-waiting="0"]').waitFor({ state: 'attached', timeout: 15_000 });
}

/** Resolves once `predicate()` (which may be async) holds, polling every 50 ms; rejects,
 * naming `what`, after `ms` milliseconds. */
async function eventually(ms, what, predicate) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(50);
  }
}

/** The bearer token of every recordEvent request the page sends, in the order sent: each
 * request takes its place at once, its token a moment later (`settled` waits for them). */
function writesOf(page) {
  const tokens = [];
  page.on('request', (request) => {
    if (!request.url().endsWith('/graphql') || request.method() !== 'POST') return;
    if (!(request.postData() ?? '').includes('recordEvent')) return;
    const at = tokens.push(null) - 1;
    request.allHeaders().then((headers) => {
      tokens[at] = headers.authorization?.replace(/^Bearer /, '') ?? 'none';
    });
  });
  return tokens;
}

/** `writes` once every token in it is known. */
async function settled(writes) {
  await eventually(5_000, 'the headers of the writes', () => writes.every((token) => token !== null));
  return writes;
}

before(async () => {
  provider = await startProvider();
  server = await startServer({
    AUTH_JWT_SECRET: undefined,
    AUTH_JWKS_URL: `${provider.issuer}/.well-known/jwks.json`,
    AUTH_ISSUER: provider.issuer,
    AUTH_AUDIENCE: CLIENT_ID,
    CONSOLE_OIDC_ISSUER: provider.issuer,
    CONSOLE_OIDC_CLIENT_ID: CLIENT_ID,
    CONSOLE_OIDC_NAME: PROVIDER,
  });
  // The console's own URL, as a provider has it registered for the app client.
  provider.redirectUri = `${server.url}/console`;
  browser = await launchChromium();
  const data = await graphql(server, `{ match(id: "${MATCH}") { status homeTeam { name } } }`);
  assert.equal(data.data.match.status, 'LIVE');
  home = data.data.match.homeTeam.name;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  provider?.closeConnections();
  await provider?.close();
});

// ---------------------------------------------------------------------------------------------
// The tests

/** The operator's console for the tests that follow one another, and its refresh token. */
let page;
let pageRefreshToken;

test('the console offers the provider and no token field, and its CSP allows the provider', async () => {
  page = await newPage('console');
  const response = await page.goto(`${server.url}/console`);
  assert.equal(response.status(), 200);
  const csp = response.headers()['content-security-policy'] ?? '';
  assert.match(csp, new RegExp(`connect-src 'self' ${provider.origin.replace(/[.]/g, '\\.')};`));
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe/);
  const settings = JSON.parse(await page.locator('#console-settings').textContent());
  assert.equal(settings.tokenPaste, false);
  assert.equal(settings.oidc.clientId, CLIENT_ID);
  assert.equal(settings.oidc.endpoints.token, `${provider.issuer}/oauth2/token`);
  await page.getByRole('button', { name: SIGN_IN }).waitFor({ timeout: 15_000 });
  assert.equal(await page.getByLabel('Access token').count(), 0, 'no token field with OIDC on');
  await accessible(page, 'the sign-in screen');
  await shot(page, 'console-oidc-sign-in');
});

test('an operator signs in through the provider and records a goal, which the API applies', async () => {
  await signIn(page);
  pageRefreshToken = lastRefreshToken();
  await page.getByText('olive@example.com').waitFor();
  await page.getByText('(operator)').waitFor();
  // The answer was taken out of the address bar, and the flow out of sessionStorage.
  assert.equal(page.url(), `${server.url}/console`);
  assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), FLOW_KEY), null);
  const authorization = provider.authorizations.at(-1);
  assert.equal(authorization.code_challenge_method, 'S256');
  assert.equal(authorization.redirect_uri, `${server.url}/console`);
  assert.equal(authorization.scope, 'openid profile email');
  const exchange = provider.grants.at(-1);
  assert.equal(exchange.type, 'authorization_code');
  assert.ok(exchange.ok, JSON.stringify(exchange));
  assert.match(exchange.form.code_verifier, /^[A-Za-z0-9_-]{43,128}$/);
  assert.equal(s256(exchange.form.code_verifier), authorization.code_challenge);

  const before = await stored();
  await recordGoal(page);
  const after = await stored();
  assert.deepEqual(after.score, { home: before.score.home + 1, away: before.score.away });
  assert.equal(after.version, before.version + 1);
  await accessible(page, 'match day, signed in through the provider');
  await shot(page, 'console-oidc-signed-in');
});

test('the token is refreshed before it expires, and a write after the refresh carries the new one', async () => {
  const signedIn = grants('authorization_code').at(-1);
  await eventually(3 * LIFETIME * 1000, 'a refresh_token grant', () => refreshesWith(pageRefreshToken).length > 0);
  const refresh = refreshesWith(pageRefreshToken)[0];
  assert.ok(refresh.ok, JSON.stringify(refresh));
  assert.ok(
    refresh.at - signedIn.at < LIFETIME * 1000,
    `refreshed ${refresh.at - signedIn.at} ms after sign-in, tokens last ${LIFETIME} s`,
  );
  assert.equal(refresh.form.refresh_token, signedIn.body.refresh_token);
  assert.equal(refresh.form.client_id, CLIENT_ID);

  const writes = writesOf(page);
  const before = await stored();
  await recordGoal(page);
  assert.deepEqual((await stored()).score, { home: before.score.home + 1, away: before.score.away });
  assert.equal(writes.length, 1);
  await settled(writes);
  assert.equal(provider.issued.get(writes[0]), 'refresh_token', 'the write carried a refreshed token');

  // And it keeps going: two lifetimes later, still signed in, writes still applied.
  const count = refreshesWith(pageRefreshToken).length;
  await eventually(3 * LIFETIME * 1000, 'two more refreshes', () => refreshesWith(pageRefreshToken).length >= count + 2);
  await recordGoal(page);
  assert.equal((await stored()).score.home, before.score.home + 2);
  await settled(writes);
  assert.equal(provider.issued.get(writes.at(-1)), 'refresh_token');
  assert.notEqual(writes.at(-1), writes[0]);
});

test('nothing but the outbox and the matches last seen is kept in storage, and no token', async () => {
  const storage = await page.evaluate(() => ({
    local: Object.fromEntries(Object.entries(localStorage)),
    session: Object.fromEntries(Object.entries(sessionStorage)),
    cookie: document.cookie,
  }));
  for (const key of Object.keys(storage.local)) {
    assert.ok(
      key === 'scoreline.console.outbox.v1' || key.startsWith('scoreline.console.match.'),
      `unexpected localStorage key ${key}`,
    );
  }
  assert.deepEqual(storage.session, {});
  assert.equal(storage.cookie, '');
  const everything = JSON.stringify(storage);
  for (const token of provider.issued.keys()) {
    assert.ok(!everything.includes(token), 'a token is kept in storage');
  }
  assert.ok(!/eyJ[\w-]+\.eyJ/.test(everything), 'something like a JWT is kept in storage');
});

test('when the API refuses the token, the console renews it once and sends the tap again', async () => {
  // Tokens that last long enough that no scheduled refresh interferes.
  provider.expiresIn = 3600;
  const refused = await newPage('refusals', [/^401 for .*\/graphql$/, /status of 401/]);
  try {
    await refused.goto(`${server.url}/console`);
    await signIn(refused);
    const refreshToken = lastRefreshToken();
    const writes = writesOf(refused);
    let answered = 0;
    // The first write is answered as an expired token is.
    await refused.route('**/graphql', async (route) => {
      if ((route.request().postData() ?? '').includes('recordEvent') && answered === 0) {
        answered += 1;
        return route.fulfill({
          status: 401,
          contentType: 'application/json',
          body: JSON.stringify({ errors: [{ message: 'the token has expired', extensions: { code: 'UNAUTHENTICATED' } }] }),
        });
      }
      return route.continue();
    });
    const before = await stored();
    await recordGoal(refused);
    assert.equal(answered, 1);
    assert.equal(refreshesWith(refreshToken).length, 1, 'one refresh, for the refusal');
    assert.equal(writes.length, 2);
    await settled(writes);
    assert.equal(provider.issued.get(writes[0]), 'authorization_code');
    assert.equal(provider.issued.get(writes[1]), 'refresh_token', 'sent again with the renewed token');
    const after = await stored();
    assert.deepEqual(after.score, { home: before.score.home + 1, away: before.score.away });
    assert.equal(after.version, before.version + 1, 'applied once');

    // Refused again after the renewal: no loop of refreshes, the outbox waits for a sign-in.
    await refused.unroute('**/graphql');
    await refused.route('**/graphql', (route) =>
      (route.request().postData() ?? '').includes('recordEvent')
        ? route.fulfill({
            status: 401,
            contentType: 'application/json',
            body: JSON.stringify({ errors: [{ message: 'the token is not accepted', extensions: { code: 'UNAUTHENTICATED' } }] }),
          })
        : route.continue(),
    );
    await refused.getByRole('button', { name: `Goal for ${home}`, exact: true }).click();
    await refused.getByText(/waiting: the server refused the token .*Sign in again/).waitFor({ timeout: 10_000 });
    await sleep(4_000);
    assert.equal(refreshesWith(refreshToken).length, 2, 'one refresh for this refusal, and no more');
    assert.equal(writes.length, 4, 'sent twice, then held');
    await shot(refused, 'console-oidc-refused');

    // Signed in again, the held tap goes.
    await refused.unroute('**/graphql');
    await refused.getByRole('button', { name: 'Sign out' }).click();
    await signIn(refused);
    await refused.locator('.outbox[data-waiting="0"]').waitFor({ state: 'attached', timeout: 15_000 });
    assert.equal((await stored()).score.home, before.score.home + 2);
  } finally {
    provider.expiresIn = LIFETIME;
    await refused.context().close();
  }
});

test('a sign-in answer whose state does not match is refused, and nobody is signed in', async () => {
  const forged = await newPage('forged state');
  try {
    const exchanges = provider.grants.length;
    await forged.goto(`${server.url}/console?code=forged-code&state=forged-state`);
    await forged.getByRole('alert').filter({ hasText: 'does not match a sign-in started in this tab' }).waitFor({ timeout: 15_000 });
    assert.equal(forged.url(), `${server.url}/console`);
    assert.equal(await forged.getByText('Signed in as').count(), 0);
    assert.equal(provider.grants.length, exchanges, 'no token request');

    // A real answer from the provider, but the state kept in this tab differs from the one
    // that came back: the code is not even exchanged.
    await forged.addInitScript((key) => {
      if (!location.search.includes('code=')) return;
      const flow = JSON.parse(sessionStorage.getItem(key));
      sessionStorage.setItem(key, JSON.stringify({ ...flow, state: 'another-state' }));
    }, FLOW_KEY);
    // A new page, without the alert above.
    await forged.goto(`${server.url}/console`);
    const authorizations = provider.authorizations.length;
    await forged.getByRole('button', { name: SIGN_IN }).click();
    await forged.getByRole('alert').filter({ hasText: 'does not match a sign-in started in this tab' }).waitFor({ timeout: 15_000 });
    assert.equal(await forged.getByText('Signed in as').count(), 0);
    assert.equal(provider.authorizations.length, authorizations + 1);
    assert.equal(provider.grants.length, exchanges, 'no token request');
    const code = [...provider.codes.values()].at(-1);
    assert.equal(code.used, false);
    await accessible(forged, 'a refused sign-in');
    await shot(forged, 'console-oidc-forged-state');
  } finally {
    await forged.context().close();
  }
});

test("the provider's error is shown, and nobody is signed in", async () => {
  const denied = await newPage('provider error');
  try {
    await denied.goto(`${server.url}/console`);
    provider.deny = { error: 'access_denied', description: 'This user may not use the console' };
    await denied.getByRole('button', { name: SIGN_IN }).click();
    await denied
      .getByRole('alert')
      .filter({ hasText: `${PROVIDER} did not sign you in (access_denied: This user may not use the console)` })
      .waitFor({ timeout: 15_000 });
    assert.equal(denied.url(), `${server.url}/console`);
    assert.equal(await denied.getByText('Signed in as').count(), 0);
    assert.equal(await denied.evaluate((key) => sessionStorage.getItem(key), FLOW_KEY), null);
    await shot(denied, 'console-oidc-provider-error');
  } finally {
    provider.deny = null;
    await denied.context().close();
  }
});

test('the token endpoint checks the PKCE verifier: a wrong one is refused, and the console says so', async () => {
  // The mock itself: the right verifier gets tokens, a wrong one does not.
  async function code(verifier) {
    const url = new URL(`${provider.issuer}/oauth2/authorize`);
    const query = {
      response_type: 'code', client_id: CLIENT_ID, redirect_uri: provider.redirectUri, scope: 'openid',
      state: 'direct', nonce: 'direct', code_challenge: s256(verifier), code_challenge_method: 'S256',
    };
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const response = await fetch(url, { redirect: 'manual' });
    assert.equal(response.status, 302);
    return new URL(response.headers.get('location')).searchParams.get('code');
  }
  async function exchange(codeValue, verifier) {
    const response = await fetch(`${provider.issuer}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code: codeValue, code_verifier: verifier,
        client_id: CLIENT_ID, redirect_uri: provider.redirectUri,
      }).toString(),
    });
    return { status: response.status, body: await response.json() };
  }
  const verifier = randomBytes(32).toString('base64url');
  const wrong = await exchange(await code(verifier), randomBytes(32).toString('base64url'));
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.error, 'invalid_grant');
  const right = await exchange(await code(verifier), verifier);
  assert.equal(right.status, 200);
  assert.ok(right.body.access_token);

  // The console whose verifier was swapped on the way: refused, and said so.
  const tampered = await newPage('tampered verifier', [/status of 400/, /^400 for .*\/oauth2\/token$/]);
  try {
    await tampered.addInitScript((key) => {
      if (!location.search.includes('code=')) return;
      const flow = JSON.parse(sessionStorage.getItem(key));
      const swapped = flow.verifier.startsWith('A') ? `B${flow.verifier.slice(1)}` : `A${flow.verifier.slice(1)}`;
      sessionStorage.setItem(key, JSON.stringify({ ...flow, verifier: swapped }));
    }, FLOW_KEY);
    await tampered.goto(`${server.url}/console`);
    await tampered.getByRole('button', { name: SIGN_IN }).click();
    await tampered
      .getByRole('alert')
      .filter({ hasText: `${PROVIDER} refused: invalid_grant (PKCE verification failed)` })
      .waitFor({ timeout: 15_000 });
    assert.equal(await tampered.getByText('Signed in as').count(), 0);
    const refusal = provider.grants.at(-1);
    assert.equal(refusal.ok, false);
    assert.equal(refusal.error, 'invalid_grant');
  } finally {
    await tampered.context().close();
  }
});

test('a reload signs out; signing in again goes straight through', async () => {
  const authorizations = provider.authorizations.length;
  await page.reload();
  await page.getByRole('button', { name: SIGN_IN }).waitFor({ timeout: 15_000 });
  assert.equal(await page.getByText('Signed in as').count(), 0);
  await signIn(page);
  assert.equal(provider.authorizations.length, authorizations + 1);
  pageRefreshToken = lastRefreshToken();
});

test('signing out forgets the tokens, revokes the refresh token and offers to sign out at the provider', async () => {
  // Signed in since the reload, with tokens that are refreshed every few seconds.
  await eventually(3 * LIFETIME * 1000, 'a refresh', () => refreshesWith(pageRefreshToken).length > 0);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out of the console.').waitFor();
  await eventually(5_000, 'the refresh token revoked', () => provider.revoked.some((r) => r.token === pageRefreshToken));
  const revocation = provider.revoked.find((r) => r.token === pageRefreshToken);
  assert.equal(revocation.client_id, CLIENT_ID);
  assert.equal(revocation.token_type_hint, 'refresh_token');
  await accessible(page, 'signed out');
  await shot(page, 'console-oidc-signed-out');
  // No refresh is tried after sign-out.
  const refreshes = refreshesWith(pageRefreshToken).length;
  await sleep(LIFETIME * 1000);
  assert.equal(refreshesWith(pageRefreshToken).length, refreshes, 'no refresh after sign-out');

  const logouts = provider.logouts.length;
  await page.getByRole('button', { name: `Sign out of ${PROVIDER} too` }).click();
  await eventually(10_000, 'the end-session request', () => provider.logouts.length > logouts);
  await page.getByText('You are signed out of the console.').waitFor({ state: 'detached', timeout: 15_000 });
  await page.getByRole('button', { name: SIGN_IN }).waitFor({ timeout: 15_000 });
  const logout = provider.logouts.at(-1);
  assert.equal(logout.client_id, CLIENT_ID);
  assert.equal(logout.logout_uri, `${server.url}/console`);
  assert.equal(logout.post_logout_redirect_uri, `${server.url}/console`);
  assert.ok(provider.issued.has(logout.id_token_hint), 'the hint is an ID token the provider issued');
  assert.equal(page.url(), `${server.url}/console`);
});

test('nothing was requested from another origin, and nothing failed', async () => {
  await sleep(200);
  for (const record of watched) {
    assert.deepEqual(record.foreign, [], `${record.name}: requests to other origins: ${record.foreign.join(', ')}`);
    assert.deepEqual(record.problems, [], `${record.name}:\n${record.problems.join('\n')}`);
  }
});
