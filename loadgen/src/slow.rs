//! `loadgen slow`: what clients that stop reading cost the server, and whether the memory comes
//! back when they leave.
//!
//! Seeds M matches with E timeline events each, reads the server's baseline RSS, then opens S
//! WebSockets that each subscribe to `matchUpdated` on every match selecting the whole
//! timeline (`events(first: E)`, frames of tens of kilobytes) and never read again. Every match
//! then gets U score updates. The server must keep the sockets' outboxes within their byte
//! bounds (conflating state frames, closing a connection over its bound); loadgen samples the
//! peak RSS meanwhile. Then the sockets are dropped and, after `--settle` seconds, RSS is read
//! again: "retained" is what did not come back.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use crate::rawws::{Incoming, RawWs};
use crate::report::{self, Metrics};
use crate::target::{Admin, Target, TargetArgs};

#[derive(Args, Clone, Debug)]
pub struct SlowArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// WebSockets that subscribe and then never read.
    #[arg(long, default_value_t = 6)]
    pub sockets: usize,
    /// Matches, each subscribed to on every socket (distinct subscriptions per socket).
    #[arg(long, default_value_t = 100)]
    pub matches: usize,
    /// Timeline events per match, all selected by each subscription (1 to 200).
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// Score updates per match while the sockets are not reading.
    #[arg(long, default_value_t = 20)]
    pub updates: usize,
    /// Seconds to wait after the sockets close before reading RSS again.
    #[arg(long, default_value_t = 10)]
    pub settle: u64,
    /// Repeat with a fresh server each time; prints medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Also print one JSON line per run and one for the summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: SlowArgs) -> anyhow::Result<()> {
    if !(1..=200).contains(&args.events) {
        bail!("--events must be between 1 and 200");
    }
    if args.sockets == 0 || args.sockets > 1000 || args.matches == 0 || args.matches > 1000 {
        bail!("--sockets and --matches must be between 1 and 1000");
    }
    let config = json!({
        "sockets": args.sockets, "matches": args.matches, "events": args.events,
        "updates": args.updates, "settle_s": args.settle,
    });
    let mut runs = Vec::new();
    for i in 1..=args.runs.max(1) {
        eprintln!("run {i}/{}: {config}", args.runs.max(1));
        let bound = Duration::from_secs(600 + args.settle);
        let metrics = tokio::time::timeout(bound, run_once(&args))
            .await
            .with_context(|| format!("run {i} did not finish in {}s", bound.as_secs()))??;
        if args.json {
            println!("{}", metrics.to_json("slow", Value::from(i), &config));
        }
        runs.push(metrics);
    }
    println!("{}", report::table(&runs));
    if args.json && runs.len() > 1 {
        println!(
            "{}",
            report::medians(&runs).to_json("slow", Value::from("median"), &config)
        );
    }
    Ok(())
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

async fn run_once(args: &SlowArgs) -> anyhow::Result<Metrics> {
    let mut target = Target::start(&args.target).await?;
    let admin = Admin::new(&target)?;
    let matches = admin.seed(args.matches).await.context("seeding matches")?;
    for (id, _) in &matches {
        for n in 0..args.events {
            admin
                .call(
                    "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
                    json!({"i": {"matchId": id, "type": "YELLOW_CARD", "side": "HOME",
                                 "player": format!("Player number {n} of the home side"),
                                 "description": "a late challenge in midfield, booked at once"}}),
                )
                .await
                .context("recording an event")?;
        }
    }
    let baseline = target.rss_kib();

    let query = format!(
        "subscription($id: ID!) {{ matchUpdated(id: $id) {{ id version score {{ home away }} \
         events(first: {}) {{ id seq type side player description period clockSeconds }} }} }}",
        args.events
    );
    let mut sockets = Vec::with_capacity(args.sockets);
    for _ in 0..args.sockets {
        let mut ws = RawWs::connect(target.authority(), "/graphql", "graphql-transport-ws")
            .await
            .context("opening a WebSocket")?;
        ws.send_text(r#"{"type":"connection_init"}"#).await?;
        match ws.recv().await {
            Incoming::Other(text) if text.contains("connection_ack") => {}
            other => bail!("expected connection_ack, got {other:?}"),
        }
        for (n, (id, _)) in matches.iter().enumerate() {
            let subscribe = json!({"id": n.to_string(), "type": "subscribe",
                                   "payload": {"query": query, "variables": {"id": id}}});
            ws.send_text(&subscribe.to_string()).await?;
        }
        sockets.push(ws);
    }

    // Updates while nobody reads; the peak is sampled between rounds.
    let started = Instant::now();
    let mut peak = target.rss_kib();
    let mut step = 1_000;
    for _ in 0..args.updates {
        for (id, _) in &matches {
            step += 1;
            admin.update_score(id, step).await?;
        }
        peak = peak.max(target.rss_kib());
    }
    // Let fan-out finish queueing the last round, sampling on.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(target.rss_kib());
    }
    let loaded = started.elapsed();
    let metrics = server_metrics(&target.base).await.unwrap_or_default();
    let gauge = |name: &str| -> Option<f64> {
        metrics.lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    };
    let subscriptions = gauge("scoreline_subscriptions");
    let queued = gauge("scoreline_ws_queued_bytes");
    let slow_closes = gauge("scoreline_ws_slow_consumer_closes_total");

    drop(sockets);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = target.rss_kib();
    let healthy = admin.call("{ __typename }", json!({})).await.is_ok();
    target.stop();

    let mut m = Metrics::default();
    m.push(
        "baseline_rss_mib",
        "server RSS, seeded",
        "MiB",
        mib(baseline),
    );
    m.push(
        "peak_rss_mib",
        "server RSS, peak with slow sockets",
        "MiB",
        mib(peak),
    );
    m.push(
        "after_rss_mib",
        "server RSS, after they closed",
        "MiB",
        mib(after),
    );
    m.push(
        "held_per_socket_mib",
        "peak over baseline per socket",
        "MiB",
        match (peak, baseline) {
            (Some(p), Some(b)) => Some(p.saturating_sub(b) as f64 / 1024.0 / args.sockets as f64),
            _ => None,
        },
    );
    m.push(
        "retained_mib",
        "after over baseline (not returned)",
        "MiB",
        match (after, baseline) {
            (Some(a), Some(b)) => Some(a as f64 / 1024.0 - b as f64 / 1024.0),
            _ => None,
        },
    );
    m.push(
        "subscriptions",
        "subscriptions running, before the close",
        "",
        subscriptions,
    );
    m.push(
        "queued_mib",
        "bytes queued in outboxes, before the close",
        "MiB",
        queued.map(|b| b / 1024.0 / 1024.0),
    );
    m.push(
        "slow_consumer_closes",
        "connections closed as slow consumers",
        "",
        slow_closes,
    );
    m.push(
        "load_seconds",
        "updates sent in",
        "s",
        Some(loaded.as_secs_f64()),
    );
    if !healthy {
        m.notes
            .push("the server did not answer a query after the slow sockets closed".into());
    }
    Ok(m)
}

/// The server's Prometheus text.
async fn server_metrics(base: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?)
}
