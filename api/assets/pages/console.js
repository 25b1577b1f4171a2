// The console at /console: operators run match day (status, periods, events, score
// corrections, the live timeline); admins also create competitions, teams and matches.
//
// Signing in: a token pasted in (development), or through the OpenID provider the server is
// configured with (oidc.js). Either way the token is kept in this module's memory only: a
// reload signs the operator out. A provider's tokens are refreshed before they expire, and
// once more when the API refuses one. Taps go through the outbox (queue.js), kept in
// localStorage, so they survive a reload and are sent once the operator is signed in and the
// network is back. The service worker (/console-sw.js) keeps this page's files, so the page
// itself reloads without a network.
import { html, render, useEffect, useLayoutEffect, useReducer, useRef, useState } from '{{preact-htm.module.js}}';
import { Live, MATCH_FIELDS, EVENT_FIELDS, request, GraphQLError, NetworkError } from '{{graphql.js}}';
import { Outbox } from '{{queue.js}}';
import { EVENT_LABELS, STATUS_LABELS, ScoreLine, Timeline, newer, teamName } from '{{ui.js}}';
import { Admin } from '{{admin.js}}';
import { beginSignIn, completeSignIn, consoleSettings, jwtClaims, takeProviderAnswer } from '{{oidc.js}}';

const MUTATIONS = {
  recordEvent: `mutation RecordEvent($input: RecordEventInput!) {
    recordEvent(input: $input) { ...MatchFields } } ${MATCH_FIELDS}`,
  setMatchStatus: `mutation SetMatchStatus($input: SetMatchStatusInput!) {
    setMatchStatus(input: $input) { ...MatchFields } } ${MATCH_FIELDS}`,
  updateScore: `mutation UpdateScore($input: UpdateScoreInput!) {
    updateScore(input: $input) { ...MatchFields } } ${MATCH_FIELDS}`,
  updateClock: `mutation UpdateClock($input: UpdateClockInput!) {
    updateClock(input: $input) { ...MatchFields } } ${MATCH_FIELDS}`,
};

const MATCH_QUERY = `query Match($id: ID!) { match(id: $id) { ...MatchFields } } ${MATCH_FIELDS}`;
const MATCH_UPDATED = `subscription MatchUpdated($id: ID!, $since: Int) {
  matchUpdated(id: $id, sinceVersion: $since) { ...MatchFields } } ${MATCH_FIELDS}`;
const MATCH_EVENTS = `subscription MatchEvents($id: ID!, $after: Int) {
  matchEvents(matchId: $id, afterSeq: $after) { ...EventFields } } ${EVENT_FIELDS}`;
const PICKER_QUERY = `query Picker {
  live: liveMatches { ...MatchFields }
  upcoming: matches(filter: {status: [SCHEDULED, POSTPONED]}, first: 50) { edges { node { ...MatchFields } } }
} ${MATCH_FIELDS}`;

/** The status moves the schema allows, from each status, as [new status, button text]. */
const MOVES = {
  SCHEDULED: [
    ['LIVE', 'Start match'],
    ['POSTPONED', 'Postpone'],
    ['CANCELLED', 'Cancel match'],
  ],
  LIVE: [
    ['PAUSED', 'Pause'],
    ['FINISHED', 'Finish match'],
  ],
  PAUSED: [
    ['LIVE', 'Resume'],
    ['FINISHED', 'Finish match'],
  ],
  POSTPONED: [['SCHEDULED', 'Reschedule']],
  FINISHED: [],
  CANCELLED: [],
};

