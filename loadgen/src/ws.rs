//! `loadgen ws`: N WebSocket subscribers on M live matches, K score updates at R per second,
//! and what each subscriber received, when.
//!
//! A run: start the server (or use `--url`), seed M LIVE matches, read the server's baseline
//! RSS, connect and subscribe N sockets (at most `--connect-concurrency` handshakes in flight so
//! the listen backlog is never overrun), pass the readiness barrier, read RSS again, then send
//! the updates on schedule and wait until every ready subscriber has every version (or the
//! drain timeout). CPU times of the server and of this process cover the update window only.
//!
//! The readiness barrier exists because graphql-transport-ws never acknowledges a `subscribe`:
//! a subscriber is known to be live only once it has received a frame. Barrier updates go to
//! every match until every subscriber has received one (or `--barrier-timeout`); those
//! versions are not measured.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::procfs;
use crate::rawsse::RawSse;
use crate::rawws::{Incoming, RawWs};
use crate::report::{self, Metrics};
use crate::stats::{account, Sequence};
use crate::target::{Admin, Target, TargetArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    Transport,
    /// `graphql-ws` (legacy subscriptions-transport-ws).
    Legacy,
    /// graphql-sse, distinct connections mode: one `POST` with `Accept: text/event-stream`
    /// per subscriber, on its own connection (`--client` does not apply).
    Sse,
}

impl Protocol {
    fn subprotocol(self) -> &'static str {
        match self {
            Protocol::Transport => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
            Protocol::Sse => "",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// `rawws`: the upgrade and framing by hand, data frames never copied.
    Raw,
    /// tokio-tungstenite with 4 KiB buffers.
    Tungstenite,
}

/// The change each update makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Update {
    /// `updateScore`: the score changes and the match's timeline gains an event, so the
    /// stored data grows with every update.
    Score,
    /// `updateClock`: the clock reading changes and nothing is appended, so the stored data
    /// stays the same size however long the run (for soaks on the memory store, whose data
    /// is the server's own memory).
    Clock,
}

#[derive(Args, Clone, Debug)]
pub struct WsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// WebSocket connections, one subscription each, spread round-robin over the matches.
    /// Several comma-separated counts make a sweep (each with every `--rate`), e.g. to see
    /// the server's CPU per update as subscribers grow.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub subscribers: Vec<usize>,
    /// Live matches.
    #[arg(long, default_value_t = 1)]
    pub matches: usize,
    /// Measured updates, in total across matches.
    #[arg(long, default_value_t = 60)]
    pub updates: usize,
    /// Updates per second, in total across matches. Several comma-separated rates make a
    /// sweep: each rate is measured `--runs` times, then a table of the medians per rate shows
    /// the highest rate with no loss and a delivery p99 within `--p99-budget-ms`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub rate: Vec<f64>,
    /// Measure for this many seconds at each rate instead of a fixed `--updates` count
    /// (updates = rate × seconds).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// The delivery latency p99 a sweep step must stay within to pass.
    #[arg(long, default_value_t = 250.0)]
    pub p99_budget_ms: f64,
    #[arg(long, value_enum, default_value = "transport")]
    pub protocol: Protocol,
    /// The subscribers' WebSocket client: `raw` reads frames in place (cheapest, so more of
    /// the machine is left to the server), `tungstenite` is the stock client.
    #[arg(long, value_enum, default_value = "raw")]
    pub client: Client,
    /// Give each connection's subscription its own id (by default every connection uses "1",
    /// as real clients do).
    #[arg(long)]
    pub unique_ids: bool,
    /// Connect, subscribe and pass the barrier, then only measure memory: no update load.
    #[arg(long)]
    pub idle: bool,
    /// Repeat the whole measurement, each time with a fresh server; prints medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds to wait for every subscriber to receive a barrier update.
    #[arg(long, default_value_t = 60)]
    pub barrier_timeout: u64,
    /// Seconds after the last update to wait for deliveries still under way.
    #[arg(long, default_value_t = 10)]
    pub drain_timeout: u64,
    /// Upper bound on one run, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Also print one JSON line per run and one for the summary.
    #[arg(long)]
    pub json: bool,
    /// Sample the server's RSS every this many seconds while updates go on, printing each
    /// sample; reports the growth from `--rss-growth-from` to the end (a soak: e.g.
    /// `--seconds 1800 --rss-every 30`).
    #[arg(long)]
    pub rss_every: Option<u64>,
    /// Seconds into the updates from which RSS growth is reported (warm-up before it).
    #[arg(long, default_value_t = 300)]
    pub rss_growth_from: u64,
    /// What each update changes.
    #[arg(long, value_enum, default_value = "score")]
    pub update: Update,
}

