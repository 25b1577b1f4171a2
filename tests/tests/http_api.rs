//! The GraphQL API over real HTTP: every query, every mutation with its role check and its
//! validation, optimistic concurrency, idempotency, concurrent scorers, and the transport's
//! safety limits. Each test starts its own server on a free port.

use std::collections::BTreeSet;

use api::Role;
use chrono::{DateTime, FixedOffset};
use scoreline_tests::{Seed, TestApp};
use serde_json::{json, Value};

const CREATE_COMPETITION: &str =
    "mutation($i: CreateCompetitionInput!) { createCompetition(input: $i) { id name sport season } }";
const CREATE_TEAM: &str =
    "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id name shortName sport } }";
const CREATE_MATCH: &str = "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id sport status version lastSeq startTime venue score { home away } } }";
const SET_STATUS: &str =
    "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { id version status lastSeq } }";
const RECORD_EVENT: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { id version lastSeq score { home away } } }";
const UPDATE_SCORE: &str = "mutation($i: UpdateScoreInput!) { updateScore(input: $i) { id version lastSeq score { home away } } }";
const UPDATE_CLOCK: &str = "mutation($i: UpdateClockInput!) { updateClock(input: $i) { id version lastSeq clock { period elapsedSeconds running } } }";
const UPDATE_DETAILS: &str = "mutation($i: UpdateDetailsInput!) { updateDetails(input: $i) { id version lastSeq details { __typename } } }";

/// The state a test checks after a change.
const MATCH_STATE: &str =
    "query($id: ID!) { match(id: $id) { id status version lastSeq score { home away } \
     clock { period elapsedSeconds running } periods { period label home away } \
     events(first: 200) { seq type side points } } }";

fn admin_token() -> String {
    TestApp::token(Role::Admin)
}

fn operator_token() -> String {
    TestApp::token(Role::Operator)
}