/** The events recordEvent takes for each sport, as [type, scoring]. */
const PADS = {
  SOCCER: [['GOAL', true], ['PENALTY_GOAL', true], ['OWN_GOAL', true], ['YELLOW_CARD'], ['RED_CARD'], ['SUBSTITUTION']],
  ICE_HOCKEY: [['GOAL', true], ['PENALTY_GOAL', true], ['OWN_GOAL', true], ['PENALTY'], ['TIMEOUT'], ['SUBSTITUTION']],
  BASKETBALL: [['FREE_THROW', true], ['FIELD_GOAL', true], ['THREE_POINTER', true], ['PENALTY'], ['TIMEOUT'], ['SUBSTITUTION']],
  BASEBALL: [['RUN', true], ['HOME_RUN', true], ['SUBSTITUTION']],
  AMERICAN_FOOTBALL: [
    ['TOUCHDOWN', true], ['FIELD_GOAL', true], ['EXTRA_POINT', true], ['TWO_POINT_CONVERSION', true],
    ['SAFETY', true], ['PENALTY'], ['TIMEOUT'], ['SUBSTITUTION'],
  ],
};

/** How this console signs in: `{ tokenPaste, oidc }`, from the server. */
const SETTINGS = consoleSettings();
/** The provider's answer, when the page was loaded on the way back from signing in there;
 * taken from the address at once, used once. */
let providerAnswer = SETTINGS.oidc ? takeProviderAnswer() : null;

/** The signed-in operator's token and, when signed in through the provider, its session (an
 * OidcSession): what the outbox and every request send. Null when signed out. */
let signedIn = null;

/** A request with the operator's token. When the API refuses a provider's token
 * (UNAUTHENTICATED), the token is renewed once and the request sent once more: nothing was
 * done the first time, and writes carry a clientMutationId anyway. */
async function authorized(query, variables, token = signedIn?.token) {
  try {
    return await request(query, variables, token);
  } catch (error) {
    const oidc = signedIn?.oidc;
    if (!(error instanceof GraphQLError && error.code === 'UNAUTHENTICATED') || !oidc) throw error;
    const renewed = await oidc.renewAfterRefusal(token);
    if (!renewed) throw error;
    return request(query, variables, renewed);
  }
}

async function sendEntry(entry, token) {
  const input = { ...entry.input, matchId: entry.matchId, clientMutationId: entry.id };
  if (entry.expectedVersion !== undefined) input.expectedVersion = entry.expectedVersion;
  const data = await authorized(MUTATIONS[entry.op], { input }, token);
  return data[entry.op];
}

const outbox = new Outbox(sendEntry);
const live = new Live((status) => {
  connection = status;
  outbox.emit();
});
let connection = 'connecting';

window.addEventListener('online', () => outbox.flush());
// A failing network gives no event when it recovers: retry every few seconds.
setInterval(() => {
  if (outbox.entries.length) outbox.flush();
}, 3000);

if ('serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('/console-sw.js', { scope: '/console' })
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      document.documentElement.dataset.offlineReady = 'true';
    })
    .catch((error) => console.warn(`offline use unavailable: ${error.message}`));
}

/** Re-renders the caller on every outbox change; calls `onEvent` for applied, refused and
 * conflicting entries. The listener is added as the component is committed (a layout effect),
 * not after the next paint: the outbox changes on its own (a tap sent as soon as the operator
 * signs in), and a change in between would leave the component showing the outbox as it was. */
function useOutbox(onEvent) {
  const [, tick] = useReducer((n) => n + 1, 0);
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useLayoutEffect(
    () =>
      outbox.listen((event) => {
        tick();
        if (event) handler.current?.(event);
      }),
    [],
  );
  return outbox;
}

function roleOf(claims) {
  const groups = claims['cognito:groups'] ?? [];
  if (groups.includes('admin')) return 'admin';
  if (groups.includes('operator')) return 'operator';
  return null;
}

/** The operator's name as the provider knows it, else the token's subject. */
function nameOf(claims, idClaims) {
  const id = idClaims ?? {};
  return (
    id.email ?? id['cognito:username'] ?? id.preferred_username ?? id.name ?? claims.username ?? claims.sub ?? 'unknown'
  );
}

