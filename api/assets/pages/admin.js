// The console's admin forms: create competitions, teams and matches. These writes are not
// queued: they need the server, and say so when it cannot be reached.
import { html, useEffect, useState } from '{{preact-htm.module.js}}';
import { GraphQLError } from '{{graphql.js}}';
import { SPORT_LABELS } from '{{ui.js}}';

const LISTS = `query AdminLists {
  competitions { id name sport season }
  teams { id name shortName sport }
}`;
const CREATE = {
  competition: `mutation CreateCompetition($input: CreateCompetitionInput!) {
    createCompetition(input: $input) { id name sport season } }`,
  team: `mutation CreateTeam($input: CreateTeamInput!) {
    createTeam(input: $input) { id name shortName sport } }`,
  match: `mutation CreateMatch($input: CreateMatchInput!) {
    createMatch(input: $input) { id sport status startTime homeTeam { name } awayTeam { name } } }`,
};

/** Empty strings out: the schema's optional fields take null or nothing, not "". */
function compact(input) {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== '' && v !== undefined));
}

function explain(error) {
  if (error instanceof GraphQLError) {
    const field = error.extensions.field;
    return field ? `${error.message} (field: ${field})` : error.message;
  }
  return `${error.message}. Nothing was created; try again when the connection is back.`;
}

/** One admin form: its fields as children, a result line under it. */
function Form({ id, title, onSubmit, children }) {
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setResult(null);
    try {
      setResult({ text: await onSubmit() });
    } catch (error) {
      setResult({ text: explain(error), error: true });
    }
    setBusy(false);
  }
  return html`
    <form class="admin-form" onSubmit=${submit} aria-labelledby=${`${id}-title`}>
      <h2 id=${`${id}-title`}>${title}</h2>
      ${children}
      <button type="submit" class="primary" disabled=${busy}>${title}</button>
      ${result
        ? html`<p class=${result.error ? 'error' : 'notice'} role=${result.error ? 'alert' : 'status'}>${result.text}</p>`
        : null}
    </form>
  `;
}

function Field({ id, label, children, help }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${children}
    ${help ? html`<p class="help">${help}</p>` : null}
  </div>`;
}

function SportSelect({ id, value, onChange }) {
  return html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${Object.entries(SPORT_LABELS).map(([v, label]) => html`<option value=${v}>${label}</option>`)}
  </select>`;
}

