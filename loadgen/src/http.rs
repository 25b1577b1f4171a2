//! `loadgen http`: `match(id)` query throughput over HTTP/1.1 keep-alive connections.
//!
//! C tasks, each owning one connection and sending the next request when the previous answer
//! is read (closed loop), for a warm-up second and then D measured seconds.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::procfs;
use crate::report::{self, Metrics};
use crate::target::{Admin, Target, TargetArgs};

#[derive(Args, Clone, Debug)]
pub struct HttpArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Repeat with a fresh server each time; prints medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Also print one JSON line per run and one for the summary.
    #[arg(long)]
    pub json: bool,
}

const QUERY: &str = "query($id:ID!){match(id:$id){id version score{home away} status}}";

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.connections > 10_000 {
        bail!("--connections must be between 1 and 10000");
    }
    let config = json!({"connections": args.connections, "duration_s": args.duration});
    let mut runs = Vec::new();
    for i in 1..=args.runs.max(1) {
        eprintln!("run {i}/{}: {config}", args.runs.max(1));
        let bound = Duration::from_secs(args.duration + 60);
        let metrics = tokio::time::timeout(bound, run_once(&args))
            .await
            .with_context(|| format!("run {i} did not finish in {}s", bound.as_secs()))??;
        if args.json {
            println!("{}", metrics.to_json("http", Value::from(i), &config));
        }
        runs.push(metrics);
    }
    println!("{}", report::table(&runs));
    if args.json && runs.len() > 1 {
        println!(
            "{}",
            report::medians(&runs).to_json("http", Value::from("median"), &config)
        );
    }
    Ok(())
}

/// One connection's tally over the measured window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn run_once(args: &HttpArgs) -> anyhow::Result<Metrics> {
    let mut target = Target::start(&args.target).await?;
    let admin = Admin::new(&target)?;
    let (match_id, _) = admin.seed(1).await.context("seeding a match")?.remove(0);
    let body = Bytes::from(
        json!({"query": QUERY, "variables": {"id": match_id}})
            .to_string()
            .into_bytes(),
    );

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (authority, body, measuring, stop) = (
            target.authority().to_string(),
            body.clone(),
            measuring.clone(),
            stop.clone(),
        );
        tasks.spawn(async move { connection(authority, body, measuring, stop).await });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let load_average = procfs::load_average();
    let machine_cpu0 = procfs::machine_busy_time();
    let server_cpu0 = target.cpu_time();
    let self_cpu0 = procfs::self_cpu_time();
    let started = Instant::now();
    measuring.store(true, Relaxed);
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Relaxed);
    let window = started.elapsed();
    let server_cpu = match (server_cpu0, target.cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let self_cpu = procfs::self_cpu_time().saturating_sub(self_cpu0);
    let machine_cpu = machine_cpu0
        .zip(procfs::machine_busy_time())
        .map(|(a, b)| b.saturating_sub(a));
    stop.store(true, Relaxed);

    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    while let Some(tally) = tasks.join_next().await {
        let tally = tally?;
        latencies.extend(tally.latencies_us);
        errors += tally.errors;
        first_error = first_error.or(tally.first_error);
    }
    target.stop();
    latencies.sort_unstable();
    let ok = latencies.len() as f64;
    let mut m = Metrics::default();
    m.push("requests", "requests answered", "", ok);
    m.push("errors", "errors", "", errors as f64);
    m.push(
        "requests_per_s",
        "requests/s",
        "req/s",
        ok / window.as_secs_f64(),
    );
    m.push_ms_percentiles(
        &latencies,
        &[
            ("latency_p50_ms", "latency p50", 50.0),
            ("latency_p99_ms", "latency p99", 99.0),
            ("latency_max_ms", "latency max", 100.0),
        ],
    );
    m.push(
        "server_cpu_s",
        "server CPU",
        "s",
        server_cpu.map(|d| d.as_secs_f64()),
    );
    m.push("loadgen_cpu_s", "loadgen CPU", "s", self_cpu.as_secs_f64());
    m.push(
        "server_cpu_us_per_req",
        "server CPU per request",
        "µs",
        server_cpu
            .filter(|_| ok > 0.0)
            .map(|d| d.as_secs_f64() * 1e6 / ok),
    );
    m.push(
        "loadgen_cpu_us_per_req",
        "loadgen CPU per request",
        "µs",
        (ok > 0.0).then(|| self_cpu.as_secs_f64() * 1e6 / ok),
    );
    report::push_machine(
        &mut m,
        load_average,
        machine_cpu,
        server_cpu,
        self_cpu,
        window,
    );
    if let Some(e) = first_error {
        m.notes.push(format!("first error: {e}"));
    }
    Ok(m)
}

/// One keep-alive connection in a closed loop; reconnects after an error.
async fn connection(
    authority: String,
    body: Bytes,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let fail = |tally: &mut Tally, e: String| {
        if measuring.load(Relaxed) {
            tally.errors += 1;
            tally.first_error.get_or_insert(e);
        }
    };
    while !stop.load(Relaxed) {
        let mut sender = match open(&authority).await {
            Ok(s) => s,
            Err(e) => {
                fail(&mut tally, format!("connect: {e:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while !stop.load(Relaxed) {
            let request = hyper::Request::post("/graphql")
                .header("host", &authority)
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .expect("a valid request");
            let t0 = Instant::now();
            let result = async {
                let resp = sender.send_request(request).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, bytes))
            }
            .await;
            match result {
                Ok((status, bytes)) if status.is_success() && !contains(&bytes, b"\"errors\"") => {
                    if measuring.load(Relaxed) {
                        tally.latencies_us.push(t0.elapsed().as_micros() as u64);
                    }
                }
                Ok((status, bytes)) => fail(
                    &mut tally,
                    format!("{status}: {}", String::from_utf8_lossy(&bytes)),
                ),
                Err(e) => {
                    fail(&mut tally, format!("request: {e:#}"));
                    break;
                }
            }
        }
    }
    tally
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn open(authority: &str) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