function SignIn({ onSignIn, signedOut }) {
  const { oidc, tokenPaste } = SETTINGS;
  return html`
    <main id="main" class="signin">
      <h1>Scoreline console</h1>
      ${signedOut ? html`<${SignedOut} ...${signedOut} />` : null}
      ${oidc ? html`<${ProviderSignIn} oidc=${oidc} onSignIn=${onSignIn} />` : null}
      ${tokenPaste ? html`<${PasteSignIn} onSignIn=${onSignIn} alternative=${Boolean(oidc)} />` : null}
      <${OutboxSummary} />
    </main>
  `;
}

/** After signing out: what happened, and the way to sign out at the provider too. */
function SignedOut({ message, endSession }) {
  const name = SETTINGS.oidc?.name;
  return html`
    <section class="signed-out" aria-label="Signed out">
      <p role="status">${message ?? 'You are signed out of the console.'}</p>
      ${endSession
        ? html`<p class="help">You may still be signed in at ${name} in this browser.</p>
            <button type="button" onClick=${() => location.assign(endSession)}>Sign out of ${name} too</button>`
        : null}
    </section>
  `;
}

/** Signing in through the OpenID provider: the button that goes there, and the way back. */
function ProviderSignIn({ oidc, onSignIn }) {
  const [busy, setBusy] = useState(providerAnswer ? 'Signing you in…' : null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const answer = providerAnswer;
    providerAnswer = null;
    if (!answer) return;
    completeSignIn(oidc, answer)
      .then(accept)
      .catch((e) => {
        setBusy(null);
        setError(e.message);
      });
  }, []);

  async function accept(session) {
    const token = session.token;
    const refuse = (message) => {
      session.end();
      setBusy(null);
      setError(message);
    };
    let claims;
    try {
      claims = jwtClaims(token);
    } catch {
      refuse(`The ${oidc.token} token from ${oidc.name} is not a JWT the API can check: set CONSOLE_OIDC_TOKEN=id.`);
      return;
    }
    const role = roleOf(claims);
    if (!role) {
      refuse(`Your ${oidc.name} account is in neither the operator nor the admin group.`);
      return;
    }
    try {
      await request('{ __typename }', {}, token);
    } catch (e) {
      if (e instanceof GraphQLError) {
        refuse(`The server refused the token from ${oidc.name}: ${e.message}`);
        return;
      }
      // Offline since: the first write will tell.
    }
    onSignIn({ token, claims, role, who: nameOf(claims, session.idClaims), oidc: session });
  }

  function start() {
    setError(null);
    if (navigator.onLine === false) {
      setError(`You are offline: signing in with ${oidc.name} needs the network. Taps wait in the outbox meanwhile.`);
      return;
    }
    setBusy(`Going to ${oidc.name}…`);
    beginSignIn(oidc).catch((e) => {
      setBusy(null);
      setError(e.message);
    });
  }

  if (!oidc.endpoints) {
    return html`
      <section class="provider" aria-labelledby="provider-title">
        <h2 id="provider-title">Sign in with ${oidc.name}</h2>
        <p class="error" role="alert">
          Signing in with ${oidc.name} is unavailable right now: the server could not read its settings. Try again in a
          minute.
        </p>
        <button type="button" onClick=${() => location.reload()}>Try again</button>
      </section>
    `;
  }
  return html`
    <section class="provider" aria-labelledby="provider-title" aria-describedby="provider-help">
      <h2 id="provider-title" class="visually-hidden">Sign in with ${oidc.name}</h2>
      <button type="button" class="primary big" disabled=${Boolean(busy)} onClick=${start}>
        Sign in with ${oidc.name}
      </button>
      <p id="provider-help" class="help">
        Your ${oidc.name} account must be in the operator or admin group. You stay signed in while this page is open;
        reloading it signs you out, and signing in again goes straight through while your ${oidc.name} session lasts.
      </p>
      ${busy ? html`<p role="status">${busy}</p>` : null}
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </section>
  `;
}