/** `request(query, variables)` sends one operation with the admin's token. */
export function Admin({ request }) {
  const [lists, setLists] = useState({ competitions: [], teams: [] });
  const [loadError, setLoadError] = useState(null);
  const reload = () =>
    request(LISTS, {})
      .then((data) => {
        setLists(data);
        setLoadError(null);
      })
      .catch((e) => setLoadError(explain(e)));
  useEffect(() => {
    reload();
  }, []);

  // Competition
  const [comp, setComp] = useState({ name: '', sport: 'SOCCER', season: String(new Date().getFullYear()), id: '' });
  // Team
  const [team, setTeam] = useState({ name: '', shortName: '', sport: 'SOCCER', competitionId: '', id: '' });
  // Match
  const [match, setMatch] = useState({ competitionId: '', homeTeamId: '', awayTeamId: '', startTime: '', venue: '', id: '' });

  const matchCompetition = lists.competitions.find((c) => c.id === match.competitionId);
  const matchTeams = lists.teams.filter((t) => !matchCompetition || t.sport === matchCompetition.sport);
  const teamCompetitions = lists.competitions.filter((c) => c.sport === team.sport);
  const set = (setter, state, key) => (e) => setter({ ...state, [key]: e.target.value });

  return html`
    <div class="admin">
      ${loadError ? html`<p class="error" role="alert">${loadError}</p>` : null}
      <${Form}
        id="new-competition"
        title="Create competition"
        onSubmit=${async () => {
          const data = await request(CREATE.competition, { input: compact(comp) });
          reload();
          const c = data.createCompetition;
          return `Created ${c.name} (${SPORT_LABELS[c.sport]}, ${c.season}), id ${c.id}.`;
        }}
      >
        <${Field} id="comp-name" label="Name">
          <input id="comp-name" required maxlength="100" value=${comp.name} onInput=${set(setComp, comp, 'name')} />
        <//>
        <${Field} id="comp-sport" label="Sport">
          <${SportSelect} id="comp-sport" value=${comp.sport} onChange=${(v) => setComp({ ...comp, sport: v })} />
        <//>
        <${Field} id="comp-season" label="Season">
          <input id="comp-season" required maxlength="20" value=${comp.season} onInput=${set(setComp, comp, 'season')} />
        <//>
        <${Field} id="comp-id" label="Id (optional)" help="Chosen by the server when left empty.">
          <input id="comp-id" value=${comp.id} onInput=${set(setComp, comp, 'id')} />
        <//>
      <//>

      <${Form}
        id="new-team"
        title="Create team"
        onSubmit=${async () => {
          const { competitionId, ...rest } = team;
          const input = compact(rest);
          if (competitionId) input.competitionIds = [competitionId];
          const data = await request(CREATE.team, { input });
          reload();
          const t = data.createTeam;
          return `Created ${t.name} (${t.shortName}), id ${t.id}.`;
        }}
      >
        <${Field} id="team-name" label="Name">
          <input id="team-name" required maxlength="100" value=${team.name} onInput=${set(setTeam, team, 'name')} />
        <//>
        <${Field} id="team-short" label="Short name (optional)">
          <input id="team-short" maxlength="5" value=${team.shortName} onInput=${set(setTeam, team, 'shortName')} />
        <//>
        <${Field} id="team-sport" label="Sport">
          <${SportSelect} id="team-sport" value=${team.sport} onChange=${(v) => setTeam({ ...team, sport: v, competitionId: '' })} />
        <//>
        <${Field} id="team-competition" label="Competition (optional)">
          <select id="team-competition" value=${team.competitionId} onChange=${set(setTeam, team, 'competitionId')}>
            <option value="">None</option>
            ${teamCompetitions.map((c) => html`<option value=${c.id}>${c.name} (${c.season})</option>`)}
          </select>
        <//>
      <//>

      <${Form}
        id="new-match"
        title="Create match"
        onSubmit=${async () => {
          if (!match.startTime) throw new Error('Give a start time');
          const input = compact({ ...match, startTime: new Date(match.startTime).toISOString() });
          const data = await request(CREATE.match, { input });
          const m = data.createMatch;
          return `Created ${m.homeTeam.name} – ${m.awayTeam.name}, ${m.status.toLowerCase()}, id ${m.id}.`;
        }}
      >
        <${Field} id="match-competition" label="Competition">
          <select id="match-competition" required value=${match.competitionId} onChange=${set(setMatch, match, 'competitionId')}>
            <option value="">Choose…</option>
            ${lists.competitions.map((c) => html`<option value=${c.id}>${c.name} (${SPORT_LABELS[c.sport]}, ${c.season})</option>`)}
          </select>
        <//>
        <${Field} id="match-home" label="Home team">
          <select id="match-home" required value=${match.homeTeamId} onChange=${set(setMatch, match, 'homeTeamId')}>
            <option value="">Choose…</option>
            ${matchTeams.map((t) => html`<option value=${t.id}>${t.name}</option>`)}
          </select>
        <//>
        <${Field} id="match-away" label="Away team">
          <select id="match-away" required value=${match.awayTeamId} onChange=${set(setMatch, match, 'awayTeamId')}>
            <option value="">Choose…</option>
            ${matchTeams.map((t) => html`<option value=${t.id}>${t.name}</option>`)}
          </select>
        <//>
        <${Field} id="match-start" label="Start time (your local time)">
          <input id="match-start" type="datetime-local" required value=${match.startTime} onInput=${set(setMatch, match, 'startTime')} />
        <//>
        <${Field} id="match-venue" label="Venue (optional)">
          <input id="match-venue" maxlength="120" value=${match.venue} onInput=${set(setMatch, match, 'venue')} />
        <//>
      <//>
    </div>
  `;
}
