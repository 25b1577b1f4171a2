// Signing in to the console through an OpenID provider (Amazon Cognito's managed login, or any
// other): the authorization-code flow with PKCE (RFC 7636) for a public client, which has no
// secret. The server puts the settings and the provider's endpoints, read from its discovery
// document, in the page (the JSON element #console-settings), and allows the token and
// revocation endpoints' origins in the page's Content-Security-Policy (api/src/http/oidc.rs).
//
// - `beginSignIn` makes a code verifier (32 random bytes, 43 characters), its S256 challenge, a
//   state and a nonce, keeps the verifier, state and nonce in sessionStorage (this tab only) for
//   the trip to the provider and back, and navigates to the authorization endpoint.
// - Back on the console with `?code=&state=` (or `?error=`), `takeProviderAnswer` reads the answer
//   and removes it from the address bar, and `completeSignIn` checks the state, exchanges the code
//   at the token endpoint with the verifier, and checks the ID token's nonce, issuer and audience.
//   The flow's entry in sessionStorage is removed whatever the outcome.
// - `OidcSession` keeps the tokens in this page's memory only (a reload signs out), and refreshes
//   them a little before they expire and when the API refuses the token. Ending it forgets them,
//   revokes the refresh token where the provider has a revocation endpoint, and gives the
//   provider's end-session URL when it has one.
//
// ID tokens come straight from the token endpoint over TLS, so their signature is not checked
// here (OpenID Connect Core 3.1.3.7); the API checks the signature of every token it is sent.

const FLOW_KEY = 'scoreline.console.oidc.flow';
/** Refresh this long before expiry at most, and at most a quarter of the lifetime before. */
const REFRESH_MARGIN_MS = 60_000;
/** Retry a refresh that could not reach the provider after this long, doubling up to a minute. */
const RETRY_MS = 2_000;

/** A sign-in or refresh that failed; `code` is the provider's `error` when it gave one. */
export class OidcError extends Error {
  constructor(message, { code = null, retryable = false } = {}) {
    super(message);
    this.code = code;
    this.retryable = retryable;
  }
}

/** The console's sign-in settings: `{ tokenPaste, oidc }` (see api/src/http/oidc.rs). */
export function consoleSettings() {
  try {
    const settings = JSON.parse(document.getElementById('console-settings')?.textContent ?? '');
    return { tokenPaste: settings.tokenPaste !== false, oidc: settings.oidc ?? null };
  } catch {
    return { tokenPaste: true, oidc: null };
  }
}