/** Signing in by pasting a token: development, or where the server allows it. */
function PasteSignIn({ onSignIn, alternative }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setError(null);
    const token = value.trim().replace(/^Bearer\s+/i, '');
    let claims;
    try {
      claims = jwtClaims(token);
    } catch (e) {
      setError(`This is not a valid token (${e.message}).`);
      return;
    }
    const role = roleOf(claims);
    if (!role) {
      setError('This token has neither the operator nor the admin role.');
      return;
    }
    if (claims.exp && claims.exp * 1000 < Date.now()) {
      setError('This token has expired: ask for a new one.');
      return;
    }
    setBusy(true);
    try {
      // Any request with a token checks it: a bad one is refused with UNAUTHENTICATED.
      await request('{ __typename }', {}, token);
    } catch (e) {
      setBusy(false);
      if (e instanceof GraphQLError) {
        setError(`The server refused this token: ${e.message}`);
        return;
      }
      // Offline: sign in anyway; the first write will tell.
    }
    setBusy(false);
    onSignIn({ token, claims, role, who: claims.sub ?? 'unknown', oidc: null });
  }
  return html`
    <form onSubmit=${submit} aria-describedby="signin-help">
      ${alternative ? html`<h2>Or paste a token</h2>` : null}
      <label for="token">Access token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="off"
        spellcheck="false"
        required
        value=${value}
        onInput=${(e) => setValue(e.target.value)}
      />
      <p id="signin-help" class="help">
        Paste an operator or admin token. It stays in this page's memory only: reloading the
        page signs you out. The server prints an admin token when it starts without auth
        configuration; <code>api token --role operator</code> makes one.
      </p>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
    </form>
  `;
}

/** What waits in the outbox, and why. */
function OutboxSummary() {
  const box = useOutbox();
  const count = box.entries.length;
  const offline = !navigator.onLine || box.networkError;
  let text;
  if (count === 0) text = offline ? 'Offline. Taps will wait here until the connection returns.' : null;
  else if (!box.token) text = `${count} ${count === 1 ? 'tap is' : 'taps are'} waiting: sign in to send them.`;
  else if (box.entries[0].state === 'conflict')
    text = `${count} waiting: the first needs your decision, because the match changed before it was sent.`;
  else if (box.authError) text = `${count} waiting: the server refused the token (${box.authError}). Sign in again.`;
  else if (offline) text = `Offline: ${count} ${count === 1 ? 'tap is' : 'taps are'} waiting, sent in order when the connection returns.`;
  else text = `Sending ${count} ${count === 1 ? 'tap' : 'taps'}…`;
  return html`
    <div class=${`outbox ${count ? 'has-waiting' : ''}`} role="status" aria-live="polite" data-waiting=${count}>
      ${text ? html`<p>${text}</p>` : null}
      ${box.storageError ? html`<p class="error">${box.storageError}</p>` : null}
      ${count
        ? html`<ol class="waiting" aria-label="Waiting taps">
            ${box.entries.map(
              (e) => html`<li key=${e.id}>
                ${e.label} <span class="muted">(${e.matchId}${e.state === 'conflict' ? ', conflict' : ''})</span>
              </li>`,
            )}
          </ol>`
        : null}
    </div>
  `;
}