async fn create_competition(app: &TestApp, id: &str, sport: &str) -> String {
    app.admin(
        CREATE_COMPETITION,
        json!({"i": {"id": id, "name": format!("League {id}"), "sport": sport, "season": "2026"}}),
    )
    .await["createCompetition"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create_team(app: &TestApp, id: &str, sport: &str, competitions: &[&str]) -> String {
    app.admin(
        CREATE_TEAM,
        json!({"i": {"id": id, "name": format!("Team {id}"), "sport": sport, "competitionIds": competitions}}),
    )
    .await["createTeam"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create_match(
    app: &TestApp,
    id: &str,
    competition: &str,
    home: &str,
    away: &str,
    start: &str,
) -> String {
    app.admin(
        CREATE_MATCH,
        json!({"i": {"id": id, "competitionId": competition, "homeTeamId": home,
                     "awayTeamId": away, "startTime": start}}),
    )
    .await["createMatch"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Moves a match to `status`; returns the match as the mutation answered.
async fn set_status(app: &TestApp, id: &str, status: &str) -> Value {
    app.operator(SET_STATUS, json!({"i": {"matchId": id, "status": status}}))
        .await["setMatchStatus"]
        .clone()
}

async fn state(app: &TestApp, id: &str) -> Value {
    app.ok(MATCH_STATE, json!({"id": id}), None).await["match"].clone()
}

/// A request that must fail with `BAD_USER_INPUT`; returns `extensions.field` and the body.
async fn user_error(
    app: &TestApp,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> (String, Value) {
    let (code, body) = app.error(query, variables, token).await;
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    let field = body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected extensions.field, got {body}"))
        .to_string();
    (field, body)
}

/// An RFC 3339 time from a response (or an expected literal), to compare instants.
fn instant(value: &Value) -> DateTime<FixedOffset> {
    let raw = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a time, got {value}"));
    DateTime::parse_from_rfc3339(raw).unwrap_or_else(|e| panic!("{raw} is not RFC 3339: {e}"))
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

fn ids(values: &Value) -> Vec<String> {
    values
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {values}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn edge_ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("expected edges, got {connection}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn sorted_ids(values: &Value) -> Vec<String> {
    let mut v = ids(values);
    v.sort();
    v
}

/// Proves the server still serves ordinary requests after a bad one.
async fn still_serves(app: &TestApp) {
    let data = app.ok("{ competitions { id } }", json!({}), None).await;
    assert!(data["competitions"].is_array(), "{data}");
}

/// A small world for listings:
/// - `epl` (SOCCER): m1 ars–che LIVE, m2 che–liv SCHEDULED, m5 liv–ars SCHEDULED
/// - `cup` (SOCCER): m3 ars–tot FINISHED; `cup` also registers `bha`, which has no match
/// - `nba` (BASKETBALL): m4 lal–bos PAUSED
///
/// Start times rise from m1 (March 1st) to m5 (March 5th).
async fn world(app: &TestApp) {
    create_competition(app, "epl", "SOCCER").await;
    create_competition(app, "cup", "SOCCER").await;
    create_competition(app, "nba", "BASKETBALL").await;
    for t in ["ars", "che", "liv"] {
        create_team(app, t, "SOCCER", &["epl"]).await;
    }
    create_team(app, "tot", "SOCCER", &[]).await;
    create_team(app, "bha", "SOCCER", &["cup"]).await;
    create_team(app, "lal", "BASKETBALL", &["nba"]).await;
    create_team(app, "bos", "BASKETBALL", &["nba"]).await;
    create_match(app, "m1", "epl", "ars", "che", "2026-03-01T15:00:00Z").await;
    create_match(app, "m2", "epl", "che", "liv", "2026-03-02T15:00:00Z").await;
    create_match(app, "m3", "cup", "ars", "tot", "2026-03-03T15:00:00Z").await;
    create_match(app, "m4", "nba", "lal", "bos", "2026-03-04T15:00:00Z").await;
    create_match(app, "m5", "epl", "liv", "ars", "2026-03-05T15:00:00Z").await;
    set_status(app, "m1", "LIVE").await;
    set_status(app, "m3", "LIVE").await;
    set_status(app, "m3", "FINISHED").await;
    set_status(app, "m4", "LIVE").await;
    set_status(app, "m4", "PAUSED").await;
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn match_returns_the_stored_match_with_its_competition_and_teams() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let data = app
        .ok(
            "query($id: ID!) { match(id: $id) { id sport startTime venue status version lastSeq \
             score { home away } periods { period } clock { period } events { seq } \
             competition { id name sport season } homeTeam { id name shortName sport } \
             awayTeam { id name shortName sport } updatedAt } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    let m = &data["match"];
    assert_eq!(m["id"], seed.match_id.as_str());
    assert_eq!(m["sport"], "SOCCER");
    assert_eq!(
        instant(&m["startTime"]),
        instant(&json!("2026-11-22T15:00:00Z"))
    );
    assert_eq!(m["venue"], "Test Ground");
    assert_eq!(m["status"], "SCHEDULED");
    assert_eq!(m["version"], 1);
    assert_eq!(m["lastSeq"], 0);
    assert_eq!(m["score"], json!({"home": 0, "away": 0}));
    assert_eq!(m["periods"], json!([]));
    assert_eq!(m["clock"], Value::Null);
    assert_eq!(m["events"], json!([]));
    assert_eq!(
        m["competition"],
        json!({"id": seed.competition, "name": "SOCCER league", "sport": "SOCCER", "season": "2026"})
    );
    assert_eq!(
        m["homeTeam"],
        json!({"id": seed.home, "name": "Home Side", "shortName": "HS", "sport": "SOCCER"})
    );
    assert_eq!(
        m["awayTeam"],
        json!({"id": seed.away, "name": "Away Side", "shortName": "AS", "sport": "SOCCER"})
    );
    assert_eq!(
        instant(&m["updatedAt"]).offset().local_minus_utc(),
        0,
        "{m}"
    );
}

#[tokio::test]
async fn match_of_an_unknown_id_is_null() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            "query($id: ID!) { match(id: $id) { id } }",
            json!({"id": "no-such-match"}),
            None,
        )
        .await;
    assert_eq!(data, json!({"match": null}));
}

#[tokio::test]
async fn match_with_a_malformed_id_is_bad_user_input_naming_the_argument() {
    let app = TestApp::spawn().await;
    let (field, body) = user_error(
        &app,
        "query($id: ID!) { match(id: $id) { id } }",
        json!({"id": "a b"}),
        None,
    )
    .await;
    assert_eq!(field, "id", "{body}");
    assert!(
        message(&body).contains("may only contain letters, digits"),
        "{body}"
    );
    for query in [
        "query($id: ID!) { competition(id: $id) { id } }",
        "query($id: ID!) { team(id: $id) { id } }",
    ] {
        let (field, body) = user_error(&app, query, json!({"id": "a b"}), None).await;
        assert_eq!(field, "id", "{query}: {body}");
    }
    let (field, _) = user_error(
        &app,
        "query($c: ID) { teams(competitionId: $c) { id } }",
        json!({"c": "a#b"}),
        None,
    )
    .await;
    assert_eq!(field, "competitionId");
}

const PAGE: &str = "query($first: Int!, $after: String) { matches(first: $first, after: $after) { \
     edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

#[tokio::test]
async fn matches_pages_through_every_match_in_start_time_order() {
    let app = TestApp::spawn().await;
    create_competition(&app, "epl", "SOCCER").await;
    create_team(&app, "ars", "SOCCER", &["epl"]).await;
    create_team(&app, "che", "SOCCER", &["epl"]).await;
    // Created out of order: the listing sorts by start time.
    for day in [5, 1, 4, 2, 3] {
        let start = format!("2026-11-{day:02}T15:00:00Z");
        create_match(&app, &format!("d{day}"), "epl", "ars", "che", &start).await;
    }

    let page1 = app.ok(PAGE, json!({"first": 2}), None).await["matches"].clone();
    assert_eq!(edge_ids(&page1), ["d1", "d2"]);
    let info = &page1["pageInfo"];
    assert_eq!(info["hasNextPage"], true);
    assert_eq!(info["hasPreviousPage"], false);
    assert_eq!(info["startCursor"], page1["edges"][0]["cursor"]);
    assert_eq!(info["endCursor"], page1["edges"][1]["cursor"]);

    let page2 = app
        .ok(PAGE, json!({"first": 2, "after": info["endCursor"]}), None)
        .await["matches"]
        .clone();
    assert_eq!(edge_ids(&page2), ["d3", "d4"]);
    assert_eq!(page2["pageInfo"]["hasNextPage"], true);
    assert_eq!(page2["pageInfo"]["hasPreviousPage"], true);

    let page3 = app
        .ok(
            PAGE,
            json!({"first": 2, "after": page2["pageInfo"]["endCursor"]}),
            None,
        )
        .await["matches"]
        .clone();
    assert_eq!(edge_ids(&page3), ["d5"]);
    assert_eq!(page3["pageInfo"]["hasNextPage"], false);
    assert_eq!(page3["pageInfo"]["endCursor"], page3["edges"][0]["cursor"]);

    // A page that holds exactly the rest has no next page.
    let all = app.ok(PAGE, json!({"first": 5}), None).await["matches"].clone();
    assert_eq!(edge_ids(&all), ["d1", "d2", "d3", "d4", "d5"]);
    assert_eq!(all["pageInfo"]["hasNextPage"], false);

    // After the last cursor: an empty page without cursors.
    let past = app
        .ok(
            PAGE,
            json!({"first": 2, "after": page3["pageInfo"]["endCursor"]}),
            None,
        )
        .await["matches"]
        .clone();
    assert_eq!(past["edges"], json!([]));
    assert_eq!(past["pageInfo"]["hasNextPage"], false);
    assert_eq!(past["pageInfo"]["endCursor"], Value::Null);
}

#[tokio::test]
async fn matches_at_the_same_start_time_are_paged_without_repeats_or_gaps() {
    let app = TestApp::spawn().await;
    create_competition(&app, "epl", "SOCCER").await;
    create_team(&app, "ars", "SOCCER", &["epl"]).await;
    create_team(&app, "che", "SOCCER", &["epl"]).await;
    for id in ["c", "a", "b"] {
        create_match(&app, id, "epl", "ars", "che", "2026-11-22T15:00:00Z").await;
    }
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for _ in 0..3 {
        let page = app
            .ok(PAGE, json!({"first": 1, "after": after}), None)
            .await["matches"]
            .clone();
        seen.extend(edge_ids(&page));
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ["a", "b", "c"]);
}

#[tokio::test]
async fn matches_filters_by_sport_competition_team_status_and_time() {
    let app = TestApp::spawn().await;
    world(&app).await;
    let q = "query($f: MatchFilter) { matches(filter: $f, first: 100) { edges { node { id } } } }";
    let cases = [
        (json!({}), vec!["m1", "m2", "m3", "m4", "m5"]),
        (json!({"sport": "SOCCER"}), vec!["m1", "m2", "m3", "m5"]),
        (json!({"sport": "BASKETBALL"}), vec!["m4"]),
        (json!({"sport": "BASEBALL"}), vec![]),
        (json!({"competitionId": "epl"}), vec!["m1", "m2", "m5"]),
        (json!({"competitionId": "cup"}), vec!["m3"]),
        (json!({"teamId": "ars"}), vec!["m1", "m3", "m5"]),
        (json!({"teamId": "liv"}), vec!["m2", "m5"]),
        (json!({"status": ["LIVE", "PAUSED"]}), vec!["m1", "m4"]),
        (json!({"status": ["FINISHED"]}), vec!["m3"]),
        (json!({"status": ["SCHEDULED"]}), vec!["m2", "m5"]),
        (json!({"status": []}), vec!["m1", "m2", "m3", "m4", "m5"]),
        // `from` is inclusive, `to` exclusive.
        (
            json!({"from": "2026-03-02T15:00:00Z", "to": "2026-03-04T15:00:00Z"}),
            vec!["m2", "m3"],
        ),
        (json!({"from": "2026-03-04T15:00:00Z"}), vec!["m4", "m5"]),
        (json!({"to": "2026-03-02T15:00:00Z"}), vec!["m1"]),
        (
            json!({"sport": "SOCCER", "teamId": "ars", "status": ["SCHEDULED", "LIVE"]}),
            vec!["m1", "m5"],
        ),
        (
            json!({"competitionId": "epl", "from": "2026-03-02T00:00:00Z", "status": ["SCHEDULED"]}),
            vec!["m2", "m5"],
        ),
        (json!({"competitionId": "nope"}), vec![]),
    ];
    for (filter, expected) in cases {
        let data = app.ok(q, json!({"f": filter}), None).await;
        assert_eq!(edge_ids(&data["matches"]), expected, "filter {filter}");
    }
}

#[tokio::test]
async fn a_filter_whose_from_is_not_before_its_to_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let (field, _) = user_error(
        &app,
        "query($f: MatchFilter) { matches(filter: $f) { edges { cursor } } }",
        json!({"f": {"from": "2026-03-02T00:00:00Z", "to": "2026-03-02T00:00:00Z"}}),
        None,
    )
    .await;
    assert_eq!(field, "to");
}

#[tokio::test]
async fn a_filter_time_that_is_not_rfc_3339_is_bad_user_input_naming_it() {
    let app = TestApp::spawn().await;
    for (filter, expected) in [
        (json!({"from": "yesterday"}), "from"),
        (
            json!({"from": "2026-03-02T00:00:00Z", "to": "2026-03-32T00:00:00Z"}),
            "to",
        ),
        (json!({"teamId": "a b"}), "teamId"),
        (json!({"competitionId": ""}), "competitionId"),
    ] {
        let (field, body) = user_error(
            &app,
            "query($f: MatchFilter) { matches(filter: $f) { edges { cursor } } }",
            json!({"f": filter}),
            None,
        )
        .await;
        assert_eq!(field, expected, "{body}");
    }
    // A time that is not even a string is refused by the scalar itself.
    let (code, _) = app
        .error(
            "query($f: MatchFilter) { matches(filter: $f) { edges { cursor } } }",
            json!({"f": {"from": 12}}),
            None,
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_page_size_outside_1_to_100_is_bad_user_input() {
    let app = TestApp::spawn().await;
    for first in [0, -1, 101] {
        let (field, body) = user_error(&app, PAGE, json!({"first": first}), None).await;
        assert_eq!(field, "first", "{body}");
    }
    let data = app.ok(PAGE, json!({"first": 100}), None).await;
    assert_eq!(data["matches"]["edges"], json!([]));
}

#[tokio::test]
async fn a_tampered_after_cursor_is_bad_user_input() {
    let app = TestApp::spawn().await;
    world(&app).await;
    let page = app.ok(PAGE, json!({"first": 2}), None).await["matches"].clone();
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    // Flip the first character: it no longer decodes to a cursor.
    let first = if cursor.starts_with('X') { 'Y' } else { 'X' };
    let tampered = format!("{first}{}", &cursor[1..]);
    for bad in [
        tampered.as_str(),
        "not a cursor",
        "",
        "e30",       // base64 of `{}`
        "WyJ4Iiwid", // a truncated array
    ] {
        let (code, body) = app
            .error(PAGE, json!({"first": 2, "after": bad}), None)
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "cursor {bad:?}: {body}");
        assert!(message(&body).contains("cursor"), "{body}");
    }
    // The genuine cursor still works.
    let next = app
        .ok(PAGE, json!({"first": 2, "after": cursor}), None)
        .await;
    assert_eq!(edge_ids(&next["matches"]), ["m3", "m4"]);
}

#[tokio::test]
async fn live_matches_lists_live_and_paused_matches_only() {
    let app = TestApp::spawn().await;
    world(&app).await;
    let q = "query($s: Sport) { liveMatches(sport: $s) { id status } }";
    let all = app.ok(q, json!({}), None).await;
    assert_eq!(
        all["liveMatches"],
        json!([{"id": "m1", "status": "LIVE"}, {"id": "m4", "status": "PAUSED"}])
    );
    let soccer = app.ok(q, json!({"s": "SOCCER"}), None).await;
    assert_eq!(ids(&soccer["liveMatches"]), ["m1"]);
    let basketball = app.ok(q, json!({"s": "BASKETBALL"}), None).await;
    assert_eq!(ids(&basketball["liveMatches"]), ["m4"]);
    let hockey = app.ok(q, json!({"s": "ICE_HOCKEY"}), None).await;
    assert_eq!(hockey["liveMatches"], json!([]));

    // Finishing m1 takes it off the list; resuming m4 keeps it there.
    set_status(&app, "m1", "FINISHED").await;
    set_status(&app, "m4", "LIVE").await;
    let after = app.ok(q, json!({}), None).await;
    assert_eq!(
        after["liveMatches"],
        json!([{"id": "m4", "status": "LIVE"}])
    );
}

#[tokio::test]
async fn competition_and_competitions_return_the_catalogue() {
    let app = TestApp::spawn().await;
    world(&app).await;
    let one = app
        .ok(
            "query($id: ID!) { competition(id: $id) { id name sport season } }",
            json!({"id": "nba"}),
            None,
        )
        .await;
    assert_eq!(
        one["competition"],
        json!({"id": "nba", "name": "League nba", "sport": "BASKETBALL", "season": "2026"})
    );
    let none = app
        .ok(
            "query($id: ID!) { competition(id: $id) { id } }",
            json!({"id": "nope"}),
            None,
        )
        .await;
    assert_eq!(none, json!({"competition": null}));

    let q = "query($s: Sport) { competitions(sport: $s) { id sport } }";
    let all = app.ok(q, json!({}), None).await;
    assert_eq!(
        sorted_ids(&all["competitions"]),
        sorted(&["cup", "epl", "nba"])
    );
    let soccer = app.ok(q, json!({"s": "SOCCER"}), None).await;
    assert_eq!(sorted_ids(&soccer["competitions"]), sorted(&["cup", "epl"]));
    assert!(soccer["competitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["sport"] == "SOCCER"));
    let baseball = app.ok(q, json!({"s": "BASEBALL"}), None).await;
    assert_eq!(baseball["competitions"], json!([]));
}

#[tokio::test]
async fn team_and_teams_return_the_catalogue_with_memberships() {
    let app = TestApp::spawn().await;
    world(&app).await;
    let one = app
        .ok(
            "query($id: ID!) { team(id: $id) { id name shortName sport } }",
            json!({"id": "lal"}),
            None,
        )
        .await;
    assert_eq!(
        one["team"],
        json!({"id": "lal", "name": "Team lal", "shortName": "TL", "sport": "BASKETBALL"})
    );
    let none = app
        .ok(
            "query($id: ID!) { team(id: $id) { id } }",
            json!({"id": "nope"}),
            None,
        )
        .await;
    assert_eq!(none, json!({"team": null}));

    let q = "query($s: Sport, $c: ID) { teams(sport: $s, competitionId: $c) { id } }";
    let cases = [
        (
            json!({}),
            sorted(&["ars", "bha", "bos", "che", "lal", "liv", "tot"]),
        ),
        (
            json!({"s": "SOCCER"}),
            sorted(&["ars", "bha", "che", "liv", "tot"]),
        ),
        (json!({"s": "BASKETBALL"}), sorted(&["bos", "lal"])),
        (json!({"c": "epl"}), sorted(&["ars", "che", "liv"])),
        // `cup` registers bha at creation and ars and tot through their match.
        (json!({"c": "cup"}), sorted(&["ars", "bha", "tot"])),
        (json!({"s": "BASKETBALL", "c": "cup"}), vec![]),
        (json!({"c": "nope"}), vec![]),
    ];
    for (args, expected) in cases {
        let data = app.ok(q, args.clone(), None).await;
        assert_eq!(sorted_ids(&data["teams"]), expected, "args {args}");
    }
}

#[tokio::test]
async fn match_events_pages_the_timeline_by_seq() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    app.record(&seed.match_id, "FIELD_GOAL", "HOME").await;
    app.record(&seed.match_id, "THREE_POINTER", "AWAY").await;
    app.operator(
        RECORD_EVENT,
        json!({"i": {"matchId": seed.match_id, "type": "FREE_THROW", "side": "HOME",
                     "player": "  J. Jones ", "description": "and one", "clockSeconds": 95}}),
    )
    .await;
    let q = "query($id: ID!, $after: Int!, $first: Int!) { match(id: $id) { events(afterSeq: $after, first: $first) { \
             matchId seq type side player points period clockSeconds description createdAt } } }";
    let all = app
        .ok(
            q,
            json!({"id": seed.match_id, "after": 0, "first": 50}),
            None,
        )
        .await["match"]["events"]
        .clone();
    let summary: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!([
                e["seq"],
                e["type"],
                e["side"],
                e["points"],
                e["period"],
                e["clockSeconds"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([1, "STATUS_CHANGE", null, 0, 1, 0]),
            json!([2, "FIELD_GOAL", "HOME", 2, 1, 0]),
            json!([3, "THREE_POINTER", "AWAY", 3, 1, 0]),
            json!([4, "FREE_THROW", "HOME", 1, 1, 95]),
        ]
    );
    assert_eq!(all[0]["description"], "SCHEDULED → LIVE");
    assert_eq!(all[3]["player"], "J. Jones", "names are trimmed");
    assert_eq!(all[3]["description"], "and one");
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["matchId"] == seed.match_id.as_str() && e["createdAt"].is_string()));

    let window = app
        .ok(
            q,
            json!({"id": seed.match_id, "after": 1, "first": 2}),
            None,
        )
        .await["match"]["events"]
        .clone();
    let seqs: Vec<i64> = window
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    let past = app
        .ok(
            q,
            json!({"id": seed.match_id, "after": 4, "first": 50}),
            None,
        )
        .await;
    assert_eq!(past["match"]["events"], json!([]));

    for (after, first, bad) in [(0, 0, "first"), (0, 201, "first"), (-1, 10, "afterSeq")] {
        let (field, body) = user_error(
            &app,
            q,
            json!({"id": seed.match_id, "after": after, "first": first}),
            None,
        )
        .await;
        assert_eq!(field, bad, "{body}");
    }
}

#[tokio::test]
async fn a_match_event_id_is_the_match_id_and_seq() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    app.record(&seed.match_id, "GOAL", "HOME").await;
    let events = app
        .ok(
            "query($id: ID!) { match(id: $id) { events { id matchId seq } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await["match"]["events"]
        .clone();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in events {
        assert_eq!(
            e["id"],
            format!("{}:{}", seed.match_id, e["seq"]).as_str(),
            "{e}"
        );
    }
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
}

#[tokio::test]
async fn times_are_rfc_3339_strings_in_utc_with_a_plus_zero_offset() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let data = app
        .ok(
            "query($id: ID!) { match(id: $id) { startTime } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    // Byte for byte what clients have always received.
    assert_eq!(data["match"]["startTime"], "2026-11-22T15:00:00+00:00");
    // An offset in the input is converted to UTC.
    let created = app
        .admin(
            CREATE_MATCH,
            json!({"i": {"id": "m-offset", "competitionId": seed.competition,
                         "homeTeamId": seed.home, "awayTeamId": seed.away,
                         "startTime": "2026-11-22T16:30:00+01:00"}}),
        )
        .await;
    assert_eq!(
        created["createMatch"]["startTime"],
        "2026-11-22T15:30:00+00:00"
    );
}

/// Every type of the schema with its fields (and their arguments), input fields and enum values,
/// each with its description.
const INTROSPECT_DESCRIPTIONS: &str = "{ __schema { types { name kind description \
     fields(includeDeprecated: true) { name description args { name description } } \
     inputFields { name description } enumValues(includeDeprecated: true) { name description } } } }";

#[tokio::test]
async fn introspection_describes_every_type_field_argument_input_field_and_enum_value() {
    let app = TestApp::spawn().await;
    let data = app.ok(INTROSPECT_DESCRIPTIONS, json!({}), None).await;
    let described = |v: &Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let types = list(&data["__schema"]["types"]);
    let mut missing = Vec::new();
    let mut checked = 0;
    // Introspection types and the specification's scalars (ID has no description) are not ours.
    let ours = |t: &&Value| {
        let name = t["name"].as_str().unwrap();
        !name.starts_with("__") && !["ID", "Int", "Float", "String", "Boolean"].contains(&name)
    };
    for t in types.iter().filter(ours) {
        let name = t["name"].as_str().unwrap();
        checked += 1;
        if !described(t) {
            missing.push(format!("type {name}"));
        }
        for f in list(&t["fields"]) {
            checked += 1;
            if !described(&f) {
                missing.push(format!("field {name}.{}", f["name"]));
            }
            for a in list(&f["args"]) {
                checked += 1;
                if !described(&a) {
                    missing.push(format!("argument {name}.{}({})", f["name"], a["name"]));
                }
            }
        }
        for f in list(&t["inputFields"]) {
            checked += 1;
            if !described(&f) {
                missing.push(format!("input field {name}.{}", f["name"]));
            }
        }
        for v in list(&t["enumValues"]) {
            checked += 1;
            if !described(&v) {
                missing.push(format!("enum value {name}.{}", v["name"]));
            }
        }
    }
    assert!(checked > 280, "the walk saw the schema: {checked} items");
    assert!(
        missing.is_empty(),
        "{} of {checked} lack a description:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[tokio::test]
async fn introspection_points_date_time_at_rfc_3339() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(
            "{ __type(name: \"DateTime\") { kind specifiedByURL description } }",
            json!({}),
            None,
        )
        .await;
    let t = &data["__type"];
    assert_eq!(t["kind"], "SCALAR");
    assert_eq!(
        t["specifiedByURL"],
        "https://datatracker.ietf.org/doc/html/rfc3339"
    );
    assert!(
        t["description"].as_str().unwrap().contains("RFC 3339"),
        "{t}"
    );
}

const DETAILS: &str = "query($id: ID!) { match(id: $id) { details { __typename \
     ... on SoccerDetails { homeYellowCards awayYellowCards homeRedCards awayRedCards addedTimeMinutes } \
     ... on BaseballDetails { inning half outs balls strikes bases { first second third } } \
     ... on BasketballDetails { homeTeamFouls awayTeamFouls homeTimeoutsLeft awayTimeoutsLeft } \
     ... on IceHockeyDetails { homeShotsOnGoal awayShotsOnGoal homePenaltyMinutes awayPenaltyMinutes \
           powerPlay { side secondsLeft } } \
     ... on AmericanFootballDetails { possession down yardsToGo ballOn homeTimeoutsLeft awayTimeoutsLeft } \
     } } }";

#[tokio::test]
async fn match_details_is_the_union_member_of_the_match_sport() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "SOCCER",
            json!({"__typename": "SoccerDetails", "homeYellowCards": 0, "awayYellowCards": 0,
                   "homeRedCards": 0, "awayRedCards": 0, "addedTimeMinutes": null}),
        ),
        (
            "BASEBALL",
            json!({"__typename": "BaseballDetails", "inning": 1, "half": "TOP", "outs": 0,
                   "balls": 0, "strikes": 0, "bases": {"first": false, "second": false, "third": false}}),
        ),
        (
            "BASKETBALL",
            json!({"__typename": "BasketballDetails", "homeTeamFouls": 0, "awayTeamFouls": 0,
                   "homeTimeoutsLeft": 7, "awayTimeoutsLeft": 7}),
        ),
        (
            "ICE_HOCKEY",
            json!({"__typename": "IceHockeyDetails", "homeShotsOnGoal": 0, "awayShotsOnGoal": 0,
                   "homePenaltyMinutes": 0, "awayPenaltyMinutes": 0, "powerPlay": null}),
        ),
        (
            "AMERICAN_FOOTBALL",
            json!({"__typename": "AmericanFootballDetails", "possession": null, "down": null,
                   "yardsToGo": null, "ballOn": null, "homeTimeoutsLeft": 3, "awayTimeoutsLeft": 3}),
        ),
    ];
    for (sport, expected) in cases {
        let seed = app.seed(sport).await;
        let data = app.ok(DETAILS, json!({"id": seed.match_id}), None).await;
        assert_eq!(data["match"]["details"], expected, "{sport}");
    }
}

#[tokio::test]
async fn details_follow_cards_and_partial_updates() {
    let app = TestApp::spawn().await;
    let soccer = app.live_match("SOCCER").await;
    app.operator(
        RECORD_EVENT,
        json!({"i": {"matchId": soccer.match_id, "type": "YELLOW_CARD", "side": "AWAY"}}),
    )
    .await;
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": soccer.match_id, "soccer": {"addedTimeMinutes": 4}}}),
    )
    .await;
    let data = app.ok(DETAILS, json!({"id": soccer.match_id}), None).await;
    assert_eq!(
        data["match"]["details"],
        json!({"__typename": "SoccerDetails", "homeYellowCards": 0, "awayYellowCards": 1,
               "homeRedCards": 0, "awayRedCards": 0, "addedTimeMinutes": 4})
    );

    let baseball = app.live_match("BASEBALL").await;
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": baseball.match_id, "baseball": {"inning": 7, "half": "BOTTOM",
               "outs": 2, "bases": {"first": true, "second": false, "third": true}}}}),
    )
    .await;
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": baseball.match_id, "baseball": {"balls": 3, "strikes": 1}}}),
    )
    .await;
    let data = app
        .ok(DETAILS, json!({"id": baseball.match_id}), None)
        .await;
    assert_eq!(
        data["match"]["details"],
        json!({"__typename": "BaseballDetails", "inning": 7, "half": "BOTTOM", "outs": 2,
               "balls": 3, "strikes": 1, "bases": {"first": true, "second": false, "third": true}})
    );
    // A home run scores the batter and both runners, and clears the bases.
    let scored = app
        .operator(
            RECORD_EVENT,
            json!({"i": {"matchId": baseball.match_id, "type": "HOME_RUN", "side": "HOME"}}),
        )
        .await;
    assert_eq!(
        scored["recordEvent"]["score"],
        json!({"home": 3, "away": 0})
    );
    let data = app
        .ok(DETAILS, json!({"id": baseball.match_id}), None)
        .await;
    assert_eq!(
        data["match"]["details"]["bases"],
        json!({"first": false, "second": false, "third": false})
    );

    // Details of another sport are refused.
    let (field, body) = user_error(
        &app,
        UPDATE_DETAILS,
        json!({"i": {"matchId": soccer.match_id, "basketball": {"homeTeamFouls": 1}}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "details", "{body}");
    // Exactly one sport's details must be given.
    let (field, _) = user_error(
        &app,
        UPDATE_DETAILS,
        json!({"i": {"matchId": soccer.match_id}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "details");
    // Out of the game's bounds.
    let (field, _) = user_error(
        &app,
        UPDATE_DETAILS,
        json!({"i": {"matchId": baseball.match_id, "baseball": {"outs": 3}}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "outs");
}

#[tokio::test]
async fn ice_hockey_details_are_recorded_and_updated_through_update_details() {
    let app = TestApp::spawn().await;
    let hockey = app.live_match("ICE_HOCKEY").await;
    let id = hockey.match_id.as_str();
    let updated = app
        .operator(
            UPDATE_DETAILS,
            json!({"i": {"matchId": id, "iceHockey": {"homeShotsOnGoal": 12, "awayShotsOnGoal": 9,
                   "awayPenaltyMinutes": 2, "powerPlay": {"side": "HOME", "secondsLeft": 120}}}}),
        )
        .await;
    assert_eq!(
        updated["updateDetails"]["details"],
        json!({"__typename": "IceHockeyDetails"})
    );
    let read = app.ok(DETAILS, json!({"id": id}), None).await;
    assert_eq!(
        read["match"]["details"],
        json!({"__typename": "IceHockeyDetails", "homeShotsOnGoal": 12, "awayShotsOnGoal": 9,
               "homePenaltyMinutes": 0, "awayPenaltyMinutes": 2,
               "powerPlay": {"side": "HOME", "secondsLeft": 120}})
    );
    // Absent fields keep their value; an explicit null ends the power play.
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": id, "iceHockey": {"homeShotsOnGoal": 13, "powerPlay": null}}}),
    )
    .await;
    let read = app.ok(DETAILS, json!({"id": id}), None).await;
    assert_eq!(
        read["match"]["details"],
        json!({"__typename": "IceHockeyDetails", "homeShotsOnGoal": 13, "awayShotsOnGoal": 9,
               "homePenaltyMinutes": 0, "awayPenaltyMinutes": 2, "powerPlay": null})
    );
    for (input, bad) in [
        (
            json!({"powerPlay": {"side": "AWAY", "secondsLeft": 0}}),
            "powerPlay",
        ),
        (
            json!({"powerPlay": {"side": "AWAY", "secondsLeft": 301}}),
            "powerPlay",
        ),
        (json!({"homePenaltyMinutes": 501}), "homePenaltyMinutes"),
        (json!({"awayShotsOnGoal": -1}), "awayShotsOnGoal"),
    ] {
        let (field, body) = user_error(
            &app,
            UPDATE_DETAILS,
            json!({"i": {"matchId": id, "iceHockey": input}}),
            Some(&operator_token()),
        )
        .await;
        assert_eq!(field, bad, "{body}");
    }
    // Hockey details do not fit another sport's match.
    let soccer = app.live_match("SOCCER").await;
    let (field, _) = user_error(
        &app,
        UPDATE_DETAILS,
        json!({"i": {"matchId": soccer.match_id, "iceHockey": {"homeShotsOnGoal": 1}}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "details");
}

#[tokio::test]
async fn american_football_details_are_recorded_and_updated_through_update_details() {
    let app = TestApp::spawn().await;
    let football = app.live_match("AMERICAN_FOOTBALL").await;
    let id = football.match_id.as_str();
    let version = state(&app, id).await["version"].as_i64().unwrap();
    let updated = app
        .operator(
            UPDATE_DETAILS,
            json!({"i": {"matchId": id, "expectedVersion": version, "americanFootball":
                   {"possession": "AWAY", "down": 1, "yardsToGo": 10, "ballOn": 25}}}),
        )
        .await;
    assert_eq!(updated["updateDetails"]["version"], version + 1);
    assert_eq!(
        updated["updateDetails"]["lastSeq"],
        state(&app, id).await["lastSeq"],
        "updateDetails appends no event"
    );
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": id, "americanFootball":
               {"down": 3, "yardsToGo": 2, "ballOn": 48, "awayTimeoutsLeft": 1}}}),
    )
    .await;
    let read = app.ok(DETAILS, json!({"id": id}), None).await;
    assert_eq!(
        read["match"]["details"],
        json!({"__typename": "AmericanFootballDetails", "possession": "AWAY", "down": 3,
               "yardsToGo": 2, "ballOn": 48, "homeTimeoutsLeft": 3, "awayTimeoutsLeft": 1})
    );
    for (input, bad) in [
        (json!({"down": 5}), "down"),
        (json!({"yardsToGo": 60}), "yardsToGo"),
        (json!({"ballOn": 0}), "ballOn"),
        (json!({"homeTimeoutsLeft": 4}), "homeTimeoutsLeft"),
        (json!({"down": null}), "down"),
    ] {
        let (field, body) = user_error(
            &app,
            UPDATE_DETAILS,
            json!({"i": {"matchId": id, "americanFootball": input}}),
            Some(&operator_token()),
        )
        .await;
        assert_eq!(field, bad, "{body}");
    }
    // A kick-off: nulls clear possession, down, distance and spot together.
    app.operator(
        UPDATE_DETAILS,
        json!({"i": {"matchId": id, "americanFootball":
               {"possession": null, "down": null, "yardsToGo": null, "ballOn": null}}}),
    )
    .await;
    let read = app.ok(DETAILS, json!({"id": id}), None).await;
    assert_eq!(
        read["match"]["details"],
        json!({"__typename": "AmericanFootballDetails", "possession": null, "down": null,
               "yardsToGo": null, "ballOn": null, "homeTimeoutsLeft": 3, "awayTimeoutsLeft": 1})
    );
    // Two sports at once are refused.
    let (field, _) = user_error(
        &app,
        UPDATE_DETAILS,
        json!({"i": {"matchId": id, "americanFootball": {"down": 1},
               "iceHockey": {"homeShotsOnGoal": 1}}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "details");
}

#[tokio::test]
async fn periods_and_clock_follow_the_match() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let id = seed.match_id.as_str();
    let before = state(&app, id).await;
    assert_eq!(before["clock"], Value::Null);
    assert_eq!(before["periods"], json!([]));

    set_status(&app, id, "LIVE").await;
    let live = state(&app, id).await;
    assert_eq!(
        live["clock"],
        json!({"period": 1, "elapsedSeconds": 0, "running": true})
    );
    assert_eq!(
        live["periods"],
        json!([{"period": 1, "label": "1H", "home": 0, "away": 0}])
    );

    app.record(id, "GOAL", "AWAY").await;
    let clock = app
        .operator(
            UPDATE_CLOCK,
            json!({"i": {"matchId": id, "period": 2, "elapsedSeconds": 2700}}),
        )
        .await;
    assert_eq!(
        clock["updateClock"]["clock"],
        json!({"period": 2, "elapsedSeconds": 2700, "running": true})
    );
    app.record(id, "PENALTY_GOAL", "HOME").await;
    set_status(&app, id, "PAUSED").await;

    let after = state(&app, id).await;
    assert_eq!(
        after["clock"],
        json!({"period": 2, "elapsedSeconds": 2700, "running": false})
    );
    assert_eq!(
        after["periods"],
        json!([
            {"period": 1, "label": "1H", "home": 0, "away": 1},
            {"period": 2, "label": "2H", "home": 1, "away": 0},
        ])
    );
    assert_eq!(after["score"], json!({"home": 1, "away": 1}));

    // A period the sport does not have is refused.
    let (field, _) = user_error(
        &app,
        UPDATE_CLOCK,
        json!({"i": {"matchId": id, "period": 6}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "period");
}

#[tokio::test]
async fn a_query_over_get_with_a_query_string_is_answered() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query($id: ID!) { match(id: $id) { id status } }"),
            ("variables", &json!({"id": seed.match_id}).to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"data": {"match": {"id": seed.match_id, "status": "SCHEDULED"}}})
    );
}

#[tokio::test]
async fn a_mutation_over_get_is_refused_as_a_bad_request_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(admin_token())
        .query(&[(
            "query",
            r#"mutation { createCompetition(input: {name: "Sneaky", sport: SOCCER, season: "2026"}) { id } }"#,
        )])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    assert!(message(&body).contains("POST"), "{body}");
    let data = app.ok("{ competitions { id } }", json!({}), None).await;
    assert_eq!(data["competitions"], json!([]));
}

#[tokio::test]
async fn a_get_without_a_usable_query_is_a_coded_error() {
    let app = TestApp::spawn().await;
    // No query at all: there is nothing to parse.
    let resp = app.http.get(app.url("/graphql")).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{body}"
    );
    // Variables that are not JSON: the query string is not a GraphQL request.
    let resp = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ competitions { id } }"), ("variables", "{nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    still_serves(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Mutations: who may call them
// ---------------------------------------------------------------------------------------------

/// Every mutation with an input that would otherwise succeed against `seed`'s LIVE match.
fn every_mutation(seed: &Seed) -> Vec<(&'static str, &'static str, Value)> {
    let m = seed.match_id.clone();
    vec![
        (
            "createCompetition",
            CREATE_COMPETITION,
            json!({"i": {"name": "New", "sport": "SOCCER", "season": "2026"}}),
        ),
        (
            "createTeam",
            CREATE_TEAM,
            json!({"i": {"name": "New Team", "sport": "SOCCER"}}),
        ),
        (
            "createMatch",
            CREATE_MATCH,
            json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                         "awayTeamId": seed.away, "startTime": "2026-12-01T15:00:00Z"}}),
        ),
        (
            "setMatchStatus",
            SET_STATUS,
            json!({"i": {"matchId": m, "status": "PAUSED"}}),
        ),
        (
            "recordEvent",
            RECORD_EVENT,
            json!({"i": {"matchId": m, "type": "GOAL", "side": "HOME"}}),
        ),
        (
            "updateScore",
            UPDATE_SCORE,
            json!({"i": {"matchId": m, "home": 3, "away": 3}}),
        ),
        (
            "updateClock",
            UPDATE_CLOCK,
            json!({"i": {"matchId": m, "elapsedSeconds": 60}}),
        ),
        (
            "updateDetails",
            UPDATE_DETAILS,
            json!({"i": {"matchId": m, "soccer": {"addedTimeMinutes": 2}}}),
        ),
    ]
}

