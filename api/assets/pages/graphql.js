// The pages' GraphQL client: queries and mutations with fetch to /graphql, subscriptions over
// one WebSocket to /graphql speaking graphql-transport-ws. The socket reconnects by itself
// (backoff with jitter) and resubscribes each subscription with variables computed afresh, so
// a caller that passes the last `version` or `seq` it saw resumes with no gap and no repeat.
// Subscriptions are public, so the socket sends no token.

/** The server answered with GraphQL errors; `code` is the first one's `extensions.code`. */
export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; ') || 'the request failed');
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
    this.extensions = errors[0]?.extensions ?? {};
  }
}

/** No answer: offline, the server unreachable or overloaded. Worth retrying later. */
export class NetworkError extends Error {}

/** Codes that say "nothing was done, try again later". */
const RETRYABLE = new Set(['SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL_SERVER_ERROR']);

export function isRetryable(error) {
  return error instanceof NetworkError || (error instanceof GraphQLError && RETRYABLE.has(error.code));
}

/** POSTs one operation; resolves with `data`, rejects with GraphQLError or NetworkError. */
export async function request(query, variables = {}, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query, variables }),
      cache: 'no-store',
    });
  } catch {
    throw new NetworkError('the server cannot be reached');
  }
  if (response.status === 408 || response.status === 429 || response.status >= 500) {
    throw new NetworkError(`the server answered ${response.status}`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new NetworkError(`the server's answer (${response.status}) could not be read`);
  }
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

/** One WebSocket carrying many subscriptions. `onStatus('live' | 'reconnecting')` reports its
 * state; 'live' is also reported after each reconnect, once the subscriptions are resent. */
export class Live {
  constructor(onStatus = () => {}) {
    this.onStatus = onStatus;
    this.subs = new Map();
    this.nextId = 1;
    this.retries = 0;
    this.acked = false;
    this.closed = false;
    this.ws = null;
    this.timer = null;
    // Back online: try at once rather than at the end of the backoff.
    this.wake = () => {
      if (!this.ws && !this.closed) {
        clearTimeout(this.timer);
        this.connect();
      }
    };
    window.addEventListener('online', this.wake);
    this.connect();
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/graphql`, 'graphql-transport-ws');
    this.ws = ws;
    this.acked = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.acked = false;
      if (this.closed) return;
      this.onStatus('reconnecting');
      const delay = Math.min(5000, 300 * 2 ** this.retries) * (0.5 + Math.random() / 2);
      this.retries += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(ws, text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const sub = this.subs.get(message.id);
    switch (message.type) {
      case 'connection_ack':
        this.acked = true;
        this.retries = 0;
        for (const [id, s] of this.subs) this.start(id, s);
        this.onStatus('live');
        break;
      case 'ping':
        ws.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'next':
        if (!sub) break;
        if (message.payload?.errors?.length) sub.error(new GraphQLError(message.payload.errors));
        else sub.next(message.payload.data);
        break;
      case 'error':
        if (!sub) break;
        this.subs.delete(message.id);
        sub.error(new GraphQLError(message.payload ?? []));
        break;
      case 'complete':
        // The server ended it (after an error): it is not resent on reconnect.
        this.subs.delete(message.id);
        break;
      default:
        break;
    }
  }

  start(id, sub) {
    this.ws.send(
      JSON.stringify({ id, type: 'subscribe', payload: { query: sub.query, variables: sub.variables() } }),
    );
  }

  /** Subscribes; `variables` is an object or a function called at each (re)subscribe. Returns
   * the function that ends the subscription. */
  subscribe(query, variables, next, error = (e) => console.warn(e.message)) {
    const id = String(this.nextId++);
    const sub = { query, variables: typeof variables === 'function' ? variables : () => variables, next, error };
    this.subs.set(id, sub);
    if (this.acked) this.start(id, sub);
    return () => {
      if (this.subs.delete(id) && this.acked) this.ws.send(JSON.stringify({ id, type: 'complete' }));
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.wake);
    this.ws?.close(1000);
  }
}

/** The fields both pages show of a match. */
export const MATCH_FIELDS = `
  fragment MatchFields on Match {
    id sport status version lastSeq startTime venue updatedAt
    competition { id name }
    homeTeam { id name shortName }
    awayTeam { id name shortName }
    score { home away }
    clock { period elapsedSeconds running }
  }`;

/** The fields both pages show of a timeline event. */
export const EVENT_FIELDS = `
  fragment EventFields on MatchEvent {
    id matchId seq type side player points period clockSeconds description createdAt
  }`;