function App() {
  const [session, setSession] = useState(null);
  const [signedOut, setSignedOut] = useState(null);
  const [tab, setTab] = useState('match');
  function leave(notice) {
    signedIn = null;
    setSession(null);
    setSignedOut(notice);
    outbox.setToken(null);
  }
  /** A provider's session: each renewed token goes to the outbox and every request from now
   * on. Listened to from the start (not from an effect), so that no renewal is missed. */
  function follow(oidc) {
    oidc.listen((event) => {
      if (signedIn?.oidc !== oidc) return;
      if (event.kind === 'ended') {
        leave({ message: event.message, endSession: event.endSession });
        return;
      }
      let claims = null;
      try {
        claims = jwtClaims(event.token);
      } catch {
        // Not a JWT: refused below.
      }
      const role = claims && roleOf(claims);
      if (!role) {
        const message = claims
          ? 'Your account is no longer in the operator or admin group.'
          : 'The renewed token cannot be read: sign in again.';
        leave({ message, endSession: oidc.end() });
        return;
      }
      signedIn = { token: event.token, oidc };
      outbox.setToken(event.token);
      setSession((current) => current && { ...current, token: event.token, claims, role });
    });
  }
  function signIn(s) {
    signedIn = { token: s.token, oidc: s.oidc };
    if (s.oidc) follow(s.oidc);
    setSignedOut(null);
    setSession(s);
    outbox.setToken(s.token);
  }
  function signOut() {
    leave({ endSession: session.oidc?.end() ?? null });
  }
  if (!session) return html`<${SignIn} onSignIn=${signIn} signedOut=${signedOut} />`;
  return html`
    <header class="bar">
      <h1>Scoreline console</h1>
      <${ConnectionBadge} />
      <p class="who">
        Signed in as <strong>${session.who}</strong> (${session.role})
      </p>
      <button type="button" onClick=${signOut}>Sign out</button>
    </header>
    ${session.role === 'admin'
      ? html`<nav class="tabs" aria-label="Console sections">
          <button type="button" aria-pressed=${tab === 'match'} onClick=${() => setTab('match')}>Match day</button>
          <button type="button" aria-pressed=${tab === 'admin'} onClick=${() => setTab('admin')}>Admin</button>
        </nav>`
      : null}
    <main id="main">
      <${OutboxSummary} />
      <${Conflict} />
      ${tab === 'admin' && session.role === 'admin'
        ? html`<${Admin} request=${authorized} />`
        : html`<${MatchDay} />`}
    </main>
  `;
}

function ConnectionBadge() {
  const box = useOutbox();
  const offline = !navigator.onLine || box.networkError;
  const text = offline ? 'Offline' : connection === 'live' ? 'Live updates on' : 'Reconnecting…';
  return html`<p class=${`badge ${offline ? 'bad' : connection === 'live' ? 'good' : 'warn'}`} data-testid="connection">
    ${text}
  </p>`;
}

/** The conflict at the head of the outbox, with the match as it is now and the choice. */
function Conflict() {
  const box = useOutbox();
  const entry = box.entries[0]?.state === 'conflict' ? box.entries[0] : null;
  const [current, setCurrent] = useState(null);
  const heading = useRef(null);
  useEffect(() => {
    setCurrent(null);
    if (!entry) return;
    authorized(MATCH_QUERY, { id: entry.matchId })
      .then((data) => setCurrent(data.match))
      .catch(() => {});
    heading.current?.focus();
  }, [entry?.id]);
  if (!entry) return null;
  const version = current?.version ?? entry.currentVersion;
  return html`
    <section class="conflict" role="alertdialog" aria-labelledby="conflict-title" aria-describedby="conflict-text">
      <h2 id="conflict-title" tabindex="-1" ref=${heading}>Someone else changed this match first</h2>
      <p id="conflict-text">
        Your tap <strong>${entry.label}</strong> was made against version ${entry.expectedVersion}, but the
        match is now at version ${version}. Nothing of your tap was applied.
      </p>
      ${current
        ? html`<div class="conflict-now">
            <p>The match now:</p>
            <${ScoreLine} match=${current} />
          </div>`
        : null}
      <div class="actions">
        <button type="button" class="primary" onClick=${() => box.resolve(entry.id, 'apply', version)}>
          Apply my tap to the current state
        </button>
        <button type="button" onClick=${() => box.resolve(entry.id, 'discard')}>Discard my tap</button>
      </div>
    </section>
  `;
}

/** The last state of each match seen on this device, so that after a reload with no network
 * the operator still sees the match and can tap (the taps wait in the outbox). */
const MATCH_KEY = 'scoreline.console.match.';

function remember(match) {
  try {
    localStorage.setItem(MATCH_KEY + match.id, JSON.stringify(match));
  } catch {
    // Storage full or off: only the offline reload loses the match.
  }
}