/// The subscription every connection runs: one match's changes, a frame of ~120 bytes.
const SUBSCRIPTION: &str =
    "subscription($id: ID!) { matchUpdated(id: $id) { id version score { home away } } }";

/// Each process may hold at most 20,000 descriptors (a hard limit here); leave room for the
/// runtime, the HTTP client and the server's pipes.
const MAX_SOCKETS_PER_PROCESS: usize = 19_000;

pub async fn run(args: WsArgs) -> anyhow::Result<()> {
    if args.subscribers.is_empty() || args.subscribers.contains(&0) || args.matches == 0 {
        bail!("--subscribers and --matches must be at least 1");
    }
    let limit = procfs::open_files_limit() as usize;
    let room = MAX_SOCKETS_PER_PROCESS.min(limit.saturating_sub(1_000));
    if let Some(n) = args.subscribers.iter().find(|n| **n > room) {
        bail!(
            "--subscribers {n} does not fit in one process: the open file limit is {limit} \
             (a hard limit on these machines) and one server holds every connection too; \
             use at most {room}"
        );
    }
    let rates_ok = !args.rate.is_empty() && args.rate.iter().all(|r| *r > 0.0 && r.is_finite());
    if !args.idle && !rates_ok {
        bail!("--rate must be one or more positive numbers");
    }
    let rates: Vec<f64> = if args.idle {
        vec![args.rate.first().copied().unwrap_or(1.0)]
    } else {
        args.rate.clone()
    };
    let mut steps = Vec::new();
    let plan: Vec<(usize, f64)> = args
        .subscribers
        .iter()
        .flat_map(|n| rates.iter().map(move |r| (*n, *r)))
        .collect();
    for &(subscribers, rate) in &plan {
        let updates = match args.seconds {
            Some(s) => (rate * s).ceil().max(1.0) as usize,
            None => args.updates,
        };
        let config = json!({
            "subscribers": subscribers, "matches": args.matches, "updates": updates,
            "rate": rate, "protocol": args.protocol.subprotocol(), "idle": args.idle,
            "unique_ids": args.unique_ids, "client": format!("{:?}", args.client).to_lowercase(),
        });
        let runs_n = args.runs.max(1);
        let mut runs = Vec::new();
        for i in 1..=runs_n {
            eprintln!("run {i}/{runs_n}: {config}");
            let metrics = tokio::time::timeout(
                Duration::from_secs(args.timeout),
                run_once(&args, subscribers, rate, updates),
            )
            .await
            .with_context(|| format!("run {i} took longer than --timeout {}s", args.timeout))??;
            if args.json {
                println!("{}", metrics.to_json("ws", Value::from(i), &config));
            }
            runs.push(metrics);
        }
        if plan.len() > 1 {
            println!("{subscribers} subscribers, {rate} updates/s:");
        }
        println!("{}", report::table(&runs));
        let summary = report::medians(&runs);
        if args.json && runs.len() > 1 {
            println!("{}", summary.to_json("ws", Value::from("median"), &config));
        }
        steps.push((Step { subscribers, rate }, summary));
    }
    if steps.len() > 1 {
        println!("{}", sweep_table(&steps, args.p99_budget_ms));
        if args.json {
            println!("{}", sweep_json(&steps, args.p99_budget_ms));
        }
    }
    Ok(())
}

/// Whether a sweep step delivered everything, in order, once, within the latency budget.
fn passes(m: &Metrics, p99_budget_ms: f64) -> bool {
    let zero = |k: &str| m.get(k) == Some(0.0);
    zero("missing")
        && zero("duplicate")
        && zero("out_of_order")
        && zero("never_ready")
        && zero("update_errors")
        && m.get("latency_p99_ms").is_some_and(|p| p <= p99_budget_ms)
}

/// The sweep as one JSON line: every step's medians with its verdict.
fn sweep_json(steps: &[(Step, Metrics)], p99_budget_ms: f64) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|(s, m)| {
            let mut v = m.to_json("ws", Value::from("median"), &Value::Null);
            v["subscribers"] = Value::from(s.subscribers);
            v["rate"] = Value::from(s.rate);
            v["pass"] = Value::from(passes(m, p99_budget_ms));
            v
        })
        .collect();
    json!({"bench": "ws-sweep", "p99_budget_ms": p99_budget_ms, "steps": steps})
}

/// One point of a sweep.
#[derive(Clone, Copy, Debug)]
struct Step {
    subscribers: usize,
    rate: f64,
}

