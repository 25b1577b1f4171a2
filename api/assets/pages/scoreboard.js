// The public scoreboard at /scoreboard: the live matches, and one match's timeline when picked.
//
// It subscribes to matchesUpdated for live, paused and finished matches, then reads liveMatches
// (the live and paused ones), and does
// both again after every reconnect (subscribe first, then read, so nothing committed in between
// is missed); a state is kept only when its version is newer. A picked match's timeline comes
// from matchEvents with afterSeq, resumed from the last seq shown, and its state from
// matchUpdated with sinceVersion. No token: everything here is public.
import { html, render, useEffect, useReducer, useRef, useState } from '{{preact-htm.module.js}}';
import { Live, MATCH_FIELDS, EVENT_FIELDS, request } from '{{graphql.js}}';
import { ScoreLine, SPORT_LABELS, StatusText, Timeline, newer } from '{{ui.js}}';

const LIVE_QUERY = `query Live { liveMatches { ...MatchFields } } ${MATCH_FIELDS}`;
// FINISHED too: a match that finishes while the page is open stays on it, and a correction of
// its score after the final whistle still reaches it.
const MATCHES_UPDATED = `subscription Board {
  matchesUpdated(filter: {status: [LIVE, PAUSED, FINISHED]}) { ...MatchFields } } ${MATCH_FIELDS}`;
const MATCH_UPDATED = `subscription One($id: ID!, $since: Int) {
  matchUpdated(id: $id, sinceVersion: $since) { ...MatchFields } } ${MATCH_FIELDS}`;
const MATCH_EVENTS = `subscription Timeline($id: ID!, $after: Int) {
  matchEvents(matchId: $id, afterSeq: $after) { ...EventFields } } ${EVENT_FIELDS}`;
const MATCH_QUERY = `query Match($id: ID!) { match(id: $id) { ...MatchFields } } ${MATCH_FIELDS}`;

/** Every match seen, by id, each at its newest version. */
const board = new Map();
const listeners = new Set();
let connection = 'connecting';
const PLAYING = { LIVE: true, PAUSED: true };

function changed() {
  for (const listener of listeners) listener();
}

function seen(match) {
  if (!match) return;
  const kept = newer(board.get(match.id), match);
  if (kept !== board.get(match.id)) {
    board.set(match.id, kept);
    changed();
  }
}

/** After a (re)connect: the live matches, and the matches shown as live that are no longer
 * (they finished, or were corrected back, while the page was cut off). */
async function catchUp() {
  try {
    const data = await request(LIVE_QUERY);
    data.liveMatches.forEach(seen);
    const now = new Set(data.liveMatches.map((m) => m.id));
    const gone = [...board.values()].filter((m) => m.status in PLAYING && !now.has(m.id));
    if (gone.length === 0) return;
    // One request for them all, an alias each.
    const fields = gone.map((m, i) => `m${i}: match(id: ${JSON.stringify(m.id)}) { ...MatchFields }`);
    const rest = await request(`query Gone { ${fields.join(' ')} } ${MATCH_FIELDS}`);
    Object.values(rest).forEach(seen);
  } catch {
    // Offline again: the next reconnect reads again.
  }
}

const live = new Live((status) => {
  connection = status;
  // Subscriptions are resent before 'live' is reported: read what they may have missed.
  if (status === 'live') catchUp();
  changed();
});
live.subscribe(MATCHES_UPDATED, {}, (data) => seen(data.matchesUpdated));

function useBoard() {
  const [, tick] = useReducer((n) => n + 1, 0);
  useEffect(() => {
    listeners.add(tick);
    return () => listeners.delete(tick);
  }, []);
}

const ORDER = { LIVE: 0, PAUSED: 1, FINISHED: 2 };

function Card({ match, onOpen }) {
  return html`
    <li class=${`card status-${match.status.toLowerCase()}`} data-match=${match.id}>
      <button type="button" class="card-button" onClick=${() => onOpen(match.id)}>
        <span class="card-meta">${SPORT_LABELS[match.sport]} · ${match.competition.name}</span>
        <span class="card-team">${match.homeTeam.name}</span>
        <span class="card-score" data-testid="card-score">${match.score.home} – ${match.score.away}</span>
        <span class="card-team">${match.awayTeam.name}</span>
        <span class="card-status"><${StatusText} match=${match} /></span>
        <span class="visually-hidden">: show the timeline</span>
      </button>
    </li>
  `;
}

