//! `--simulate`: drives the live demo matches with plausible events, every few seconds, through
//! the GraphQL mutations an operator would send, so the whole pipeline shows in GraphiQL. Ice
//! hockey and American football matches get their details moved along with each event.

use std::time::Duration;

use async_graphql::{Request, Variables};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::auth::{Principal, Role};
use crate::graphql::ScorelineSchema;

const LIVE: &str = "query { liveMatches { id sport status clock { elapsedSeconds } \
    details { ... on IceHockeyDetails { homeShotsOnGoal awayShotsOnGoal homePenaltyMinutes \
    awayPenaltyMinutes powerPlay { side secondsLeft } } \
    ... on AmericanFootballDetails { possession down yardsToGo ballOn } } } }";
const RECORD: &str =
    "mutation($input: RecordEventInput!) { recordEvent(input: $input) { id version } }";
const CLOCK: &str =
    "mutation($input: UpdateClockInput!) { updateClock(input: $input) { id version } }";
const DETAILS: &str =
    "mutation($input: UpdateDetailsInput!) { updateDetails(input: $input) { id version } }";

/// A hockey power play after a penalty: a two-minute minor.
const MINOR_PENALTY_SECONDS: i64 = 120;

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
            let random_side = if rng.gen_bool(0.5) { "HOME" } else { "AWAY" };
            // In American football the side with the ball is the one that scores.
            let side = match m["details"]["possession"].as_str() {
                Some("HOME") if sport == "AMERICAN_FOOTBALL" => "HOME",
                Some("AWAY") if sport == "AMERICAN_FOOTBALL" => "AWAY",
                _ => random_side,
            };
            let passed = rng.gen_range(20..90);
            let elapsed = m["clock"]["elapsedSeconds"].as_i64().unwrap_or(0) + passed;
            let play = Play {
                event,
                side,
                seconds_passed: passed,
                extra_shots: rng.gen_range(0..3),
            };
            let details = match sport.as_str() {
                "ICE_HOCKEY" => Some(("iceHockey", next_ice_hockey(&m["details"], &play))),
                "AMERICAN_FOOTBALL" => Some(("americanFootball", next_american_football(&play))),
                _ => None,
            }
            // updateDetails refuses a change that changes nothing (e.g. counts at their bound).
            .filter(|(_, next)| changes(&m["details"], next))
            .map(|(sport, next)| json!({ sport: next }));
            (m["id"].clone(), play, elapsed, details)
        })
    };
    let Some((id, Play { event, side, .. }, elapsed, details)) = plan else {
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
    if let Some(Value::Object(mut input)) = details {
        input.insert("matchId".into(), id);
        run(schema, operator, DETAILS, Value::Object(input)).await?;
    }
    Ok(())
}

/// Whether a details input would change the current details.
fn changes(current: &Value, next: &Value) -> bool {
    next.as_object()
        .is_some_and(|fields| fields.iter().any(|(k, v)| current[k] != *v))
}

/// One simulated step of a match: the event, its side, and what the dice said.
struct Play {
    event: &'static str,
    side: &'static str,
    seconds_passed: i64,
    /// Shots on goal the side took besides a goal.
    extra_shots: i64,
}

fn other(side: &str) -> &'static str {
    if side == "HOME" {
        "AWAY"
    } else {
        "HOME"
    }
}

fn prefix(side: &str) -> &'static str {
    if side == "HOME" {
        "home"
    } else {
        "away"
    }
}