/// The medians per step side by side, and the verdict: the passing step that delivered the
/// most messages per second, and who used the CPU at the first step that failed.
fn sweep_table(steps: &[(Step, Metrics)], p99_budget_ms: f64) -> String {
    const KEYS: [&str; 15] = [
        "delivered_per_s",
        "missing",
        "duplicate",
        "out_of_order",
        "latency_p50_ms",
        "latency_p99_ms",
        "fanout_p99_ms",
        "server_cpu_us_per_msg",
        "server_cpu_ms_per_update",
        "loadgen_cpu_us_per_msg",
        "server_cores",
        "loadgen_cores",
        "other_cpu_cores",
        "never_ready",
        "update_errors",
    ];
    let columns: Vec<String> = steps
        .iter()
        .map(|(s, _)| format!("{}×{}/s", s.subscribers, s.rate))
        .collect();
    let rows: Vec<Metrics> = steps
        .iter()
        .map(|(_, m)| {
            let mut out = Metrics::default();
            for key in KEYS {
                if let Some(item) = m.items.iter().find(|i| i.key == key) {
                    out.items.push(item.clone());
                }
            }
            out.push(
                "pass",
                "passes (1 = yes)",
                "",
                if passes(m, p99_budget_ms) { 1.0 } else { 0.0 },
            );
            out
        })
        .collect();
    let mut out = format!(
        "sweep (subscribers × updates/s, medians; pass = no loss and p99 <= {p99_budget_ms} ms):\n"
    );
    out.push_str(&report::columns_table(&columns, &rows, false));
    let delivered = |m: &Metrics| m.get("delivered_per_s").unwrap_or(0.0);
    let best = steps
        .iter()
        .filter(|(_, m)| passes(m, p99_budget_ms))
        .max_by(|a, b| delivered(&a.1).total_cmp(&delivered(&b.1)));
    match best {
        Some((s, m)) => out.push_str(&format!(
            "highest passing delivery: {:.0} messages/s ({} subscribers at {} updates/s)\n",
            delivered(m),
            s.subscribers,
            s.rate
        )),
        None => out.push_str("no step passed\n"),
    }
    if let Some((s, m)) = steps.iter().find(|(_, m)| !passes(m, p99_budget_ms)) {
        let c = |k| m.get(k).map_or("-".to_string(), |v| format!("{v:.2}"));
        out.push_str(&format!(
            "first failing step ({} subscribers at {}/s): server {} cores, loadgen {} cores, \
             other processes {} cores\n",
            s.subscribers,
            s.rate,
            c("server_cores"),
            c("loadgen_cores"),
            c("other_cpu_cores"),
        ));
    }
    out
}

/// What every subscriber task shares; counters only, so the hot path takes no lock but its own.
struct Shared {
    /// Receipt times are nanoseconds since this instant.
    epoch: Instant,
    subscribed: AtomicUsize,
    failed: AtomicUsize,
    ready: AtomicUsize,
    /// Receipts of measured versions (first or not), to know when the drain is done.
    measured: AtomicU64,
    /// Per match: versions above this are measured (u32::MAX until measurement starts).
    threshold: Vec<AtomicU32>,
    /// Protocol `error`/`complete` messages and closes by the server.
    protocol_errors: AtomicUsize,
    closed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn note_error(&self, e: String) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(e);
        }
    }
}

/// What one subscriber received: (version, receipt ns), in arrival order.
#[derive(Default)]
struct Log {
    ready: std::sync::atomic::AtomicBool,
    receipts: Mutex<Vec<(u32, u64)>>,
}

type Ws = WebSocketStream<TcpStream>;

/// One measured update: (match index, the version it made, sent ns, answered ns).
type UpdateSent = (usize, u32, u64, u64);