function Board({ onOpen }) {
  useBoard();
  const matches = [...board.values()]
    .filter((m) => m.status in ORDER)
    .sort((a, b) => ORDER[a.status] - ORDER[b.status] || a.startTime.localeCompare(b.startTime));
  const playing = matches.filter((m) => m.status !== 'FINISHED');
  const finished = matches.filter((m) => m.status === 'FINISHED');
  const cards = (list) =>
    html`<ul class="cards">${list.map((m) => html`<${Card} key=${m.id} match=${m} onOpen=${onOpen} />`)}</ul>`;
  return html`
    <section aria-labelledby="board-title">
      <h2 id="board-title">Live now</h2>
      ${playing.length === 0 ? html`<p class="muted">No match is live right now.</p>` : null}
      ${cards(playing)}
    </section>
    ${finished.length
      ? html`<section aria-labelledby="finished-title">
          <h2 id="finished-title" class="section-gap">Just finished</h2>
          ${cards(finished)}
        </section>`
      : null}
  `;
}

function Detail({ matchId, onBack }) {
  useBoard();
  const [events, setEvents] = useState(() => new Map());
  const [missing, setMissing] = useState(false);
  const lastSeq = useRef(null);
  const back = useRef(null);
  const match = board.get(matchId);
  useEffect(() => {
    back.current?.focus();
    request(MATCH_QUERY, { id: matchId })
      .then((data) => (data.match ? seen(data.match) : setMissing(true)))
      .catch(() => {});
    const stops = [
      live.subscribe(MATCH_UPDATED, () => ({ id: matchId, since: board.get(matchId)?.version ?? 0 }), (d) =>
        seen(d.matchUpdated),
      ),
      // The whole timeline first, then each new event; after a reconnect, from the last seen.
      live.subscribe(
        MATCH_EVENTS,
        () => ({ id: matchId, after: lastSeq.current ?? 0 }),
        (d) => {
          const e = d.matchEvents;
          lastSeq.current = Math.max(lastSeq.current ?? 0, e.seq);
          setEvents((old) => new Map(old).set(e.seq, e));
        },
        () => setMissing(true),
      ),
    ];
    return () => stops.forEach((stop) => stop());
  }, [matchId]);
  return html`
    <section class="detail" aria-labelledby="detail-title">
      <button type="button" ref=${back} onClick=${onBack}>← All live matches</button>
      ${missing ? html`<p class="error" role="alert">There is no match with id ${matchId}.</p>` : null}
      ${match
        ? html`<h2 id="detail-title" class="visually-hidden">${match.homeTeam.name} against ${match.awayTeam.name}</h2>
            <p class="muted">${SPORT_LABELS[match.sport]} · ${match.competition.name}${match.venue ? ` · ${match.venue}` : ''}</p>
            <${ScoreLine} match=${match} />
            <${Timeline} events=${[...events.values()]} match=${match} />`
        : html`<h2 id="detail-title">Loading…</h2>`}
    </section>
  `;
}

function ConnectionNote() {
  useBoard();
  if (connection === 'live') return html`<p class="badge good" role="status">Live</p>`;
  return html`<p class="badge warn" role="status">${connection === 'connecting' ? 'Connecting…' : 'Reconnecting…'}</p>`;
}

function hashMatch() {
  const m = /match=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function App() {
  const [matchId, setMatchId] = useState(hashMatch());
  useEffect(() => {
    const follow = () => setMatchId(hashMatch());
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  const open = (id) => {
    location.hash = `match=${encodeURIComponent(id)}`;
  };
  const back = () => {
    history.pushState(null, '', location.pathname);
    setMatchId(null);
  };
  return html`
    <header class="bar">
      <h1>Scoreline</h1>
      <${ConnectionNote} />
    </header>
    <main id="main">
      ${matchId ? html`<${Detail} key=${matchId} matchId=${matchId} onBack=${back} />` : html`<${Board} onOpen=${open} />`}
    </main>
  `;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
