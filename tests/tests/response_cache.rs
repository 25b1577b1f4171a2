//! The response cache (`RESPONSE_CACHE_BYTES`, on by default) and HTTP caching of GET queries:
//! a repeated query is answered from memory until a change of what it read, heard from a
//! mutation answered here or from the change stream; GET answers carry an `ETag` and
//! `Cache-Control`, and `If-None-Match` gets 304.

use scoreline_tests::cluster::publish_directly;
use scoreline_tests::{TestApp, WAIT};
use serde_json::{json, Value};

const MATCH: &str = "query($id: ID!) { match(id: $id) { id version score { home away } } }";
const HITS: &str = "scoreline_response_cache_hits_total";

async fn version(app: &TestApp, id: &str) -> i64 {
    app.ok(MATCH, json!({"id": id}), None).await["match"]["version"]
        .as_i64()
        .unwrap()
}

async fn get(
    app: &TestApp,
    query: &str,
    variables: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.get(app.url("/graphql")).query(&[
        ("query", query.to_string()),
        ("variables", variables.to_string()),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the server answers")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_repeat_is_served_from_the_cache_and_a_mutation_answered_here_is_read_back_at_once() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    app.until_cached(MATCH, json!({"id": seed.match_id})).await;
    let before = version(&app, &seed.match_id).await;
    // No pause: the next read must see the write, though the pipeline has not delivered it.
    let after = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(after, before + 1);
    assert_eq!(version(&app, &seed.match_id).await, after);
}

#[tokio::test]
async fn a_change_heard_from_the_stream_ends_the_entries_that_read_its_match_only() {
    let app =
        TestApp::spawn_with(|c| c.publish_secret = Some(scoreline_tests::PUBLISH_SECRET.into()))
            .await;
    let seed = app.live_match("SOCCER").await;
    let other = app.live_match("BASKETBALL").await;
    app.until_cached(MATCH, json!({"id": seed.match_id})).await;
    app.until_cached(MATCH, json!({"id": other.match_id})).await;

    // A change that no mutation of this instance made: as the stream-handler would publish it.
    let mut changed = app.stored_match(&seed.match_id).await;
    changed.version += 10;
    changed.updated_at = chrono::Utc::now();
    assert_eq!(
        publish_directly(&app, scoreline_core::Change::Match(Box::new(changed))).await,
        204
    );
    let misses = "scoreline_response_cache_misses_total";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let before = app.metric(misses).await;
        version(&app, &seed.match_id).await;
        if app.metric(misses).await > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the change never ended the entry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The other match's entry is still there.
    let hits = app.metric(HITS).await;
    version(&app, &other.match_id).await;
    assert_eq!(app.metric(HITS).await, hits + 1);
}

#[tokio::test]
async fn listings_end_with_any_change_of_a_match() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let live = "{ liveMatches { id version } }";
    app.until_cached(live, json!({})).await;
    let after = app.record(&seed.match_id, "GOAL", "AWAY").await;
    let data = app.ok(live, json!({}), None).await;
    let listed = data["liveMatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == seed.match_id.as_str())
        .expect("the live match is listed")["version"]
        .as_i64();
    assert_eq!(listed, Some(after));
}

#[tokio::test]
async fn a_team_created_after_a_miss_is_found_and_errors_are_never_cached() {
    let app = TestApp::spawn().await;
    let team = "query($id: ID!) { team(id: $id) { id name } }";
    let id = "team-created-later";
    for _ in 0..2 {
        assert_eq!(
            app.ok(team, json!({"id": id}), None).await["team"],
            Value::Null
        );
    }
    let seed = app.seed("SOCCER").await;
    app.admin(
        "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id } }",
        json!({"i": {"id": id, "name": "Created Later", "shortName": "CRL", "sport": "SOCCER",
                     "competitionIds": [seed.competition]}}),
    )
    .await;
    assert_eq!(
        app.ok(team, json!({"id": id}), None).await["team"]["name"],
        "Created Later"
    );

    let hits = app.metric(HITS).await;
    for _ in 0..2 {
        let (_, body) = app
            .post(MATCH, json!({"id": "not a valid id!"}), None)
            .await;
        assert!(body["errors"].is_array(), "{body}");
    }
    assert_eq!(app.metric(HITS).await, hits, "errors always execute");
}

#[tokio::test]
async fn signed_in_callers_share_the_answers_of_anonymous_ones() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let admin = TestApp::token(api::Role::Admin);
    // On DynamoDB the seeding's changes arrive through the stream a little later and may end
    // the entry between two requests: repeat until a signed-in request follows a cached one
    // with nothing in between.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        app.until_cached(MATCH, json!({"id": seed.match_id})).await;
        let hits = app.metric(HITS).await;
        let (status, body) = app
            .post(MATCH, json!({"id": seed.match_id}), Some(&admin))
            .await;
        assert_eq!(status, 200, "{body}");
        if app.metric(HITS).await > hits {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a signed-in request is never answered from the cache"
        );
    }
}

#[tokio::test]
async fn get_queries_carry_an_etag_and_if_none_match_gets_304() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let vars = json!({"id": seed.match_id});
    let first = get(&app, MATCH, vars.clone(), &[]).await;
    assert_eq!(first.status(), 200);
    let etag = header(&first, "etag").expect("an ETag");
    assert_eq!(
        header(&first, "cache-control").as_deref(),
        Some("public, max-age=1")
    );
    assert!(header(&first, "vary")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains("accept"));
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["data"]["match"]["id"], seed.match_id.as_str());

    let again = get(&app, MATCH, vars.clone(), &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag").as_deref(), Some(etag.as_str()));
    assert!(again.bytes().await.unwrap().is_empty());
    // A weak form of the same tag, in a list, matches too.
    let listed = format!("\"nope\", W/{etag}");
    assert_eq!(
        get(&app, MATCH, vars.clone(), &[("if-none-match", &listed)])
            .await
            .status(),
        304
    );

    // After a change the tag is another, and the old one gets the new body.
    app.record(&seed.match_id, "GOAL", "HOME").await;
    let changed = get(&app, MATCH, vars.clone(), &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag").as_deref(), Some(etag.as_str()));

    // Signed in: revalidated, never kept by shared caches. Errors: not kept at all.
    let admin = format!("Bearer {}", TestApp::token(api::Role::Admin));
    let private = get(&app, MATCH, vars, &[("authorization", &admin)]).await;
    let cache_control = header(&private, "cache-control");
    let status = private.status();
    assert_eq!(
        cache_control.as_deref(),
        Some("private, no-cache"),
        "{status}: {}",
        private.text().await.unwrap_or_default()
    );
    let error = get(&app, MATCH, json!({"id": "not a valid id!"}), &[]).await;
    assert_eq!(header(&error, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&error, "etag"), None);
}

#[tokio::test]
async fn the_max_age_is_configurable_and_the_cache_can_be_turned_off() {
    let app = TestApp::spawn_with(|c| {
        c.http_cache_max_age_secs = 0;
        c.response_cache_bytes = 0;
    })
    .await;
    let seed = app.live_match("SOCCER").await;
    let response = get(&app, MATCH, json!({"id": seed.match_id}), &[]).await;
    assert_eq!(
        header(&response, "cache-control").as_deref(),
        Some("public, no-cache")
    );
    assert!(
        header(&response, "etag").is_some(),
        "the ETag does not need the cache"
    );
    for _ in 0..3 {
        version(&app, &seed.match_id).await;
    }
    assert_eq!(app.metric(HITS).await, 0);
}