function remembered(id) {
  try {
    return JSON.parse(localStorage.getItem(MATCH_KEY + id) ?? 'null');
  } catch {
    return null;
  }
}

function matchIdFromHash() {
  const m = /match=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : '';
}

function MatchDay() {
  const [matches, setMatches] = useState(null);
  const [error, setError] = useState(null);
  const [matchId, setMatchId] = useState(matchIdFromHash());
  /** The picked match as its panel last saw it, to name it when the lists do not have it. */
  const [picked, setPicked] = useState(null);
  // The list shows statuses: read it again when one changes.
  useOutbox((event) => {
    if (event.kind === 'applied' && event.entry.op === 'setMatchStatus') load();
  });
  function load() {
    setError(null);
    authorized(PICKER_QUERY, {})
      .then((data) => setMatches({ live: data.live, upcoming: data.upcoming.edges.map((e) => e.node) }))
      .catch((e) => setError(e instanceof NetworkError ? 'Offline: the list of matches cannot be loaded.' : e.message));
  }
  useEffect(load, []);
  function pick(id) {
    setMatchId(id);
    history.replaceState(null, '', id ? `#match=${encodeURIComponent(id)}` : '#');
  }
  const option = (m) =>
    html`<option key=${m.id} value=${m.id}>
      ${teamName(m.homeTeam)} – ${teamName(m.awayTeam)} (${m.competition.name}, ${STATUS_LABELS[m.status]})
    </option>`;
  const known = matches ? [...matches.live, ...matches.upcoming].some((m) => m.id === matchId) : true;
  return html`
    <section class="picker">
      <label for="match-pick">Match</label>
      <div class="row">
        <select id="match-pick" value=${matchId} onChange=${(e) => pick(e.target.value)}>
          <option value="">Choose a match…</option>
          ${matchId && !known
            ? picked?.id === matchId
              ? option(picked)
              : html`<option value=${matchId}>${matchId}</option>`
            : null}
          ${matches
            ? html`<optgroup label="Live and paused">${matches.live.map(option)}</optgroup>
                <optgroup label="Scheduled and postponed">${matches.upcoming.map(option)}</optgroup>`
            : null}
        </select>
        <button type="button" onClick=${load}>Refresh list</button>
      </div>
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    </section>
    ${matchId ? html`<${MatchPanel} key=${matchId} matchId=${matchId} onMatch=${setPicked} />` : null}
  `;
}