async fn run_once(
    args: &WsArgs,
    subscribers: usize,
    rate: f64,
    updates: usize,
) -> anyhow::Result<Metrics> {
    let mut target = Target::start(&args.target).await?;
    let admin = Admin::new(&target)?;
    let seeded = admin.seed(args.matches).await.context("seeding matches")?;
    let match_ids: Vec<String> = seeded.iter().map(|(id, _)| id.clone()).collect();
    let mut versions: Vec<u32> = seeded.iter().map(|(_, v)| *v).collect();
    let mut steps: Vec<u64> = vec![0; args.matches];

    // Let the freshly started server settle before its baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_baseline = target.rss_kib();

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        subscribed: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        measured: AtomicU64::new(0),
        threshold: (0..args.matches)
            .map(|_| AtomicU32::new(u32::MAX))
            .collect(),
        protocol_errors: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
        first_error: Mutex::new(None),
    });
    let logs: Vec<Arc<Log>> = (0..subscribers).map(|_| Arc::new(Log::default())).collect();
    let sem = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let ws_url = target.ws_url();
    let authority = target.authority().to_string();
    // Dropping the set aborts every subscriber, however the run ends.
    let mut tasks = JoinSet::new();
    let connect_started = Instant::now();
    for (i, log) in logs.iter().enumerate() {
        let m = i % args.matches;
        let sub = Subscriber {
            url: ws_url.clone(),
            authority: authority.clone(),
            protocol: args.protocol,
            client: args.client,
            id: if args.unique_ids {
                format!("s{i}")
            } else {
                "1".into()
            },
            match_id: match_ids[m].clone(),
            match_index: m,
        };
        tasks.spawn(sub.run(shared.clone(), log.clone(), sem.clone()));
    }
    while shared.subscribed.load(Relaxed) + shared.failed.load(Relaxed) < subscribers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let subscribed = shared.subscribed.load(Relaxed);

    // The readiness barrier.
    let barrier_started = Instant::now();
    let barrier_deadline = barrier_started + Duration::from_secs(args.barrier_timeout);
    let mut barrier_updates = 0u64;
    while shared.ready.load(Relaxed) < subscribed && Instant::now() < barrier_deadline {
        for m in 0..args.matches {
            versions[m] = admin.update(args.update, &match_ids[m], steps[m]).await?;
            steps[m] += 1;
            barrier_updates += 1;
        }
        let wait_until = Instant::now() + Duration::from_millis(500);
        while shared.ready.load(Relaxed) < subscribed && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let barrier_secs = barrier_started.elapsed().as_secs_f64();
    let ready = shared.ready.load(Relaxed);
    let ready_per_match: Vec<usize> = (0..args.matches)
        .map(|m| {
            logs.iter()
                .enumerate()
                .filter(|(i, l)| i % args.matches == m && l.ready.load(Relaxed))
                .count()
        })
        .collect();
    // Barrier frames still in flight must not count as memory held per connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_subscribed = target.rss_kib();

    let mut metrics = Metrics::default();
    metrics.push(
        "subscribers",
        "subscribers subscribed",
        "",
        subscribed as f64,
    );
    metrics.push(
        "connect_failures",
        "connect failures",
        "",
        shared.failed.load(Relaxed) as f64,
    );
    metrics.push(
        "never_ready",
        "never ready (barrier)",
        "",
        subscribed.saturating_sub(ready) as f64,
    );
    metrics.push("connect_s", "connect + subscribe all", "s", connect_secs);
    metrics.push("barrier_s", "barrier", "s", barrier_secs);
    metrics.push(
        "barrier_updates",
        "barrier updates",
        "",
        barrier_updates as f64,
    );
    metrics.push(
        "rss_baseline_mib",
        "server RSS before connections",
        "MiB",
        rss_baseline.map(|k| k as f64 / 1024.0),
    );
    metrics.push(
        "rss_subscribed_mib",
        "server RSS subscribed",
        "MiB",
        rss_subscribed.map(|k| k as f64 / 1024.0),
    );
    metrics.push(
        "rss_per_conn_kib",
        "server RSS per connection",
        "KiB",
        match (rss_baseline, rss_subscribed) {
            (Some(b), Some(a)) if subscribed > 0 => Some((a as f64 - b as f64) / subscribed as f64),
            _ => None,
        },
    );
    metrics.push(
        "loadgen_rss_mib",
        "loadgen RSS subscribed",
        "MiB",
        procfs::rss_kib(std::process::id())
            .ok()
            .map(|k| k as f64 / 1024.0),
    );
    if shared.failed.load(Relaxed) > 0 || ready < subscribed {
        if let Some(e) = shared.first_error.lock().unwrap().clone() {
            metrics.notes.push(format!("first subscriber error: {e}"));
        }
    }
    if args.idle {
        target.stop();
        return Ok(metrics);
    }

    // Measurement: versions above the current ones are owed to every ready subscriber.
    for (m, v) in versions.iter().enumerate() {
        shared.threshold[m].store(*v, Relaxed);
    }
    let sends: Arc<Mutex<Vec<UpdateSent>>> = Arc::new(Mutex::new(Vec::with_capacity(updates)));
    let update_errors = Arc::new(AtomicUsize::new(0));
    let load_average = procfs::load_average();
    let machine_cpu0 = procfs::machine_busy_time();
    let server_cpu0 = target.cpu_time();
    let self_cpu0 = procfs::self_cpu_time();
    let started = Instant::now();
    let rss_samples: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let rss_sampler = match (args.rss_every, target.pid) {
        (Some(every), Some(pid)) => Some(tokio::spawn(sample_rss(
            pid,
            Duration::from_secs(every.max(1)),
            rss_samples.clone(),
        ))),
        _ => None,
    };
    let mut senders = JoinSet::new();
    let kind = args.update;
    for i in 0..updates {
        let m = i % args.matches;
        let step = steps[m];
        steps[m] += 1;
        tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        let (admin, shared, sends, errors, id) = (
            admin.clone(),
            shared.clone(),
            sends.clone(),
            update_errors.clone(),
            match_ids[m].clone(),
        );
        // Each update in its own task, so a slow response does not delay the schedule; the
        // response's version says which change this send caused.
        senders.spawn(async move {
            let sent = shared.now_ns();
            match admin.update(kind, &id, step).await {
                Ok(v) => sends.lock().unwrap().push((m, v, sent, shared.now_ns())),
                Err(e) => {
                    errors.fetch_add(1, Relaxed);
                    shared.note_error(format!("update: {e:#}"));
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let sends = std::mem::take(&mut *sends.lock().unwrap());
    let mut per_match_updates = vec![0u64; args.matches];
    for (m, _, _, _) in &sends {
        per_match_updates[*m] += 1;
    }
    let expected: u64 = (0..args.matches)
        .map(|m| per_match_updates[m] * ready_per_match[m] as u64)
        .sum();
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_timeout);
    while shared.measured.load(Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window = started.elapsed();
    if let Some(sampler) = rss_sampler {
        sampler.abort();
    }
    let rss_growth = rss_growth(&rss_samples.lock().unwrap(), args.rss_growth_from);
    let server_cpu = match (server_cpu0, target.cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let self_cpu = procfs::self_cpu_time().saturating_sub(self_cpu0);
    let machine_cpu = machine_cpu0
        .zip(procfs::machine_busy_time())
        .map(|(a, b)| b.saturating_sub(a));
    // Read before stopping the server, whose exit closes every connection.
    let closed_early = shared.closed.load(Relaxed);
    target.stop();
    tasks.abort_all();

    // Analysis, after the fact: the subscribers only recorded.
    let mut send_ns: HashMap<(usize, u32), u64> = HashMap::with_capacity(sends.len());
    let mut owed: Vec<(u32, u32)> = versions.iter().map(|v| (v + 1, *v)).collect();
    for (m, v, t, _) in &sends {
        send_ns.insert((*m, *v), *t);
        owed[*m].1 = owed[*m].1.max(*v);
    }
    let mut seq = Sequence::default();
    let mut latencies: Vec<u64> = Vec::with_capacity(expected as usize);
    // Per (match, version): receipts, the first and the last receipt time.
    let mut fanout: HashMap<(usize, u32), (usize, u64, u64)> = HashMap::with_capacity(sends.len());
    let mut last_receipt = 0u64;
    for (i, log) in logs.iter().enumerate() {
        if !log.ready.load(Relaxed) {
            continue;
        }
        let m = i % args.matches;
        let (first, last) = owed[m];
        let receipts = log.receipts.lock().unwrap();
        seq.add(account(first, last, receipts.iter().map(|(v, _)| *v)));
        let mut seen = std::collections::HashSet::new();
        for (v, t) in receipts.iter() {
            let Some(sent) = send_ns.get(&(m, *v)) else {
                continue;
            };
            if !seen.insert(*v) {
                continue;
            }
            latencies.push(t.saturating_sub(*sent) / 1000);
            let e = fanout.entry((m, *v)).or_insert((0, u64::MAX, 0));
            e.0 += 1;
            e.1 = e.1.min(*t);
            e.2 = e.2.max(*t);
            last_receipt = last_receipt.max(*t);
        }
    }
    latencies.sort_unstable();
    let mut completions: Vec<u64> = Vec::with_capacity(sends.len());
    let mut spreads: Vec<u64> = Vec::with_capacity(sends.len());
    let mut incomplete = 0u64;
    for (m, v, sent, _) in &sends {
        match fanout.get(&(*m, *v)) {
            Some((n, first, last)) if *n == ready_per_match[*m] => {
                completions.push(last.saturating_sub(*sent) / 1000);
                spreads.push(last.saturating_sub(*first) / 1000);
            }
            _ => incomplete += 1,
        }
    }
    completions.sort_unstable();
    spreads.sort_unstable();
    let mut answers: Vec<u64> = sends
        .iter()
        .map(|(_, _, sent, answered)| answered.saturating_sub(*sent) / 1000)
        .collect();
    answers.sort_unstable();
    let first_send = sends.iter().map(|(_, _, t, _)| *t).min().unwrap_or(0);
    let delivery_secs = last_receipt.saturating_sub(first_send) as f64 / 1e9;

    if let Some((from, end, pct)) = rss_growth {
        metrics.push(
            "rss_growth_from_mib",
            "server RSS at --rss-growth-from",
            "MiB",
            from as f64 / 1024.0,
        );
        metrics.push(
            "rss_growth_end_mib",
            "server RSS at the end",
            "MiB",
            end as f64 / 1024.0,
        );
        metrics.push("rss_growth_pct", "server RSS growth", "%", pct);
    }
    metrics.push("updates_sent", "updates sent", "", sends.len() as f64);
    metrics.push(
        "update_errors",
        "update errors",
        "",
        update_errors.load(Relaxed) as f64,
    );
    metrics.push("expected", "messages owed", "", expected as f64);
    metrics.push("delivered", "messages delivered", "", seq.delivered as f64);
    metrics.push("missing", "missing", "", seq.missing as f64);
    metrics.push("duplicate", "duplicate", "", seq.duplicate as f64);
    metrics.push("out_of_order", "out of order", "", seq.out_of_order as f64);
    metrics.push(
        "protocol_errors",
        "error/complete messages",
        "",
        shared.protocol_errors.load(Relaxed) as f64,
    );
    metrics.push(
        "closed",
        "connections closed early",
        "",
        closed_early as f64,
    );
    metrics.push_ms_percentiles(
        &latencies,
        &[
            ("latency_p50_ms", "delivery latency p50", 50.0),
            ("latency_p90_ms", "delivery latency p90", 90.0),
            ("latency_p99_ms", "delivery latency p99", 99.0),
            ("latency_max_ms", "delivery latency max", 100.0),
        ],
    );
    metrics.push_ms_percentiles(
        &completions,
        &[
            ("fanout_p50_ms", "fan-out completion p50", 50.0),
            ("fanout_p99_ms", "fan-out completion p99", 99.0),
            ("fanout_max_ms", "fan-out completion max", 100.0),
        ],
    );
    metrics.push_ms_percentiles(
        &spreads,
        &[
            ("spread_p50_ms", "first → last subscriber p50", 50.0),
            ("spread_p99_ms", "first → last subscriber p99", 99.0),
        ],
    );
    metrics.push_ms_percentiles(
        &answers,
        &[
            ("mutation_p50_ms", "mutation answered p50", 50.0),
            ("mutation_max_ms", "mutation answered max", 100.0),
        ],
    );
    metrics.push(
        "fanout_incomplete",
        "updates not delivered to all",
        "",
        incomplete as f64,
    );
    metrics.push(
        "delivered_per_s",
        "delivered messages/s",
        "msg/s",
        (delivery_secs > 0.0).then(|| seq.delivered as f64 / delivery_secs),
    );
    metrics.push("window_s", "measurement window", "s", window.as_secs_f64());
    metrics.push(
        "server_cpu_s",
        "server CPU",
        "s",
        server_cpu.map(|d| d.as_secs_f64()),
    );
    metrics.push("loadgen_cpu_s", "loadgen CPU", "s", self_cpu.as_secs_f64());
    report::push_machine(
        &mut metrics,
        load_average,
        machine_cpu,
        server_cpu,
        self_cpu,
        window,
    );
    let per_msg =
        |cpu: Duration| (seq.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / seq.delivered as f64);
    metrics.push(
        "server_cpu_us_per_msg",
        "server CPU per delivered message",
        "µs",
        server_cpu.and_then(per_msg),
    );
    metrics.push(
        "server_cpu_ms_per_update",
        "server CPU per update",
        "ms",
        server_cpu
            .filter(|_| !sends.is_empty())
            .map(|d| d.as_secs_f64() * 1e3 / sends.len() as f64),
    );
    metrics.push(
        "loadgen_cpu_us_per_msg",
        "loadgen CPU per received message",
        "µs",
        per_msg(self_cpu),
    );
    if update_errors.load(Relaxed) > 0 || shared.protocol_errors.load(Relaxed) > 0 {
        if let Some(e) = shared.first_error.lock().unwrap().clone() {
            metrics.notes.push(format!("first error: {e}"));
        }
    }
    Ok(metrics)
}

struct Subscriber {
    url: String,
    authority: String,
    protocol: Protocol,
    client: Client,
    id: String,
    match_id: String,
    match_index: usize,
}

/// A subscriber's connection, through either client implementation.
enum Conn {
    Tungstenite(Box<Ws>),
    Raw(Box<RawWs>),
    Sse(Box<RawSse>),
}

impl Conn {
    async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        match self {
            Conn::Tungstenite(ws) => ws.send(Message::Text(text.into())).await?,
            Conn::Raw(ws) => ws.send_text(&text).await?,
            Conn::Sse(_) => bail!("an event stream carries nothing from the client"),
        }
        Ok(())
    }

    async fn recv(&mut self) -> Incoming {
        let ws = match self {
            Conn::Raw(ws) => return ws.recv().await,
            Conn::Sse(sse) => return sse.recv().await,
            Conn::Tungstenite(ws) => ws,
        };
        loop {
            return match ws.next().await {
                Some(Ok(Message::Text(text))) => match version_of(text.as_bytes()) {
                    Some(v) => Incoming::Version(v),
                    None => Incoming::Other(text.as_str().to_string()),
                },
                Some(Ok(Message::Close(frame))) => Incoming::Closed(format!("{frame:?}")),
                // Pings are answered by tungstenite on the next read.
                Some(Ok(_)) => continue,
                Some(Err(e)) => Incoming::Closed(e.to_string()),
                None => Incoming::Closed("EOF".into()),
            };
        }
    }
}

impl Subscriber {
    async fn run(self, shared: Arc<Shared>, log: Arc<Log>, sem: Arc<Semaphore>) {
        let conn = {
            let _permit = sem.acquire().await;
            tokio::time::timeout(Duration::from_secs(30), self.connect()).await
        };
        let mut conn = match conn {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                shared.note_error(format!("connect: {e:#}"));
                shared.failed.fetch_add(1, Relaxed);
                return;
            }
            Err(_) => {
                shared.note_error("connect: timed out after 30 s".into());
                shared.failed.fetch_add(1, Relaxed);
                return;
            }
        };
        shared.subscribed.fetch_add(1, Relaxed);
        let threshold = &shared.threshold[self.match_index];
        loop {
            let text = match conn.recv().await {
                Incoming::Version(v) => {
                    let now = shared.now_ns();
                    if !log.ready.load(Relaxed) {
                        log.ready.store(true, Relaxed);
                        shared.ready.fetch_add(1, Relaxed);
                    }
                    if v > threshold.load(Relaxed) {
                        shared.measured.fetch_add(1, Relaxed);
                    }
                    log.receipts.lock().unwrap().push((v, now));
                    continue;
                }
                Incoming::Closed(reason) => {
                    shared.note_error(format!("connection ended: {reason}"));
                    break;
                }
                Incoming::Other(text) => text,
            };
            // Rare: keep-alives and protocol messages, parsed in full.
            let kind = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string));
            match kind.as_deref() {
                Some("ka") | Some("pong") => {}
                Some("ping") => {
                    if conn.send_text(r#"{"type":"pong"}"#.into()).await.is_err() {
                        break;
                    }
                }
                _ => {
                    shared.protocol_errors.fetch_add(1, Relaxed);
                    shared.note_error(format!("unexpected message: {text}"));
                }
            }
        }
        shared.closed.fetch_add(1, Relaxed);
    }

    async fn open(&self) -> anyhow::Result<Conn> {
        if self.client == Client::Raw {
            let ws =
                RawWs::connect(&self.authority, "/graphql", self.protocol.subprotocol()).await?;
            return Ok(Conn::Raw(Box::new(ws)));
        }
        let stream = TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let mut request = self.url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(self.protocol.subprotocol()),
        );
        // Small buffers: tungstenite's 128 KiB read buffer per socket would make the client,
        // not the server, run out of memory at 15,000 connections.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(Conn::Tungstenite(Box::new(ws)))
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        if self.protocol == Protocol::Sse {
            let body = json!({"query": SUBSCRIPTION, "variables": {"id": self.match_id}});
            let sse = RawSse::connect(&self.authority, &body.to_string()).await?;
            return Ok(Conn::Sse(Box::new(sse)));
        }
        let mut conn = self.open().await?;
        conn.send_text(json!({"type": "connection_init", "payload": {}}).to_string())
            .await?;
        loop {
            match conn.recv().await {
                Incoming::Other(text) => {
                    let v: Value = serde_json::from_str(&text)?;
                    match v["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ka") => continue,
                        _ => bail!("expected connection_ack, got {v}"),
                    }
                }
                Incoming::Version(_) => bail!("data before connection_ack"),
                Incoming::Closed(reason) => bail!("closed before connection_ack: {reason}"),
            }
        }
        let kind = match self.protocol {
            Protocol::Transport => "subscribe",
            Protocol::Legacy | Protocol::Sse => "start",
        };
        conn.send_text(
            json!({"type": kind, "id": self.id,
                   "payload": {"query": SUBSCRIPTION, "variables": {"id": self.match_id}}})
            .to_string(),
        )
        .await?;
        Ok(conn)
    }
}