#[tokio::test]
async fn every_mutation_refuses_an_anonymous_caller_as_unauthenticated() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    for (name, query, variables) in every_mutation(&seed) {
        let (status, body) = app.post(query, variables, None).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{name}: {body}"
        );
        assert_eq!(body["data"], Value::Null, "{name}: {body}");
    }
    let after = state(&app, &seed.match_id).await;
    assert_eq!(after["version"], 2, "nothing changed: {after}");
    let comps = app
        .ok("{ competitions { id } teams { id } }", json!({}), None)
        .await;
    assert_eq!(comps["competitions"].as_array().unwrap().len(), 1);
    assert_eq!(comps["teams"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_operator_calling_an_admin_mutation_is_forbidden() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let token = operator_token();
    for (name, query, variables) in every_mutation(&seed).into_iter().take(3) {
        let (code, body) = app.error(query, variables, Some(&token)).await;
        assert_eq!(code, "FORBIDDEN", "{name}: {body}");
        assert!(message(&body).contains("admin"), "{name}: {body}");
    }
    let comps = app
        .ok("{ competitions { id } teams { id } }", json!({}), None)
        .await;
    assert_eq!(comps["competitions"].as_array().unwrap().len(), 1);
    assert_eq!(comps["teams"].as_array().unwrap().len(), 2);
    let listed = app
        .ok("{ matches { edges { node { id } } } }", json!({}), None)
        .await;
    assert_eq!(edge_ids(&listed["matches"]), [seed.match_id.as_str()]);
}

#[tokio::test]
async fn an_operator_may_run_every_match_day_mutation() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let m = seed.match_id.as_str();
    let live = app
        .operator(SET_STATUS, json!({"i": {"matchId": m, "status": "LIVE"}}))
        .await;
    assert_eq!(
        live["setMatchStatus"],
        json!({"id": m, "version": 2, "status": "LIVE", "lastSeq": 1})
    );
    let goal = app
        .operator(
            RECORD_EVENT,
            json!({"i": {"matchId": m, "type": "GOAL", "side": "HOME"}}),
        )
        .await;
    assert_eq!(
        goal["recordEvent"],
        json!({"id": m, "version": 3, "lastSeq": 2, "score": {"home": 1, "away": 0}})
    );
    let corrected = app
        .operator(
            UPDATE_SCORE,
            json!({"i": {"matchId": m, "home": 2, "away": 1}}),
        )
        .await;
    assert_eq!(
        corrected["updateScore"],
        json!({"id": m, "version": 4, "lastSeq": 3, "score": {"home": 2, "away": 1}})
    );
    let clock = app
        .operator(
            UPDATE_CLOCK,
            json!({"i": {"matchId": m, "elapsedSeconds": 600, "running": false}}),
        )
        .await;
    assert_eq!(
        clock["updateClock"],
        json!({"id": m, "version": 5, "lastSeq": 3,
               "clock": {"period": 1, "elapsedSeconds": 600, "running": false}})
    );
    let details = app
        .operator(
            UPDATE_DETAILS,
            json!({"i": {"matchId": m, "soccer": {"homeRedCards": 1}}}),
        )
        .await;
    assert_eq!(
        details["updateDetails"],
        json!({"id": m, "version": 6, "lastSeq": 3, "details": {"__typename": "SoccerDetails"}})
    );
}