function MatchPanel({ matchId, onMatch }) {
  const [match, setMatch] = useState(null);
  const [events, setEvents] = useState(() => new Map());
  const [notice, setNotice] = useState(null);
  const [player, setPlayer] = useState('');
  const state = useRef({ match: null, lastSeq: null });

  function seen(m) {
    if (!m || m.id !== matchId) return;
    outbox.known(m.id, m.version);
    const kept = newer(state.current.match, m);
    if (kept !== state.current.match) {
      remember(kept);
      onMatch(kept);
    }
    state.current.match = kept;
    setMatch(kept);
  }
  const box = useOutbox((event) => {
    if (event.entry.matchId !== matchId) return;
    if (event.kind === 'applied') {
      seen(event.match);
      setNotice({ text: `Sent: ${event.entry.label}.` });
    } else if (event.kind === 'refused') {
      setNotice({ text: `Refused: ${event.entry.label}. ${event.error.message}`, error: true });
    }
  });

  useEffect(() => {
    let cancelled = false;
    authorized(MATCH_QUERY, { id: matchId })
      .then((data) => {
        if (cancelled) return;
        if (!data.match) setNotice({ text: `There is no match with id ${matchId}.`, error: true });
        else seen(data.match);
      })
      .catch((e) => {
        if (cancelled) return;
        const last = e instanceof NetworkError ? remembered(matchId) : null;
        if (last) {
          seen(last);
          setNotice({ text: 'Offline: the match as last seen on this device. Taps wait until the connection returns.' });
        } else {
          setNotice({ text: `The match cannot be loaded: ${e.message}`, error: true });
        }
      });
    // Both are sent once the socket is up, and again after each reconnect, from what was seen.
    const stops = [
      live.subscribe(MATCH_UPDATED, () => ({ id: matchId, since: state.current.match?.version ?? 0 }), (d) =>
        seen(d.matchUpdated),
      ),
      // The last 50 events, then every new one; after a reconnect, from the last one seen.
      live.subscribe(
        MATCH_EVENTS,
        () => ({
          id: matchId,
          after: state.current.lastSeq ?? Math.max(0, (state.current.match?.lastSeq ?? 0) - 50),
        }),
        (d) => {
          const e = d.matchEvents;
          state.current.lastSeq = Math.max(state.current.lastSeq ?? 0, e.seq);
          setEvents((old) => new Map(old).set(e.seq, e));
        },
      ),
    ];
    return () => {
      cancelled = true;
      stops.forEach((stop) => stop());
    };
  }, [matchId]);

  if (!match) {
    return html`<section class="panel"><p>Loading ${matchId}…</p>
      ${notice ? html`<p class="error" role="alert">${notice.text}</p>` : null}</section>`;
  }
  const waiting = box.waitingFor(matchId);
  // What the match will be once the waiting taps are applied: the buttons follow it, so that
  // an operator offline can start a match and then record its first goal.
  const lastMove = waiting.filter((e) => e.op === 'setMatchStatus').at(-1);
  const status = lastMove ? lastMove.input.status : match.status;

  function tap(op, input, label) {
    outbox.enqueue({ matchId, op, input, label });
  }
  function event(type, side) {
    const input = { type, side };
    if (player.trim()) input.player = player.trim();
    const team = side === 'HOME' ? teamName(match.homeTeam) : teamName(match.awayTeam);
    tap('recordEvent', input, `${EVENT_LABELS[type]}, ${team}${input.player ? ` (${input.player})` : ''}`);
    setPlayer('');
  }
  const pads = PADS[match.sport] ?? [];
  const canRecord = status === 'LIVE';
  const pad = (side) => {
    const team = side === 'HOME' ? match.homeTeam : match.awayTeam;
    return html`
      <fieldset class="pad" disabled=${!canRecord}>
        <legend>${team.name} (${side === 'HOME' ? 'home' : 'away'})</legend>
        ${pads.map(
          ([type, scoring]) => html`<button
            type="button"
            key=${type}
            class=${scoring ? 'big primary' : 'big'}
            aria-label=${`${EVENT_LABELS[type]} for ${team.name}`}
            onClick=${() => event(type, side)}
          >
            ${EVENT_LABELS[type]}
          </button>`,
        )}
      </fieldset>
    `;
  };

  return html`
    <section class="panel" aria-labelledby="match-title">
      <h2 id="match-title" class="visually-hidden">${match.homeTeam.name} against ${match.awayTeam.name}</h2>
      <${ScoreLine} match=${match} />
      <p class="muted meta">${match.competition.name} · version ${match.version}${
        waiting.length ? ` · ${waiting.length} waiting` : ''
      }</p>
      ${notice
        ? html`<p class=${notice.error ? 'error' : 'notice'} role=${notice.error ? 'alert' : 'status'}>${notice.text}</p>`
        : null}

      <${StatusMoves} status=${status} tap=${tap} />

      ${canRecord ? null : html`<p class="help">Events can be recorded while the match is live.</p>`}
      <div class="field">
        <label for="player">Player (optional, for the next tap)</label>
        <input id="player" value=${player} maxlength="80" onInput=${(e) => setPlayer(e.target.value)} />
      </div>
      <div class="pads">${pad('HOME')}${pad('AWAY')}</div>

      <${Periods} match=${match} status=${status} tap=${tap} />
      <${Correction} match=${match} status=${status} tap=${tap} />
      <${Timeline} events=${[...events.values()]} match=${match} />
    </section>
  `;
}

