//! `--simulate`: drives the live demo matches with plausible events, every few seconds, through
//! the GraphQL mutations an operator would send, so the whole pipeline shows in GraphiQL.

use std::time::Duration;

use async_graphql::{Request, Variables};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::auth::{Principal, Role};
use crate::graphql::ScorelineSchema;

const LIVE: &str = "query { liveMatches { id sport status clock { elapsedSeconds } } }";
const RECORD: &str =
    "mutation($input: RecordEventInput!) { recordEvent(input: $input) { id version } }";
const CLOCK: &str =
    "mutation($input: UpdateClockInput!) { updateClock(input: $input) { id version } }";

/// A plausible next event for a sport: (type, weight).
fn events_of(sport: &str) -> &'static [(&'static str, u32)] {
    match sport {
        "SOCCER" => &[
            ("GOAL", 6),
            ("YELLOW_CARD", 3),
            ("SUBSTITUTION", 2),
            ("PENALTY_GOAL", 1),
        ],
        "BASKETBALL" => &[("FIELD_GOAL", 6), ("THREE_POINTER", 3), ("FREE_THROW", 3)],
        "BASEBALL" => &[("RUN", 5), ("HOME_RUN", 1)],
        "ICE_HOCKEY" => &[("GOAL", 3), ("PENALTY", 1)],
        "AMERICAN_FOOTBALL" => &[("TOUCHDOWN", 2), ("FIELD_GOAL", 2), ("EXTRA_POINT", 1)],
        _ => &[("NOTE", 1)],
    }
}

pub fn spawn(schema: ScorelineSchema, interval: Duration) -> JoinHandle<()> {
    let operator = Principal {
        subject: "simulator".into(),
        roles: vec![Role::Operator],
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            if let Err(e) = tick(&schema, &operator).await {
                tracing::warn!(error = %e, "simulator step failed");
            }
        }
    })
}

async fn run(
    schema: &ScorelineSchema,
    operator: &Principal,
    query: &str,
    input: Value,
) -> Result<Value, String> {
    let request = Request::new(query)
        .variables(Variables::from_json(json!({ "input": input })))
        .data(operator.clone());
    let response = schema.execute(request).await;
    if let Some(e) = response.errors.first() {
        return Err(e.message.clone());
    }
    response.data.into_json().map_err(|e| e.to_string())
}

async fn tick(schema: &ScorelineSchema, operator: &Principal) -> Result<(), String> {
    let live = schema.execute(Request::new(LIVE)).await;
    let data = live.data.into_json().map_err(|e| e.to_string())?;
    let matches: Vec<Value> = data["liveMatches"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["status"] == "LIVE")
        .collect();
    // Pick before any await: the thread-local RNG is not Send.
    let plan = {
        let mut rng = rand::thread_rng();
        matches.choose(&mut rng).map(|m| {
            let sport = m["sport"].as_str().unwrap_or_default().to_string();
            let event = events_of(&sport)
                .choose_weighted(&mut rng, |(_, w)| *w)
                .map(|(t, _)| *t)
                .unwrap_or("NOTE");
            let side = if rng.gen_bool(0.5) { "HOME" } else { "AWAY" };
            let elapsed =
                m["clock"]["elapsedSeconds"].as_i64().unwrap_or(0) + rng.gen_range(20..90);
            (m["id"].clone(), event, side, elapsed)
        })
    };
    let Some((id, event, side, elapsed)) = plan else {
        return Ok(());
    };
    run(
        schema,
        operator,
        CLOCK,
        json!({"matchId": id, "elapsedSeconds": elapsed}),
    )
    .await?;
    run(
        schema,
        operator,
        RECORD,
        json!({"matchId": id, "type": event, "side": side, "description": "simulated"}),
    )
    .await?;
    Ok(())
}