#[tokio::test]
async fn an_admin_may_run_match_day_mutations_too() {
    let app = TestApp::spawn().await;
    let seed = app.seed("BASKETBALL").await;
    let live = app
        .admin(
            SET_STATUS,
            json!({"i": {"matchId": seed.match_id, "status": "LIVE"}}),
        )
        .await;
    assert_eq!(live["setMatchStatus"]["status"], "LIVE");
    let scored = app
        .admin(
            RECORD_EVENT,
            json!({"i": {"matchId": seed.match_id, "type": "FIELD_GOAL", "side": "AWAY"}}),
        )
        .await;
    assert_eq!(
        scored["recordEvent"]["score"],
        json!({"home": 0, "away": 2})
    );
}

// ---------------------------------------------------------------------------------------------
// Mutations: validation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_match_between_a_team_and_itself_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let (field, body) = user_error(
        &app,
        CREATE_MATCH,
        json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                     "awayTeamId": seed.home, "startTime": "2026-12-01T15:00:00Z"}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "awayTeamId");
    assert!(message(&body).contains("cannot play itself"), "{body}");
}

#[tokio::test]
async fn a_match_in_an_unknown_competition_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let (field, body) = user_error(
        &app,
        CREATE_MATCH,
        json!({"i": {"competitionId": "no-such-league", "homeTeamId": seed.home,
                     "awayTeamId": seed.away, "startTime": "2026-12-01T15:00:00Z"}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "competitionId");
    assert!(message(&body).contains("no-such-league"), "{body}");
}

#[tokio::test]
async fn a_match_with_an_unknown_team_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    for (home, away, expected) in [
        ("no-such-team", seed.away.as_str(), "homeTeamId"),
        (seed.home.as_str(), "no-such-team", "awayTeamId"),
    ] {
        let (field, body) = user_error(
            &app,
            CREATE_MATCH,
            json!({"i": {"competitionId": seed.competition, "homeTeamId": home,
                         "awayTeamId": away, "startTime": "2026-12-01T15:00:00Z"}}),
            Some(&admin_token()),
        )
        .await;
        assert_eq!(field, expected);
        assert!(message(&body).contains("no-such-team"), "{body}");
    }
}