/// The number after the first `"version":` of a frame, without parsing the JSON: the
/// subscription selects one match, so its `version` is the only one.
pub fn version_of(frame: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"version\":";
    let at = frame.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = frame[at..]
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit());
    let mut v: u32 = 0;
    let mut any = false;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

/// Samples `pid`'s RSS every `every` (seconds since the start, KiB) into `samples`, printing
/// each, until aborted.
async fn sample_rss(pid: u32, every: Duration, samples: Arc<Mutex<Vec<(u64, u64)>>>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Ok(kib) = procfs::rss_kib(pid) else {
            return;
        };
        let secs = started.elapsed().as_secs();
        println!("  [{secs:>5} s] server RSS {:.1} MiB", kib as f64 / 1024.0);
        samples.lock().unwrap().push((secs, kib));
    }
}

/// The RSS at the first sample from `from` seconds on, at the last sample, and the growth
/// between them in percent; `None` without a sample from `from` on.
fn rss_growth(samples: &[(u64, u64)], from: u64) -> Option<(u64, u64, f64)> {
    let start = samples.iter().find(|(secs, _)| *secs >= from)?.1;
    let end = samples.last()?.1;
    Some((
        start,
        end,
        (end as f64 - start as f64) * 100.0 / start as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_a_next_frame() {
        let frame = br#"{"type":"next","id":"1","payload":{"data":{"matchUpdated":{"id":"m-1","version":42,"score":{"home":1,"away":0}}}}}"#;
        assert_eq!(version_of(frame), Some(42));
        assert_eq!(version_of(br#"{"version": 7}"#), Some(7));
    }

    fn step(p99: f64, missing: f64, delivered_per_s: f64) -> Metrics {
        let mut m = Metrics::default();
        for key in ["duplicate", "out_of_order", "never_ready", "update_errors"] {
            m.push(key, "", "", 0.0);
        }
        m.push("missing", "missing", "", missing);
        m.push("latency_p99_ms", "p99", "ms", p99);
        m.push("delivered_per_s", "delivered", "msg/s", delivered_per_s);
        m.push("server_cores", "server", "cores", 0.9);
        m
    }

    #[test]
    fn a_sweep_step_passes_only_without_loss_and_within_the_budget() {
        assert!(passes(&step(250.0, 0.0, 1.0), 250.0));
        assert!(!passes(&step(250.1, 0.0, 1.0), 250.0));
        assert!(!passes(&step(10.0, 1.0, 1.0), 250.0));
        let mut unmeasured = step(10.0, 0.0, 1.0);
        unmeasured.items.retain(|i| i.key != "duplicate");
        assert!(
            !passes(&unmeasured, 250.0),
            "an unmeasured count is not a zero"
        );
    }

    #[test]
    fn the_sweep_names_the_highest_passing_delivery_and_the_first_failing_step() {
        let at = |subscribers, rate| Step { subscribers, rate };
        let steps = vec![
            (at(1000, 5.0), step(100.0, 0.0, 5_000.0)),
            (at(1000, 10.0), step(200.0, 0.0, 10_000.0)),
            (at(1000, 20.0), step(900.0, 0.0, 20_000.0)),
            (at(2000, 40.0), step(200.0, 3.0, 80_000.0)),
        ];
        let out = sweep_table(&steps, 250.0);
        assert!(
            out.contains(
                "highest passing delivery: 10000 messages/s (1000 subscribers at 10 updates/s)"
            ),
            "{out}"
        );
        assert!(
            out.contains("first failing step (1000 subscribers at 20/s): server 0.90 cores"),
            "{out}"
        );
        assert!(out.lines().nth(1).unwrap().contains("1000×5/s"), "{out}");
        let j = sweep_json(&steps, 250.0);
        assert_eq!(j["steps"][1]["pass"], true);
        assert_eq!(j["steps"][2]["pass"], false);
        assert_eq!(j["steps"][3]["subscribers"], 2000);
        let none = sweep_table(&[(at(10, 1.0), step(900.0, 0.0, 1.0))], 250.0);
        assert!(none.contains("no step passed"), "{none}");
    }

    #[test]
    fn frames_without_a_version_have_none() {
        assert_eq!(version_of(br#"{"type":"ping"}"#), None);
        assert_eq!(version_of(br#"{"type":"ka"}"#), None);
        assert_eq!(version_of(br#"{"version":null}"#), None);
        assert_eq!(version_of(br#"{"version":99999999999}"#), None);
    }

    #[test]
    fn rss_growth_runs_from_the_first_sample_after_the_warm_up_to_the_last() {
        let samples = [(0, 100), (30, 200), (300, 400), (330, 410), (600, 420)];
        assert_eq!(rss_growth(&samples, 300), Some((400, 420, 5.0)));
        assert_eq!(rss_growth(&samples, 700), None);
        assert_eq!(rss_growth(&[], 0), None);
    }
}
