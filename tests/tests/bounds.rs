//! Bounds on what one client can make the server read or hold: listing windows and their read
//! budget, instants at the ends of the supported years, and the metrics that report the
//! structures kept per subscription.

use std::collections::HashSet;
use std::time::Duration;

use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS};
use serde_json::{json, Value};

const MATCHES: &str = "query($f: MatchFilter, $first: Int = 20, $after: String) {
    matches(filter: $f, first: $first, after: $after) {
        edges { cursor node { id } }
        pageInfo { hasNextPage endCursor }
    }
}";

const MATCHES_UPDATED: &str =
    "subscription($f: MatchFilter) { matchesUpdated(filter: $f) { id version } }";

#[tokio::test]
async fn a_listing_window_wider_than_400_days_is_refused_naming_the_limit() {
    let app = TestApp::spawn().await;
    let (code, body) = app
        .error(
            MATCHES,
            json!({"f": {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}}),
            None,
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["field"], "to", "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("400 days") && message.contains("MAX_WINDOW_DAYS"),
        "{message}"
    );
    // Exactly 400 days is fine.
    app.ok(
        MATCHES,
        json!({"f": {"from": "2026-01-01T00:00:00Z", "to": "2027-02-05T00:00:00Z"}}),
        None,
    )
    .await;
}

#[tokio::test]
async fn instants_outside_years_1_to_9999_are_refused_and_the_server_stays_healthy() {
    let app = TestApp::spawn().await;
    for filter in [
        json!({"from": "0000-12-31T23:59:59Z"}),
        json!({"to": "9999-12-31T23:59:59-01:00"}),
        json!({"from": "+262143-01-01T00:00:00Z"}),
    ] {
        let (code, body) = app.error(MATCHES, json!({"f": filter}), None).await;
        assert_eq!(code, "BAD_USER_INPUT", "{filter}: {body}");
    }
    // The ends of the supported years themselves list (nothing) without error.
    for filter in [
        json!({"from": "9999-12-31T23:59:59Z"}),
        json!({"to": "0001-01-01T00:00:01Z"}),
        json!({"from": "0001-01-01T00:00:00Z", "to": "0002-02-05T00:00:00Z"}),
        json!({"from": "9998-11-27T00:00:00Z", "to": "9999-12-31T23:59:59.999Z"}),
    ] {
        let ids = every_page(&app, filter.clone()).await;
        assert!(ids.is_empty(), "{filter}: {ids:?}");
    }
    // A match cannot be scheduled past year 9999 either (its start time is a sort key).
    let seed = app.seed("SOCCER").await;
    let (code, body) = app
        .error(
            "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id } }",
            json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                          "awayTeamId": seed.away, "startTime": "9999-12-31T23:30:00-02:00"}}),
            Some(&TestApp::token(api::Role::Admin)),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "startTime",
        "{body}"
    );
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn matches_updated_refuses_a_window_wider_than_400_days() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe(
        "wide",
        MATCHES_UPDATED,
        json!({"f": {"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}}),
    )
    .await;
    assert_eq!(ws.refused_code("wide").await, "BAD_USER_INPUT");
}

/// Every id a filter lists, following `endCursor` (bounded, so a listing that never ends fails).
async fn every_page(app: &TestApp, filter: Value) -> Vec<String> {
    every_page_counted(app, filter).await.0
}

async fn every_page_counted(app: &TestApp, filter: Value) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for pages in 1..=200 {
        let data = app
            .ok(
                MATCHES,
                json!({"f": filter, "first": 10, "after": after}),
                None,
            )
            .await;
        let connection = &data["matches"];
        for edge in connection["edges"].as_array().unwrap() {
            ids.push(edge["node"]["id"].as_str().unwrap().to_string());
        }
        if connection["pageInfo"]["hasNextPage"] != json!(true) {
            return (ids, pages);
        }
        let end = connection["pageInfo"]["endCursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a page with a next page has an endCursor: {data}"))
            .to_string();
        assert_ne!(Some(&end), after.as_ref(), "every page gets further");
        after = Some(end);
    }
    panic!("the listing did not end within 200 pages");
}