/** The claims of a JWT, unverified (the server verifies it on every request). */
export function jwtClaims(token) {
  const part = typeof token === 'string' ? token.split('.')[1] : undefined;
  if (!part) throw new Error('this is not a token: a token has three parts separated by dots');
  const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function base64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** `count` random bytes, base64url: 32 bytes make 43 characters. */
function randomText(count) {
  return base64url(crypto.getRandomValues(new Uint8Array(count)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Where the provider sends the browser back: the setting, or this page. */
export function redirectUri(oidc) {
  return oidc.redirectUri ?? `${location.origin}${location.pathname}`;
}

/** Starts signing in: navigates away to the provider. */
export async function beginSignIn(oidc) {
  const verifier = randomText(32);
  const flow = { verifier, state: randomText(16), nonce: randomText(16), redirectUri: redirectUri(oidc) };
  const url = new URL(oidc.endpoints.authorization);
  const params = {
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: flow.redirectUri,
    scope: oidc.scopes,
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  try {
    sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
  } catch {
    throw new OidcError('This browser does not let the console keep the sign-in under way (session storage is off).');
  }
  location.assign(url.href);
}

/** The provider's answer in this page's address, if any (`{ code, state }` or
 * `{ error, description, state }`), removed from the address bar (and so from the history). */
export function takeProviderAnswer() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const answer = params.has('error')
    ? { error: params.get('error'), description: params.get('error_description'), state: params.get('state') }
    : { code: params.get('code'), state: params.get('state') };
  history.replaceState(history.state, '', `${location.pathname}${location.hash}`);
  return answer;
}

function takeFlow() {
  try {
    const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) ?? 'null');
    sessionStorage.removeItem(FLOW_KEY);
    return flow;
  } catch {
    return null;
  }
}

/** POSTs a form to the token endpoint; resolves with its JSON answer. */
async function tokenRequest(oidc, form) {
  let response;
  try {
    response = await fetch(oidc.endpoints.token, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new OidcError(`${oidc.name} cannot be reached.`, { retryable: true });
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: told by its status below.
  }
  if (response.ok && typeof body?.access_token === 'string') return body;
  if (typeof body?.error === 'string') {
    const detail = body.error_description ? ` (${body.error_description})` : '';
    throw new OidcError(`${oidc.name} refused: ${body.error}${detail}.`, {
      code: body.error,
      retryable: response.status >= 500,
    });
  }
  throw new OidcError(`${oidc.name} answered ${response.status} without tokens.`, {
    retryable: response.status >= 500 || response.status === 429,
  });
}

/** Checks an ID token's issuer and audience (and nonce, when `nonce` is given). */
function checkIdToken(oidc, idToken, nonce) {
  let claims;
  try {
    claims = jwtClaims(idToken);
  } catch {
    throw new OidcError(`${oidc.name} sent an ID token that cannot be read.`);
  }
  const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== oidc.issuer || !audience.includes(oidc.clientId)) {
    throw new OidcError(`${oidc.name} sent an ID token for another issuer or client.`);
  }
  if (nonce !== undefined && claims.nonce !== nonce) {
    throw new OidcError(`${oidc.name} sent an ID token for another sign-in (its nonce differs).`);
  }
  return claims;
}

/** Completes a sign-in from the provider's `answer`; resolves with an `OidcSession`. */
export async function completeSignIn(oidc, answer) {
  const flow = takeFlow();
  if (answer.error) {
    const detail = answer.description ? `: ${answer.description}` : '';
    throw new OidcError(`${oidc.name} did not sign you in (${answer.error}${detail}).`, { code: answer.error });
  }
  if (!flow || !answer.state || answer.state !== flow.state) {
    throw new OidcError(
      'This sign-in answer does not match a sign-in started in this tab, so it was not used. Sign in again.',
    );
  }
  const tokens = await tokenRequest(oidc, {
    grant_type: 'authorization_code',
    code: answer.code,
    code_verifier: flow.verifier,
    client_id: oidc.clientId,
    redirect_uri: flow.redirectUri,
  });
  if (typeof tokens.id_token !== 'string') {
    throw new OidcError(`${oidc.name} sent no ID token: the scopes must include openid.`);
  }
  const idClaims = checkIdToken(oidc, tokens.id_token, flow.nonce);
  return new OidcSession(oidc, tokens, idClaims);
}

/** A provider's tokens, in memory only, refreshed before they expire. `listen(fn)` gets
 * `{ kind: 'renewed', token }` after each refresh and `{ kind: 'ended', message, endSession }`
 * when the provider refuses to refresh them. */
export class OidcSession {
  constructor(oidc, tokens, idClaims) {
    this.oidc = oidc;
    this.subject = idClaims.sub;
    this.listeners = new Set();
    this.timer = null;
    this.refreshing = null;
    this.failures = 0;
    this.ended = false;
    this.keep(tokens, idClaims);
    this.wake = () => this.refreshIfDue();
    document.addEventListener('visibilitychange', this.wake);
    window.addEventListener('online', this.wake);
  }

  /** The token the API gets: the access token or the ID token, as configured. */
  get token() {
    return this.oidc.token === 'id' ? this.idToken : this.accessToken;
  }

  listen(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  keep(tokens, idClaims) {
    this.accessToken = tokens.access_token;
    if (typeof tokens.id_token === 'string') this.idToken = tokens.id_token;
    // Not every refresh answer has a new refresh token: the old one stays good until then.
    if (typeof tokens.refresh_token === 'string') this.refreshToken = tokens.refresh_token;
    this.idClaims = idClaims ?? this.idClaims;
    this.refreshAt = null;
    const lifetime = this.lifetime(tokens);
    if (lifetime !== null) {
      this.refreshAt = Date.now() + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 4);
    }
    this.schedule(this.refreshAt);
  }

  /** Milliseconds the sent token is good for, from now: `expires_in` for an access token, and
   * the token's own `exp - iat` (not `exp` itself, so that a wrong clock here does not matter). */
  lifetime(tokens) {
    const spans = [];
    if (this.oidc.token !== 'id' && Number(tokens.expires_in) > 0) spans.push(Number(tokens.expires_in) * 1000);
    try {
      const claims = jwtClaims(this.token);
      if (claims.exp > claims.iat) spans.push((claims.exp - claims.iat) * 1000);
    } catch {
      // An opaque token: `expires_in` only.
    }
    return spans.length ? Math.min(...spans) : null;
  }

  schedule(at) {
    clearTimeout(this.timer);
    this.timer = null;
    if (at === null || !this.refreshToken || this.ended) return;
    // setTimeout takes at most 2^31 - 1 ms (about 24 days).
    this.timer = setTimeout(() => this.refresh(), Math.min(2 ** 31 - 1, Math.max(0, at - Date.now())));
  }

  /** Back on the page, or back online: a refresh whose time passed meanwhile (timers sleep
   * with the device) is made now. */
  refreshIfDue() {
    if (document.visibilityState === 'hidden' || this.ended) return;
    if (this.refreshAt !== null && Date.now() >= this.refreshAt) this.refresh();
  }

  /** Refreshes the tokens (one refresh at a time); resolves true when they were renewed. */
  refresh() {
    this.refreshing ??= this.renew().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async renew() {
    if (this.ended || !this.refreshToken) return false;
    clearTimeout(this.timer);
    let tokens;
    let idClaims;
    try {
      tokens = await tokenRequest(this.oidc, {
        grant_type: 'refresh_token',
        refresh_token: this.refreshToken,
        client_id: this.oidc.clientId,
      });
      if (typeof tokens.id_token === 'string') {
        idClaims = checkIdToken(this.oidc, tokens.id_token);
        if (idClaims.sub !== this.subject) throw new OidcError(`${this.oidc.name} answered for another account.`);
      }
    } catch (error) {
      if (this.ended) return false;
      if (error.retryable) {
        // The provider is out of reach: try again soon, and when the browser is back online.
        this.failures += 1;
        const delay = Math.min(60_000, RETRY_MS * 2 ** (this.failures - 1));
        this.refreshAt = Date.now() + delay;
        this.schedule(this.refreshAt);
        return false;
      }
      const endSession = this.end();
      this.emit({
        kind: 'ended',
        message: `Your ${this.oidc.name} session has ended: ${error.message} Sign in again.`,
        endSession,
      });
      return false;
    }
    if (this.ended) return false;
    this.failures = 0;
    this.keep(tokens, idClaims);
    this.emit({ kind: 'renewed', token: this.token });
    return true;
  }

  /** After the API refused `refused` (UNAUTHENTICATED): the token to send again, renewed once,
   * or null when there is none better. */
  async renewAfterRefusal(refused) {
    if (this.ended) return null;
    if (this.token !== refused) return this.token;
    await this.refresh();
    return this.token !== refused && !this.ended ? this.token : null;
  }

  /** Signs out of the console: forgets the tokens and revokes the refresh token (where the
   * provider can). Returns the provider's end-session URL, to sign out there too, or null. */
  end() {
    if (this.ended) return null;
    this.ended = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.wake);
    window.removeEventListener('online', this.wake);
    const { endpoints, clientId } = this.oidc;
    if (endpoints.revocation && this.refreshToken) {
      fetch(endpoints.revocation, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: this.refreshToken, token_type_hint: 'refresh_token', client_id: clientId }).toString(),
        cache: 'no-store',
        credentials: 'omit',
        // Sent even when the page is left at once (for the provider's own sign-out).
        keepalive: true,
      })
        .then((response) => response.text())
        .catch(() => {});
    }
    let endSession = null;
    if (endpoints.endSession) {
      const url = new URL(endpoints.endSession);
      const back = redirectUri(this.oidc);
      // RP-Initiated Logout's parameters, and Cognito's own (`logout_uri`).
      url.searchParams.set('client_id', clientId);
      if (this.idToken) url.searchParams.set('id_token_hint', this.idToken);
      url.searchParams.set('post_logout_redirect_uri', back);
      url.searchParams.set('logout_uri', back);
      endSession = url.href;
    }
    this.accessToken = null;
    this.idToken = null;
    this.refreshToken = null;
    this.idClaims = null;
    return endSession;
  }
}