/// The `IceHockeyDetailsInput` after a play, from the current `IceHockeyDetails` (null or
/// missing fields count as zero). A goal is a shot; a PENALTY costs its side two minutes and
/// gives the other side a power play; a power play runs down with the clock and ends when it
/// runs out or its side scores.
fn next_ice_hockey(current: &Value, play: &Play) -> Value {
    let count = |field: &str| current[field].as_i64().unwrap_or(0);
    let side = prefix(play.side);
    let goal = matches!(play.event, "GOAL" | "PENALTY_GOAL");
    let mut next = json!({
        "homeShotsOnGoal": count("homeShotsOnGoal"),
        "awayShotsOnGoal": count("awayShotsOnGoal"),
    });
    let shots = format!("{side}ShotsOnGoal");
    next[&shots] = json!((count(&shots) + play.extra_shots + i64::from(goal)).min(150));
    let mut power_play = match &current["powerPlay"] {
        Value::Object(pp) => {
            let left = pp["secondsLeft"].as_i64().unwrap_or(0) - play.seconds_passed;
            let scored_on_it = goal && pp["side"] == play.side;
            (left > 0 && !scored_on_it).then(|| json!({"side": pp["side"], "secondsLeft": left}))
        }
        _ => None,
    };
    if play.event == "PENALTY" {
        let minutes = format!("{side}PenaltyMinutes");
        next[&minutes] = json!((count(&minutes) + 2).min(500));
        power_play = Some(json!({"side": other(play.side), "secondsLeft": MINOR_PENALTY_SECONDS}));
    }
    next["powerPlay"] = power_play.unwrap_or(Value::Null);
    next
}

/// The `AmericanFootballDetailsInput` after a play: every simulated play scores, so the other
/// side gets the ball, first and ten at its own 25 (a touchback).
fn next_american_football(play: &Play) -> Value {
    json!({
        "possession": other(play.side),
        "down": 1,
        "yardsToGo": 10,
        "ballOn": 25,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(event: &'static str, side: &'static str) -> Play {
        Play {
            event,
            side,
            seconds_passed: 30,
            extra_shots: 0,
        }
    }

    #[test]
    fn a_hockey_penalty_gives_the_other_side_a_power_play() {
        let next = next_ice_hockey(&Value::Null, &play("PENALTY", "HOME"));
        assert_eq!(
            next,
            json!({"homeShotsOnGoal": 0, "awayShotsOnGoal": 0, "homePenaltyMinutes": 2,
                   "powerPlay": {"side": "AWAY", "secondsLeft": 120}})
        );
    }

    #[test]
    fn a_hockey_power_play_runs_down_and_ends_on_a_goal_by_its_side() {
        let current = json!({"homeShotsOnGoal": 4, "awayShotsOnGoal": 2,
                             "powerPlay": {"side": "AWAY", "secondsLeft": 100}});
        let mut shot = play("GOAL", "HOME");
        shot.extra_shots = 2;
        let next = next_ice_hockey(&current, &shot);
        assert_eq!(next["homeShotsOnGoal"], 7);
        assert_eq!(
            next["powerPlay"],
            json!({"side": "AWAY", "secondsLeft": 70})
        );
        let next = next_ice_hockey(&current, &play("GOAL", "AWAY"));
        assert_eq!(next["awayShotsOnGoal"], 3);
        assert_eq!(next["powerPlay"], Value::Null);
        let mut late = play("PENALTY_GOAL", "HOME");
        late.seconds_passed = 100;
        assert_eq!(next_ice_hockey(&current, &late)["powerPlay"], Value::Null);
    }

    #[test]
    fn a_details_input_equal_to_the_current_details_changes_nothing() {
        let current = json!({"possession": "HOME", "down": 1, "yardsToGo": 10, "ballOn": 25});
        let same = next_american_football(&play("TOUCHDOWN", "AWAY"));
        assert!(!changes(&current, &same));
        assert!(changes(
            &current,
            &next_american_football(&play("TOUCHDOWN", "HOME"))
        ));
        assert!(changes(&Value::Null, &same));
    }

    #[test]
    fn after_a_football_score_the_other_side_starts_at_its_25() {
        assert_eq!(
            next_american_football(&play("TOUCHDOWN", "AWAY")),
            json!({"possession": "HOME", "down": 1, "yardsToGo": 10, "ballOn": 25})
        );
    }
}
