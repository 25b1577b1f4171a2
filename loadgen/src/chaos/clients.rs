//! The chaos run's clients: writers that record events through any live instance, retrying
//! with the same idempotency key until one answers, and subscribers that follow a match over
//! graphql-transport-ws, resuming on another instance whenever their connection ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// How many violations are kept to print (all are counted).
const KEPT_VIOLATIONS: usize = 20;

/// What every client adds to.
#[derive(Default)]
pub struct Tally {
    /// `next` messages received by subscribers.
    pub deliveries: AtomicU64,
    /// Subscriber connections that ended and were opened again, resuming.
    pub resumes: AtomicU64,
    /// Events recorded (answered).
    pub writes: AtomicU64,
    /// Write attempts that failed and were sent again.
    pub write_retries: AtomicU64,
    pub violation_count: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Tally {
    pub fn violation(&self, what: String) {
        self.violation_count.fetch_add(1, Relaxed);
        let mut kept = self.violations.lock().expect("violations lock");
        if kept.len() < KEPT_VIOLATIONS {
            kept.push(what);
        }
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().expect("violations lock").clone()
    }
}

/// The instances' base URLs; clients pick the next one after a failure.
pub struct Instances {
    pub bases: Vec<String>,
}

impl Instances {
    fn ws_url(&self, i: usize) -> String {
        let base = &self.bases[i % self.bases.len()];
        format!("ws{}/graphql", base.trim_start_matches("http"))
    }

    fn graphql_url(&self, i: usize) -> String {
        format!("{}/graphql", self.bases[i % self.bases.len()])
    }
}

/// Records a `NOTE` event on `match_id` every `interval` until `stop`, each through the next
/// instance; an attempt that fails is sent again (to the next instance) with the same
/// `clientMutationId` until one answers, so every event is recorded exactly once.
pub async fn write(
    instances: Arc<Instances>,
    token: String,
    match_id: String,
    interval: Duration,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut instance = 0usize;
    let mut n = 0u64;
    let mut last_version = 0i64;
    while !stop.load(Relaxed) {
        tick.tick().await;
        n += 1;
        let body = json!({
            "query": "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
            "variables": {"i": {
                "matchId": match_id, "type": "NOTE", "description": format!("chaos {n}"),
                "clientMutationId": format!("chaos-{match_id}-{n}"),
            }},
        });
        let started = tokio::time::Instant::now();
        let version = loop {
            instance += 1;
            let answer = http
                .post(instances.graphql_url(instance))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let data: Option<Value> = match answer {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if let Some(v) = data
                .as_ref()
                .and_then(|d| d["data"]["recordEvent"]["version"].as_i64())
            {
                break v;
            }
            tally.write_retries.fetch_add(1, Relaxed);
            if started.elapsed() > Duration::from_secs(120) {
                bail!("recording event {n} on {match_id} failed for 120 s; last answer: {data:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if version <= last_version {
            tally.violation(format!(
                "{match_id}: event {n} answered version {version} after {last_version}"
            ));
        }
        last_version = version;
        tally.writes.fetch_add(1, Relaxed);
    }
    Ok(())
}

/// What one subscriber has seen of its match.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    /// The last `matchEvents` seq (the timeline so far is 1..=seq, checked as it arrives).
    pub seq: i64,
    /// The last `matchUpdated` version.
    pub version: i64,
}

/// One subscriber: `matchEvents` from the start of the timeline and `matchUpdated`, on
/// instance `first` and then on whichever instance answers, resumed with `afterSeq` and
/// `sinceVersion` after every disconnection. Each seq must be the one after the last (no gap,
/// no repeat, in order), each version greater than the last. Runs until `stop`.
pub async fn subscribe(
    instances: Arc<Instances>,
    first: usize,
    match_id: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut instance = first;
    while !stop.load(Relaxed) {
        let at = *seen.lock().expect("seen lock");
        let result = follow(&instances, instance, &match_id, at, &seen, &stop, &tally).await;
        if stop.load(Relaxed) {
            return;
        }
        // Errors are expected during faults (refused connections, resets, an operation the
        // server ended): the subscriber resumes on the next instance.
        drop(result);
        tally.resumes.fetch_add(1, Relaxed);
        instance += 1;
        tokio::time::sleep(Duration::from_millis(100 + rand::random::<u64>() % 200)).await;
    }
}

async fn follow(
    instances: &Instances,
    instance: usize,
    match_id: &str,
    at: Seen,
    seen: &Mutex<Seen>,
    stop: &AtomicBool,
    tally: &Tally,
) -> anyhow::Result<()> {
    let mut request = instances.ws_url(instance).into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let connect = tokio_tungstenite::connect_async(request);
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .context("connecting")??;
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {}})
            .to_string()
            .into(),
    ))
    .await?;
    let subscriptions = [
        json!({"id": "e", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!, $s: Int) { matchEvents(matchId: $id, afterSeq: $s) { seq } }",
            "variables": {"id": match_id, "s": at.seq},
        }}),
        json!({"id": "s", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!, $v: Int) { matchUpdated(id: $id, sinceVersion: $v) { version } }",
            "variables": {"id": match_id, "v": at.version},
        }}),
    ];
    let mut acknowledged = false;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if stop.load(Relaxed) {
                    return Ok(());
                }
                continue;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => bail!("closed"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        };
        let value: Value = serde_json::from_str(&text)?;
        match value["type"].as_str() {
            Some("connection_ack") if !acknowledged => {
                acknowledged = true;
                for s in &subscriptions {
                    ws.send(Message::Text(s.to_string().into())).await?;
                }
            }
            Some("ping") => {
                ws.send(Message::Text(json!({"type": "pong"}).to_string().into()))
                    .await?;
            }
            Some("pong") => {}
            Some("next") => {
                tally.deliveries.fetch_add(1, Relaxed);
                let data = &value["payload"]["data"];
                let mut seen = seen.lock().expect("seen lock");
                match value["id"].as_str() {
                    Some("e") => match data["matchEvents"]["seq"].as_i64() {
                        Some(seq) if seq == seen.seq + 1 => seen.seq = seq,
                        Some(seq) => tally.violation(format!(
                            "{match_id}: matchEvents seq {seq} after {} (on {})",
                            seen.seq,
                            instances.bases[instance % instances.bases.len()]
                        )),
                        None => tally.violation(format!("{match_id}: matchEvents {value}")),
                    },
                    Some("s") => match data["matchUpdated"]["version"].as_i64() {
                        Some(version) if version > seen.version => seen.version = version,
                        Some(version) => tally.violation(format!(
                            "{match_id}: matchUpdated version {version} after {} (on {})",
                            seen.version,
                            instances.bases[instance % instances.bases.len()]
                        )),
                        None => tally.violation(format!("{match_id}: matchUpdated {value}")),
                    },
                    _ => tally.violation(format!("{match_id}: unexpected {value}")),
                }
            }
            // The server ended an operation: only a fault makes it do so, and the client
            // resumes as it would after a dropped connection.
            Some("error") | Some("complete") => bail!("operation ended: {value}"),
            _ => tally.violation(format!("{match_id}: unexpected message {value}")),
        }
    }
}