#[tokio::test]
async fn a_one_sided_window_far_in_the_past_is_read_a_slice_at_a_time_and_reaches_the_matches() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    // On DynamoDB, 25 years of monthly partitions are more than one page may read: the first
    // pages come back empty with `hasNextPage` and an `endCursor` past the months read. On the
    // memory store one page holds it all. Either way, following `endCursor` reaches the match.
    let (ids, pages) = every_page_counted(
        &app,
        json!({"sport": "SOCCER", "from": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(ids, [seed.match_id.as_str()]);
    if scoreline_tests::dynamodb_local::integration_store_is_dynamodb() {
        assert!(pages > 1, "the read budget split the window into pages");
        assert!(
            app.metric("scoreline_listing_budget_stops_total").await >= 1,
            "budget stops are counted"
        );
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}

#[tokio::test]
async fn a_matches_updated_subscriptions_memory_of_matches_is_reported_and_released() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let other = app.live_match("BASKETBALL").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("all", MATCHES_UPDATED, json!({"f": {"sport": "SOCCER"}}))
        .await;
    // `matchesUpdated` says nothing until a change, and graphql-transport-ws does not
    // acknowledge a subscribe: score until the soccer change arrives, then change the
    // basketball match (not admitted) once more, now that the subscription surely listens.
    let mut goals = 0;
    loop {
        goals += 1;
        assert!(goals <= 50, "matchesUpdated never reported a change");
        let version = app.record(&seed.match_id, "GOAL", "HOME").await;
        if let Ok(msg) = ws.recv_within(Duration::from_millis(200)).await {
            let msg = msg.expect("the connection stays open");
            assert_eq!(
                msg["payload"]["data"]["matchesUpdated"]["id"],
                seed.match_id.as_str()
            );
            let mut seen = msg["payload"]["data"]["matchesUpdated"]["version"]
                .as_i64()
                .unwrap();
            while seen < version {
                seen = ws.next_data("all").await["matchesUpdated"]["version"]
                    .as_i64()
                    .unwrap();
            }
            break;
        }
    }
    app.record(&other.match_id, "FREE_THROW", "HOME").await;
    // Both matches are remembered (the refused one too: its versions must rise as well).
    app.wait_for_metric("scoreline_matches_updated_tracked_matches", 2)
        .await;
    ws.complete("all").await;
    app.wait_for_metric("scoreline_matches_updated_tracked_matches", 0)
        .await;
}

#[tokio::test]
async fn every_bound_has_its_metric_on_the_metrics_endpoint() {
    let app = TestApp::spawn().await;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "scoreline_intake_tracked_matches",
        "scoreline_intake_evictions_total",
        "scoreline_intake_stale_drops_total",
        "scoreline_matches_updated_tracked_matches",
        "scoreline_matches_updated_evictions_total",
        "scoreline_matches_updated_stale_drops_total",
        "scoreline_resyncs_truncated_total",
        "scoreline_idempotency_records",
        "scoreline_idempotency_expired_total",
        "scoreline_change_feed_records",
        "scoreline_change_feed_waits_total",
        "scoreline_change_feed_full_total",
        "scoreline_listing_budget_stops_total",
    ] {
        assert!(text.contains(&format!("\n{name} ")), "{name} in {text}");
    }
}

#[tokio::test]
async fn keyed_mutations_leave_idempotency_records_that_the_memory_store_counts() {
    let app = TestApp::spawn_with(|config| config.store = api::StoreKind::Memory).await;
    let seed = app.live_match("SOCCER").await;
    for key in ["k1", "k2", "k1"] {
        app.operator(
            "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
            json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME",
                          "clientMutationId": key}}),
        )
        .await;
    }
    // The replay of k1 wrote nothing: two records, expiring after IDEMPOTENCY_TTL_HOURS.
    assert_eq!(app.metric("scoreline_idempotency_records").await, 2);
}