#[tokio::test]
async fn a_team_of_another_sport_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    create_team(&app, "lal", "BASKETBALL", &[]).await;
    let (field, body) = user_error(
        &app,
        CREATE_MATCH,
        json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                     "awayTeamId": "lal", "startTime": "2026-12-01T15:00:00Z"}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "awayTeamId");
    assert!(message(&body).contains("BASKETBALL"), "{body}");
    // Registering a team in a competition of another sport is refused too.
    let (field, _) = user_error(
        &app,
        CREATE_TEAM,
        json!({"i": {"name": "Celtics", "sport": "BASKETBALL", "competitionIds": [seed.competition]}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "competitionIds");
    let (field, _) = user_error(
        &app,
        CREATE_TEAM,
        json!({"i": {"name": "Celtics", "sport": "BASKETBALL", "competitionIds": ["no-such-league"]}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "competitionIds");
    let teams = app
        .ok("{ teams(sport: BASKETBALL) { id } }", json!({}), None)
        .await;
    assert_eq!(ids(&teams["teams"]), ["lal"]);
}

#[tokio::test]
async fn a_negative_or_oversized_score_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let token = operator_token();
    for (home, away, expected) in [(-1, 0, "home"), (0, -5, "away"), (1000, 0, "home")] {
        let (field, body) = user_error(
            &app,
            UPDATE_SCORE,
            json!({"i": {"matchId": seed.match_id, "home": home, "away": away}}),
            Some(&token),
        )
        .await;
        assert_eq!(field, expected, "{body}");
    }
    // Negative points on an event are refused as well.
    let (field, _) = user_error(
        &app,
        RECORD_EVENT,
        json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME", "points": -1}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "points");
    let after = state(&app, &seed.match_id).await;
    assert_eq!(after["version"], 2);
    assert_eq!(after["score"], json!({"home": 0, "away": 0}));
}

#[tokio::test]
async fn a_name_longer_than_100_characters_is_refused() {
    let app = TestApp::spawn().await;
    let token = admin_token();
    let long = "x".repeat(101);
    let (field, body) = user_error(
        &app,
        CREATE_COMPETITION,
        json!({"i": {"name": long, "sport": "SOCCER", "season": "2026"}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "name");
    assert!(message(&body).contains("at most 100"), "{body}");
    let (field, _) = user_error(
        &app,
        CREATE_TEAM,
        json!({"i": {"name": long, "sport": "SOCCER"}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "name");
    let (field, _) = user_error(
        &app,
        CREATE_TEAM,
        json!({"i": {"name": "Arsenal", "shortName": "TOOLONG", "sport": "SOCCER"}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "shortName");
    // Exactly 100 characters is fine.
    let ok = app
        .admin(
            CREATE_COMPETITION,
            json!({"i": {"name": "y".repeat(100), "sport": "SOCCER", "season": "2026"}}),
        )
        .await;
    assert_eq!(ok["createCompetition"]["name"], "y".repeat(100));
}

#[tokio::test]
async fn a_start_time_that_is_not_rfc_3339_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    for bad in ["next tuesday", "2026-13-01T15:00:00Z", "2026-11-22"] {
        let (field, body) = user_error(
            &app,
            CREATE_MATCH,
            json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                         "awayTeamId": seed.away, "startTime": bad}}),
            Some(&admin_token()),
        )
        .await;
        assert_eq!(field, "startTime", "{bad}: {body}");
    }
    let listed = app
        .ok("{ matches { edges { node { id } } } }", json!({}), None)
        .await;
    assert_eq!(edge_ids(&listed["matches"]), [seed.match_id.as_str()]);
}

#[tokio::test]
async fn a_scheduled_match_cannot_jump_to_finished() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let (field, body) = user_error(
        &app,
        SET_STATUS,
        json!({"i": {"matchId": seed.match_id, "status": "FINISHED"}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "status");
    assert!(
        message(&body).contains("a SCHEDULED match cannot become FINISHED"),
        "{body}"
    );
    let after = state(&app, &seed.match_id).await;
    assert_eq!(after["status"], "SCHEDULED");
    assert_eq!(after["version"], 1);
    assert_eq!(after["events"], json!([]));
}

#[tokio::test]
async fn the_status_machine_allows_exactly_its_moves() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let m = seed.match_id.as_str();
    // A walk through every allowed move.
    for status in [
        "POSTPONED",
        "SCHEDULED",
        "LIVE",
        "PAUSED",
        "LIVE",
        "PAUSED",
        "FINISHED",
    ] {
        assert_eq!(set_status(&app, m, status).await["status"], status);
    }
    // Nothing leaves FINISHED.
    for status in [
        "LIVE",
        "PAUSED",
        "SCHEDULED",
        "POSTPONED",
        "CANCELLED",
        "FINISHED",
    ] {
        let (field, _) = user_error(
            &app,
            SET_STATUS,
            json!({"i": {"matchId": m, "status": status}}),
            Some(&operator_token()),
        )
        .await;
        assert_eq!(field, "status", "FINISHED → {status}");
    }
    let other = app.seed("SOCCER").await;
    assert_eq!(
        set_status(&app, &other.match_id, "CANCELLED").await["status"],
        "CANCELLED"
    );
    let (field, _) = user_error(
        &app,
        SET_STATUS,
        json!({"i": {"matchId": other.match_id, "status": "SCHEDULED"}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "status");
}

#[tokio::test]
async fn a_scoring_event_is_refused_unless_the_match_is_live() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let m = seed.match_id.as_str();
    let goal = json!({"i": {"matchId": m, "type": "GOAL", "side": "HOME"}});
    let (field, body) = user_error(&app, RECORD_EVENT, goal.clone(), Some(&operator_token())).await;
    assert_eq!(field, "type");
    assert!(
        message(&body).contains("only accepted while the match is LIVE"),
        "{body}"
    );

    set_status(&app, m, "LIVE").await;
    set_status(&app, m, "PAUSED").await;
    let (field, _) = user_error(&app, RECORD_EVENT, goal.clone(), Some(&operator_token())).await;
    assert_eq!(field, "type");
    let after = state(&app, m).await;
    assert_eq!(after["score"], json!({"home": 0, "away": 0}));
    assert_eq!(after["lastSeq"], 2);

    set_status(&app, m, "LIVE").await;
    let scored = app.operator(RECORD_EVENT, goal).await;
    assert_eq!(
        scored["recordEvent"]["score"],
        json!({"home": 1, "away": 0})
    );
}

#[tokio::test]
async fn an_event_type_foreign_to_the_sport_is_refused() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let (field, body) = user_error(
        &app,
        RECORD_EVENT,
        json!({"i": {"matchId": seed.match_id, "type": "TOUCHDOWN", "side": "HOME"}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "type");
    assert!(
        message(&body).contains("TOUCHDOWN is not an event of SOCCER"),
        "{body}"
    );
    // The server writes STATUS_CHANGE and SCORE_CORRECTION itself.
    for t in ["STATUS_CHANGE", "SCORE_CORRECTION"] {
        let (field, _) = user_error(
            &app,
            RECORD_EVENT,
            json!({"i": {"matchId": seed.match_id, "type": t}}),
            Some(&operator_token()),
        )
        .await;
        assert_eq!(field, "type", "{t}");
    }
    // A scoring event needs its side.
    let (field, _) = user_error(
        &app,
        RECORD_EVENT,
        json!({"i": {"matchId": seed.match_id, "type": "GOAL"}}),
        Some(&operator_token()),
    )
    .await;
    assert_eq!(field, "side");
    let after = state(&app, &seed.match_id).await;
    assert_eq!(after["version"], 2);
    assert_eq!(after["lastSeq"], 1);
}

#[tokio::test]
async fn a_malformed_id_given_at_creation_is_refused_naming_its_field() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let token = admin_token();
    let cases = [
        (
            CREATE_COMPETITION,
            json!({"id": "a b", "name": "X", "sport": "SOCCER", "season": "2026"}),
            "id",
        ),
        (
            CREATE_TEAM,
            json!({"id": "a/b", "name": "X", "sport": "SOCCER"}),
            "id",
        ),
        (
            CREATE_TEAM,
            json!({"name": "X", "sport": "SOCCER", "competitionIds": ["a b"]}),
            "competitionIds",
        ),
        (
            CREATE_MATCH,
            json!({"id": "", "competitionId": seed.competition, "homeTeamId": seed.home,
                   "awayTeamId": seed.away, "startTime": "2026-12-01T15:00:00Z"}),
            "id",
        ),
        (
            CREATE_MATCH,
            json!({"competitionId": "x y", "homeTeamId": seed.home,
                   "awayTeamId": seed.away, "startTime": "2026-12-01T15:00:00Z"}),
            "competitionId",
        ),
    ];
    for (query, input, expected) in cases {
        let (field, body) = user_error(&app, query, json!({"i": input}), Some(&token)).await;
        assert_eq!(field, expected, "{body}");
    }
}

#[tokio::test]
async fn an_entity_id_that_is_taken_is_refused() {
    let app = TestApp::spawn().await;
    create_competition(&app, "epl", "SOCCER").await;
    let (field, body) = user_error(
        &app,
        CREATE_COMPETITION,
        json!({"i": {"id": "epl", "name": "Again", "sport": "SOCCER", "season": "2027"}}),
        Some(&admin_token()),
    )
    .await;
    assert_eq!(field, "id");
    assert!(message(&body).contains("already exists"), "{body}");
    let one = app
        .ok("{ competition(id: \"epl\") { season } }", json!({}), None)
        .await;
    assert_eq!(one["competition"]["season"], "2026");
}

// ---------------------------------------------------------------------------------------------
// Mutations: defaults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_team_without_a_short_name_gets_one_derived_from_its_name() {
    let app = TestApp::spawn().await;
    let cases = [
        ("Arsenal", None, "ARS"),
        ("Los Angeles Lakers", None, "LAL"),
        ("Boston Celtics", Some("bos"), "BOS"),
    ];
    for (name, short, expected) in cases {
        let data = app
            .admin(
                CREATE_TEAM,
                json!({"i": {"name": name, "shortName": short, "sport": "BASKETBALL"}}),
            )
            .await;
        assert_eq!(data["createTeam"]["shortName"], expected, "{name}");
        assert_eq!(data["createTeam"]["name"], name);
        let id = data["createTeam"]["id"].as_str().unwrap();
        assert!(!id.is_empty());
    }
}

#[tokio::test]
async fn an_event_without_points_scores_the_sport_default() {
    let app = TestApp::spawn().await;
    let basketball = app.live_match("BASKETBALL").await;
    let football = app.live_match("AMERICAN_FOOTBALL").await;
    let q = "query($id: ID!) { match(id: $id) { score { home away } events(afterSeq: 1) { type points } } }";

    app.record(&basketball.match_id, "THREE_POINTER", "HOME")
        .await;
    app.record(&basketball.match_id, "FIELD_GOAL", "AWAY").await;
    app.record(&basketball.match_id, "FREE_THROW", "AWAY").await;
    let b = app.ok(q, json!({"id": basketball.match_id}), None).await["match"].clone();
    assert_eq!(b["score"], json!({"home": 3, "away": 3}));
    assert_eq!(
        b["events"],
        json!([{"type": "THREE_POINTER", "points": 3}, {"type": "FIELD_GOAL", "points": 2},
               {"type": "FREE_THROW", "points": 1}])
    );

    app.record(&football.match_id, "TOUCHDOWN", "HOME").await;
    app.record(&football.match_id, "EXTRA_POINT", "HOME").await;
    app.record(&football.match_id, "FIELD_GOAL", "AWAY").await;
    // An explicit value overrides the default.
    app.operator(
        RECORD_EVENT,
        json!({"i": {"matchId": football.match_id, "type": "TOUCHDOWN", "side": "AWAY", "points": 8}}),
    )
    .await;
    let f = app.ok(q, json!({"id": football.match_id}), None).await["match"].clone();
    assert_eq!(f["score"], json!({"home": 7, "away": 11}));
    assert_eq!(
        f["events"],
        json!([{"type": "TOUCHDOWN", "points": 6}, {"type": "EXTRA_POINT", "points": 1},
               {"type": "FIELD_GOAL", "points": 3}, {"type": "TOUCHDOWN", "points": 8}])
    );
}

#[tokio::test]
async fn a_match_takes_its_competition_sport_and_starts_scheduled() {
    let app = TestApp::spawn().await;
    create_competition(&app, "nhl", "ICE_HOCKEY").await;
    create_team(&app, "bru", "ICE_HOCKEY", &[]).await;
    create_team(&app, "hab", "ICE_HOCKEY", &[]).await;
    let created = app
        .admin(
            CREATE_MATCH,
            json!({"i": {"competitionId": "nhl", "homeTeamId": "bru", "awayTeamId": "hab",
                         "startTime": "2026-11-22T19:00:00.750+01:00"}}),
        )
        .await["createMatch"]
        .clone();
    assert_eq!(created["sport"], "ICE_HOCKEY");
    assert_eq!(created["status"], "SCHEDULED");
    assert_eq!(created["version"], 1);
    assert_eq!(created["lastSeq"], 0);
    assert_eq!(created["venue"], Value::Null);
    assert_eq!(created["score"], json!({"home": 0, "away": 0}));
    // Start times are stored in UTC, to the second.
    assert_eq!(
        instant(&created["startTime"]),
        instant(&json!("2026-11-22T18:00:00Z"))
    );
    assert_eq!(instant(&created["startTime"]).offset().local_minus_utc(), 0);
    assert!(!created["id"].as_str().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Mutations: the timeline, versions, concurrency and idempotency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_event_writing_mutation_appends_exactly_one_event_and_the_others_none() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let m = seed.match_id.as_str();
    let steps: Vec<(&str, Value, Option<&str>)> = vec![
        (
            SET_STATUS,
            json!({"matchId": m, "status": "LIVE"}),
            Some("STATUS_CHANGE"),
        ),
        (
            RECORD_EVENT,
            json!({"matchId": m, "type": "GOAL", "side": "AWAY"}),
            Some("GOAL"),
        ),
        (
            UPDATE_CLOCK,
            json!({"matchId": m, "elapsedSeconds": 1200}),
            None,
        ),
        (
            UPDATE_DETAILS,
            json!({"matchId": m, "soccer": {"addedTimeMinutes": 3}}),
            None,
        ),
        (
            UPDATE_SCORE,
            json!({"matchId": m, "home": 0, "away": 2}),
            Some("SCORE_CORRECTION"),
        ),
        (
            RECORD_EVENT,
            json!({"matchId": m, "type": "NOTE", "description": "rain"}),
            Some("NOTE"),
        ),
        (
            SET_STATUS,
            json!({"matchId": m, "status": "PAUSED"}),
            Some("STATUS_CHANGE"),
        ),
        (UPDATE_CLOCK, json!({"matchId": m, "period": 2}), None),
    ];
    let mut expected_types: Vec<&str> = Vec::new();
    for (i, (query, input, appended)) in steps.into_iter().enumerate() {
        let before = state(&app, m).await;
        app.operator(query, json!({"i": input})).await;
        let after = state(&app, m).await;
        assert_eq!(
            after["version"].as_i64().unwrap(),
            before["version"].as_i64().unwrap() + 1,
            "step {i}: every change raises the version by one"
        );
        if let Some(t) = appended {
            expected_types.push(t);
        }
        assert_eq!(
            after["lastSeq"].as_i64().unwrap(),
            expected_types.len() as i64,
            "step {i}"
        );
        let types: Vec<&str> = after["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, expected_types, "step {i}");
    }
    let end = state(&app, m).await;
    assert_eq!(end["version"], 9);
    assert_eq!(end["score"], json!({"home": 0, "away": 2}));
    let seqs: Vec<i64> = end["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_version_conflict() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let m = seed.match_id.as_str();
    app.record(m, "GOAL", "HOME").await; // version 3
    let token = operator_token();
    let stale = [
        (
            SET_STATUS,
            json!({"matchId": m, "status": "PAUSED", "expectedVersion": 2}),
        ),
        (
            RECORD_EVENT,
            json!({"matchId": m, "type": "GOAL", "side": "AWAY", "expectedVersion": 1}),
        ),
        (
            UPDATE_SCORE,
            json!({"matchId": m, "home": 5, "away": 5, "expectedVersion": 2}),
        ),
        (
            UPDATE_CLOCK,
            json!({"matchId": m, "elapsedSeconds": 5, "expectedVersion": 4}),
        ),
        (
            UPDATE_DETAILS,
            json!({"matchId": m, "soccer": {"homeRedCards": 1}, "expectedVersion": 99}),
        ),
    ];
    for (query, input) in stale {
        let (code, body) = app.error(query, json!({"i": input}), Some(&token)).await;
        assert_eq!(code, "VERSION_CONFLICT", "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["currentVersion"], 3,
            "{body}"
        );
        assert!(message(&body).contains("version 3"), "{body}");
    }
    let after = state(&app, m).await;
    assert_eq!(after["version"], 3);
    assert_eq!(after["status"], "LIVE");
    assert_eq!(after["score"], json!({"home": 1, "away": 0}));
    assert_eq!(after["lastSeq"], 2);

    // The current version is accepted.
    let ok = app
        .operator(
            RECORD_EVENT,
            json!({"i": {"matchId": m, "type": "GOAL", "side": "AWAY", "expectedVersion": 3}}),
        )
        .await;
    assert_eq!(ok["recordEvent"]["version"], 4);
    // A version below 1 is not a version at all.
    let (field, _) = user_error(
        &app,
        UPDATE_CLOCK,
        json!({"i": {"matchId": m, "elapsedSeconds": 5, "expectedVersion": 0}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "expectedVersion");
}

#[tokio::test]
async fn a_replayed_client_mutation_id_is_applied_once() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let m = seed.match_id.as_str();
    let goal = json!({"i": {"matchId": m, "type": "GOAL", "side": "HOME",
                            "expectedVersion": 2, "clientMutationId": "phone-1:goal-1"}});
    let first = app.operator(RECORD_EVENT, goal.clone()).await["recordEvent"].clone();
    assert_eq!(
        first,
        json!({"id": m, "version": 3, "lastSeq": 2, "score": {"home": 1, "away": 0}})
    );
    // Someone else scores in between: the replay's expectedVersion is stale by now.
    app.record(m, "GOAL", "AWAY").await;
    for _ in 0..3 {
        let replay = app.operator(RECORD_EVENT, goal.clone()).await["recordEvent"].clone();
        assert_eq!(replay, first, "a replay returns the first result");
    }
    let after = state(&app, m).await;
    assert_eq!(after["version"], 4);
    assert_eq!(after["score"], json!({"home": 1, "away": 1}));
    assert_eq!(after["lastSeq"], 3, "the goal was recorded once");

    // Every match-day mutation honours the key.
    let correction =
        json!({"i": {"matchId": m, "home": 4, "away": 4, "clientMutationId": "fix-1"}});
    let first = app.operator(UPDATE_SCORE, correction.clone()).await;
    let replay = app.operator(UPDATE_SCORE, correction).await;
    assert_eq!(first, replay);
    let clock = json!({"i": {"matchId": m, "elapsedSeconds": 30, "clientMutationId": "tick-1"}});
    let first = app.operator(UPDATE_CLOCK, clock.clone()).await;
    let replay = app.operator(UPDATE_CLOCK, clock).await;
    assert_eq!(first, replay);
    let pause = json!({"i": {"matchId": m, "status": "PAUSED", "clientMutationId": "pause-1"}});
    let first = app.operator(SET_STATUS, pause.clone()).await;
    // A replay of a status move that no longer applies (PAUSED → PAUSED) still answers.
    let replay = app.operator(SET_STATUS, pause).await;
    assert_eq!(first, replay);
    let after = state(&app, m).await;
    assert_eq!(after["version"], 7);
    assert_eq!(after["score"], json!({"home": 4, "away": 4}));
    assert_eq!(after["lastSeq"], 5);

    // The key belongs to its match: the same key on another match is a new mutation.
    let other = app.live_match("SOCCER").await;
    let elsewhere = app
        .operator(
            RECORD_EVENT,
            json!({"i": {"matchId": other.match_id, "type": "GOAL", "side": "HOME",
                         "clientMutationId": "phone-1:goal-1"}}),
        )
        .await;
    assert_eq!(elsewhere["recordEvent"]["version"], 3);
    assert_eq!(
        elsewhere["recordEvent"]["score"],
        json!({"home": 1, "away": 0})
    );
}

#[tokio::test]
async fn a_match_day_mutation_on_an_unknown_match_is_not_found() {
    let app = TestApp::spawn().await;
    let token = operator_token();
    let m = "no-such-match";
    let cases = [
        (SET_STATUS, json!({"matchId": m, "status": "LIVE"})),
        (
            RECORD_EVENT,
            json!({"matchId": m, "type": "GOAL", "side": "HOME"}),
        ),
        (UPDATE_SCORE, json!({"matchId": m, "home": 1, "away": 0})),
        (UPDATE_CLOCK, json!({"matchId": m, "period": 1})),
        (
            UPDATE_DETAILS,
            json!({"matchId": m, "soccer": {"homeRedCards": 1}}),
        ),
        (
            RECORD_EVENT,
            json!({"matchId": m, "type": "GOAL", "side": "HOME", "clientMutationId": "k"}),
        ),
    ];
    for (query, input) in cases {
        let (code, body) = app.error(query, json!({"i": input}), Some(&token)).await;
        assert_eq!(code, "NOT_FOUND", "{body}");
        assert!(message(&body).contains(m), "{body}");
    }
    // A malformed id is the caller's input, not a missing match.
    let (field, _) = user_error(
        &app,
        UPDATE_CLOCK,
        json!({"i": {"matchId": "MATCH#1", "period": 1}}),
        Some(&token),
    )
    .await;
    assert_eq!(field, "matchId");
}

/// Posts `recordEvent` from a spawned task; returns the version it answered with.
fn spawn_record(app: &TestApp, token: &str, input: Value) -> tokio::task::JoinHandle<Value> {
    let http = app.http.clone();
    let url = app.url("/graphql");
    let token = token.to_string();
    tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(token)
            .json(&json!({"query": RECORD_EVENT, "variables": {"i": input}}))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.expect("a JSON body");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["recordEvent"].clone()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_scorers_lose_no_points_and_leave_no_gaps() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    let initial = state(&app, &seed.match_id).await["version"]
        .as_i64()
        .unwrap();
    assert_eq!(initial, 2);
    let token = operator_token();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            spawn_record(
                &app,
                &token,
                json!({"matchId": seed.match_id, "type": "FIELD_GOAL", "side": "HOME"}),
            )
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        let answered = task.await.expect("the scorer finishes");
        versions.insert(answered["version"].as_i64().unwrap());
    }
    assert_eq!(
        versions,
        (initial + 1..=initial + 100).collect::<BTreeSet<_>>(),
        "each scorer committed its own version"
    );

    let end = app
        .ok(
            "query($id: ID!) { match(id: $id) { version lastSeq score { home away } \
             periods { home } events(first: 200) { seq type points } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await["match"]
        .clone();
    assert_eq!(end["score"], json!({"home": 200, "away": 0}));
    assert_eq!(end["periods"], json!([{"home": 200}]));
    assert_eq!(end["version"], initial + 100);
    assert_eq!(end["lastSeq"], 101);
    let events = end["events"].as_array().unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>());
    assert!(events[1..]
        .iter()
        .all(|e| e["type"] == "FIELD_GOAL" && e["points"] == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_of_one_client_mutation_id_apply_it_once() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    let token = operator_token();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            spawn_record(
                &app,
                &token,
                json!({"matchId": seed.match_id, "type": "THREE_POINTER", "side": "AWAY",
                       "clientMutationId": "offline-queue-7"}),
            )
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the replay finishes"));
    }
    let first = answers[0].clone();
    assert_eq!(first["version"], 3);
    assert_eq!(first["score"], json!({"home": 0, "away": 3}));
    assert!(answers.iter().all(|a| *a == first), "{answers:?}");
    let end = state(&app, &seed.match_id).await;
    assert_eq!(end["version"], 3);
    assert_eq!(end["lastSeq"], 2);
    assert_eq!(end["score"], json!({"home": 0, "away": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_with_an_expected_version_all_get_the_first_result() {
    // An offline queue that retries before the first attempt has answered: every copy carries
    // the same key and the same expectedVersion. Idempotency comes first, so none of them may
    // see a VERSION_CONFLICT, however the copies interleave.
    let app = TestApp::spawn().await;
    let token = operator_token();
    for round in 0..5 {
        let seed = app.live_match("BASKETBALL").await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                spawn_record(
                    &app,
                    &token,
                    json!({"matchId": seed.match_id, "type": "FREE_THROW", "side": "HOME",
                           "expectedVersion": 2, "clientMutationId": format!("retry-{round}")}),
                )
            })
            .collect();
        for task in tasks {
            let answer = task.await.expect("the replay finishes");
            assert_eq!(
                answer,
                json!({"id": seed.match_id, "version": 3, "lastSeq": 2,
                       "score": {"home": 1, "away": 0}}),
                "round {round}"
            );
        }
        let end = state(&app, &seed.match_id).await;
        assert_eq!(end["version"], 3);
        assert_eq!(end["score"], json!({"home": 1, "away": 0}));
    }
}

// ---------------------------------------------------------------------------------------------
// Safety: malformed, oversized and hostile requests
// ---------------------------------------------------------------------------------------------

async fn post_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test]
async fn a_malformed_json_body_is_a_400_with_a_coded_json_error() {
    let app = TestApp::spawn().await;
    for body in [
        "{not json",
        "",
        r#"{"query": 42}"#,
        r#"{"query": "{ competitions { id } }", "variables": [1]}"#,
        r#"[{"query": "{ competitions { id } }"}, 7]"#,
    ] {
        let resp = post_raw(&app, body).await;
        assert_eq!(resp.status().as_u16(), 400, "{body:?}");
        let json: Value = resp.json().await.expect("a JSON error body");
        assert_eq!(
            json["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{body:?}: {json}"
        );
        assert!(json["errors"][0]["message"].is_string(), "{json}");
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn().await;
    // 64 KiB is the default limit; a comment pads the query past it.
    let padded = |size: usize| {
        let query = format!("{{ competitions {{ id }} }}\n#{}", "x".repeat(size));
        json!({"query": query}).to_string()
    };
    let resp = post_raw(&app, padded(70 * 1024)).await;
    assert_eq!(resp.status().as_u16(), 413);
    still_serves(&app).await;
    // Just under the limit is served.
    let resp = post_raw(&app, padded(60 * 1024)).await;
    assert_eq!(resp.status().as_u16(), 200);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json, json!({"data": {"competitions": []}}));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_with_413_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 4096).await;
    // Without a Content-Length the limit can only be enforced while reading.
    let query = format!("{{ competitions {{ id }} }}\n#{}", "x".repeat(8192));
    let body = json!({"query": query}).to_string();
    let mut request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    for chunk in body.as_bytes().chunks(1024) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        response.lines().next().unwrap_or_default()
    );
    still_serves(&app).await;
}

#[tokio::test]
async fn the_body_limit_follows_the_configuration() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 1024).await;
    let query = format!("{{ competitions {{ id }} }}\n#{}", "x".repeat(2048));
    let resp = post_raw(&app, json!({"query": query}).to_string()).await;
    assert_eq!(resp.status().as_u16(), 413);
    still_serves(&app).await;
}

#[tokio::test]
async fn an_unknown_operation_name_is_a_coded_error() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .post(app.url("/graphql"))
        .json(
            &json!({"query": "query A { competitions { id } } query B { teams { id } }",
                      "operationName": "C"}),
        )
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    assert!(message(&body).contains("\"C\""), "{body}");
    // Two operations and no name: the server cannot choose.
    let (code, _) = app
        .error(
            "query A { competitions { id } } query B { teams { id } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(code, "BAD_REQUEST");
    // The right name picks its operation.
    let resp = app
        .http
        .post(app.url("/graphql"))
        .json(
            &json!({"query": "query A { competitions { id } } query B { teams { id } }",
                      "operationName": "B"}),
        )
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"data": {"teams": []}}));
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_fails_validation() {
    let app = TestApp::spawn().await;
    // The schema has no cycles of its own; introspection has, with a bound of its own (20
    // levels): 21 levels are refused, the 14 of the standard introspection query pass.
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType \
                { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType \
                { ofType { ofType { name } } } } } } } } } } } } } } } } } } } } }";
    let (code, body) = app.error(deep, json!({}), None).await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["limit"],
        "MAX_INTROSPECTION_DEPTH"
    );
    assert_eq!(body["data"], Value::Null, "nothing was executed: {body}");
    let shallow = "{ __schema { queryType { name } } }";
    let data = app.ok(shallow, json!({}), None).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    still_serves(&app).await;
}