/** Moves that cannot be undone (FINISHED, CANCELLED) take a second tap within a few seconds. */
const FINAL = new Set(['FINISHED', 'CANCELLED']);

function StatusMoves({ status, tap }) {
  const [armed, setArmed] = useState(null);
  useEffect(() => {
    if (!armed) return undefined;
    const timer = setTimeout(() => setArmed(null), 4000);
    return () => clearTimeout(timer);
  }, [armed]);
  const moves = MOVES[status] ?? [];
  function press(to, text) {
    if (FINAL.has(to) && armed !== to) {
      setArmed(to);
      return;
    }
    setArmed(null);
    tap('setMatchStatus', { status: to }, text);
  }
  return html`
    <div class="controls" role="group" aria-label="Match status">
      ${moves.map(
        ([to, text]) => html`<button
          type="button"
          key=${to}
          class=${to === 'LIVE' ? 'big primary' : armed === to ? 'big danger' : 'big'}
          onClick=${() => press(to, text)}
        >
          ${armed === to ? `Tap again: ${text.toLowerCase()}` : text}
        </button>`,
      )}
      ${moves.length === 0 ? html`<p class="muted">${STATUS_LABELS[status]}: no status change left.</p>` : null}
      <p class="visually-hidden" role="status">
        ${armed ? `This cannot be undone. Press again within 4 seconds to confirm.` : ''}
      </p>
    </div>
  `;
}

function Periods({ match, status, tap }) {
  const [period, setPeriod] = useState(match.clock?.period ?? 1);
  const usable = status === 'LIVE' || status === 'PAUSED';
  const running = match.clock?.running;
  return html`
    <fieldset class="periods" disabled=${!usable}>
      <legend>Periods</legend>
      <div class="row">
        <label for="period">Period</label>
        <input id="period" type="number" min="1" max="20" value=${period} onInput=${(e) => setPeriod(Number(e.target.value))} />
        <button type="button" class=${running ? 'big' : 'big primary'} onClick=${() =>
          tap('recordEvent', { type: 'PERIOD_START', period }, `Period ${period} start`)}>
          Start period ${period}
        </button>
        <button type="button" class=${running ? 'big primary' : 'big'} onClick=${() =>
          tap('recordEvent', { type: 'PERIOD_END', period }, `Period ${period} end`)}>
          End period ${period}
        </button>
      </div>
      <div class="row">
        <button type="button" class="big" disabled=${!match.clock} onClick=${() =>
          tap('updateClock', { running: !running }, running ? 'Clock stopped' : 'Clock started')}>
          ${running ? 'Stop clock' : 'Start clock'}
        </button>
      </div>
      <p class="muted">The clock is ${running ? 'running' : 'stopped'}${match.clock ? ` in period ${match.clock.period}` : ''}.</p>
    </fieldset>
  `;
}

function Correction({ match, status, tap }) {
  const [home, setHome] = useState(match.score.home);
  const [away, setAway] = useState(match.score.away);
  const usable = ['LIVE', 'PAUSED', 'FINISHED'].includes(status);
  function submit(e) {
    e.preventDefault();
    tap('updateScore', { home, away }, `Score corrected to ${home}–${away}`);
  }
  return html`
    <details class="correction">
      <summary>Correct the score</summary>
      <form onSubmit=${submit}>
        <fieldset disabled=${!usable}>
          <legend class="visually-hidden">Corrected score</legend>
          <div class="row">
            <label for="fix-home">${match.homeTeam.name}</label>
            <input id="fix-home" type="number" min="0" max="999" required value=${home} onInput=${(e) => setHome(Number(e.target.value))} />
            <label for="fix-away">${match.awayTeam.name}</label>
            <input id="fix-away" type="number" min="0" max="999" required value=${away} onInput=${(e) => setAway(Number(e.target.value))} />
          </div>
          <button type="submit" class="big">Save corrected score</button>
          ${usable ? null : html`<p class="help">Corrections are possible while the match is live, paused or finished.</p>`}
        </fieldset>
      </form>
    </details>
  `;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
