// What the console and the scoreboard show alike: names of statuses and events, the clock, a
// match's score line and its timeline. The server replaces the double-braced file name below
// with the vendored module's content-addressed URL (see api/src/http/pages.rs).
import { html, useEffect, useState } from '{{preact-htm.module.js}}';

export const STATUS_LABELS = {
  SCHEDULED: 'Scheduled',
  LIVE: 'Live',
  PAUSED: 'Paused',
  FINISHED: 'Full time',
  POSTPONED: 'Postponed',
  CANCELLED: 'Cancelled',
};

export const EVENT_LABELS = {
  GOAL: 'Goal',
  OWN_GOAL: 'Own goal',
  PENALTY_GOAL: 'Penalty goal',
  YELLOW_CARD: 'Yellow card',
  RED_CARD: 'Red card',
  SUBSTITUTION: 'Substitution',
  RUN: 'Run',
  HOME_RUN: 'Home run',
  FIELD_GOAL: 'Field goal',
  THREE_POINTER: 'Three-pointer',
  FREE_THROW: 'Free throw',
  TOUCHDOWN: 'Touchdown',
  EXTRA_POINT: 'Extra point',
  TWO_POINT_CONVERSION: 'Two-point conversion',
  SAFETY: 'Safety',
  PENALTY: 'Penalty',
  TIMEOUT: 'Timeout',
  PERIOD_START: 'Period start',
  PERIOD_END: 'Period end',
  STATUS_CHANGE: 'Status',
  SCORE_CORRECTION: 'Score corrected',
  NOTE: 'Note',
};

export const SPORT_LABELS = {
  SOCCER: 'Soccer',
  BASKETBALL: 'Basketball',
  BASEBALL: 'Baseball',
  ICE_HOCKEY: 'Ice hockey',
  AMERICAN_FOOTBALL: 'American football',
};

export function teamName(team) {
  return team?.shortName || team?.name || '?';
}

/** `P2 · 67'` for a match with a clock. The server does not tick the clock between changes:
 * while it runs, count up from the reading, as of when it was received. */
export function clockText(match, now = Date.now()) {
  const clock = match.clock;
  if (!clock || !['LIVE', 'PAUSED'].includes(match.status)) return '';
  const since = clock.running && match.receivedAt ? Math.max(0, (now - match.receivedAt) / 1000) : 0;
  const minutes = Math.floor((clock.elapsedSeconds + since) / 60);
  return `P${clock.period} · ${minutes}'`;
}

/** The status and the clock, re-rendered while the clock runs. */
export function StatusText({ match }) {
  const [now, setNow] = useState(Date.now());
  const running = match.clock?.running && match.status === 'LIVE';
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 5000);
    return () => clearInterval(timer);
  }, [running]);
  const clock = clockText(match, Math.max(now, Date.now()));
  return `${statusText(match)}${clock ? ` · ${clock}` : ''}`;
}

export function statusText(match) {
  return STATUS_LABELS[match.status] ?? match.status;
}

/** Keeps `a` unless `b` is a newer version of the same match (streams are at-least-once).
 * Marks the one kept with when it was received, for the clock. */
export function newer(a, b) {
  const kept = !a || (b && b.version > a.version) ? b : a;
  if (kept && kept.receivedAt === undefined) kept.receivedAt = Date.now();
  return kept;
}

/** One event as a sentence: "Goal, Home (A. Striker)". */
export function eventText(event, match) {
  if (event.type === 'SCORE_CORRECTION' && event.description) {
    return event.description.charAt(0).toUpperCase() + event.description.slice(1);
  }
  if ((event.type === 'PERIOD_START' || event.type === 'PERIOD_END') && event.period) {
    return `Period ${event.period} ${event.type === 'PERIOD_START' ? 'starts' : 'ends'}`;
  }
  const parts = [EVENT_LABELS[event.type] ?? event.type];
  if (event.side && match) {
    parts.push(event.side === 'HOME' ? teamName(match.homeTeam) : teamName(match.awayTeam));
  } else if (event.side) {
    parts.push(event.side === 'HOME' ? 'home' : 'away');
  }
  let text = parts.join(', ');
  if (event.player) text += ` (${event.player})`;
  if (event.description) text += ` — ${event.description}`;
  return text;
}

/** The big score line: names, score, status and clock. */
export function ScoreLine({ match, level = 2 }) {
  const heading = `${match.homeTeam.name} ${match.score.home}, ${match.awayTeam.name} ${match.score.away}`;
  return html`
    <div class="scoreline" role="group" aria-label=${heading}>
      <span class="team home">${match.homeTeam.name}</span>
      <span class="score" data-testid="score">${match.score.home} – ${match.score.away}</span>
      <span class="team away">${match.awayTeam.name}</span>
      <span class=${`status status-${match.status.toLowerCase()}`}><${StatusText} match=${match} /></span>
    </div>
  `;
}

/** A timeline, newest first; `pending` are taps not yet applied (shown apart). */
export function Timeline({ events, match, label = 'Timeline' }) {
  const sorted = [...events].sort((a, b) => b.seq - a.seq);
  return html`
    <section class="timeline" aria-label=${label}>
      <h3>${label}</h3>
      ${sorted.length === 0 ? html`<p class="muted">Nothing yet.</p>` : null}
      <ol reversed aria-live="polite" aria-relevant="additions">
        ${sorted.map(
          (e) => html`
            <li key=${e.seq} class=${`event event-${e.type.toLowerCase()}`} data-seq=${e.seq}>
              <span class="event-when">
                ${e.clockSeconds != null ? `${Math.floor(e.clockSeconds / 60)}'` : ''}
              </span>
              <span class="event-what">${eventText(e, match)}</span>
              ${e.points ? html`<span class="event-points">+${e.points}</span>` : null}
            </li>
          `,
        )}
      </ol>
    </section>
  `;
}