#[tokio::test]
async fn the_depth_limit_follows_the_configuration() {
    let app = TestApp::spawn_with(|config| config.max_query_depth = 3).await;
    let (code, _) = app
        .error("{ matches { edges { node { id } } } }", json!({}), None)
        .await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
    let data = app.ok("{ competitions { id } }", json!({}), None).await;
    assert_eq!(data["competitions"], json!([]));
}

#[tokio::test]
async fn a_syntax_error_is_a_parse_failure() {
    let app = TestApp::spawn().await;
    for bad in [
        "{ match(id: ",
        "query { competitions { id }",
        "mutation {{ }",
    ] {
        let (code, body) = app.error(bad, json!({}), None).await;
        assert_eq!(code, "GRAPHQL_PARSE_FAILED", "{bad}: {body}");
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn an_unknown_field_fails_validation() {
    let app = TestApp::spawn().await;
    let (code, body) = app
        .error("{ competitions { id colour } }", json!({}), None)
        .await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert!(message(&body).contains("colour"), "{body}");
    still_serves(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Health and readiness (GraphiQL: tests/graphiql.rs)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_answers_200() {
    let app = TestApp::spawn().await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readyz_reports_the_store_and_the_broker() {
    let app = TestApp::spawn().await;
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"store": "ok", "broker": "ok"}));
}

#[tokio::test]
async fn thousands_of_errors_are_capped_at_fifty_the_last_saying_how_many_were_left_out() {
    let app = TestApp::spawn().await;
    let query = format!("{{ competitions {{ id {} }} }}", "@nope ".repeat(4000));
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("the server answers");
    let bytes = response.bytes().await.expect("a body");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors: {body}"));
    assert_eq!(errors.len(), 50, "{body}");
    assert!(
        errors[..49]
            .iter()
            .all(|e| e["message"] == "Unknown directive \"nope\""),
        "{body}"
    );
    let last = errors[49]["message"].as_str().unwrap();
    assert_eq!(
        last, "3951 more errors were left out: a response reports at most 50",
        "{body}"
    );
    assert_eq!(
        errors[49]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
}

#[tokio::test]
async fn a_parse_error_names_the_position_without_repeating_the_document() {
    let app = TestApp::spawn().await;
    let canary = "CANARY_".repeat(500);
    for query in [
        format!("{{ match(id: \"{canary}\") {{ id ( }} }}"),
        format!("{{ {canary} "),
        format!("query {canary} {{ __typename }} query {canary} {{ __typename }}"),
    ] {
        let (_, body) = app.post(&query, json!({}), None).await;
        let error = &body["errors"][0];
        let message = error["message"].as_str().expect("a message");
        assert!(!message.contains("CANARY"), "{message}");
        assert!(message.contains("at line 1, column "), "{message}");
        assert_eq!(
            error["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
            "{body}"
        );
        assert!(
            error["locations"][0]["column"].as_i64().unwrap() > 0,
            "{body}"
        );
        assert!(!body.to_string().contains("CANARY"), "{body}");
    }
}

#[tokio::test]
async fn with_metrics_addr_metrics_move_to_their_own_listener_and_stop_with_the_server() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let public = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "not on the public port");
    let metrics_addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr.port(), app.addr.port());
    let private = app
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let text = private.text().await.unwrap();
    assert!(text.contains("\nscoreline_ws_connections 0\n"), "{text}");
    // Only metrics there.
    let other = app
        .http
        .get(format!(
            "http://{metrics_addr}/graphql?query=%7B__typename%7D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    app.stop().await;
    let after = reqwest::Client::new()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await;
    assert!(after.is_err(), "the metrics listener stopped: {after:?}");
}

#[tokio::test]
async fn without_metrics_addr_metrics_are_on_the_public_port() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(app.metrics_addr.is_none());
}
