//! `loadgen http`: the read path, a GraphQL query over HTTP/1.1 keep-alive connections, with an
//! optional write mix and the floor under it.
//!
//! C tasks, each owning one connection and sending the next request when the previous answer
//! is read (closed loop), for a warm-up second and then D measured seconds. The query and its
//! variables are `--query` and `--variables` (the score screen's `match(id)` by default), sent
//! as a POST body or, with `--method get`, in the query string.
//!
//! **Writes.** With `--write-every N` one writer task, on its own keep-alive connection with the
//! admin token, sends an `updateScore` to the same match each time the reads answered pass
//! another N (it catches up back to back when it falls behind). The version each mutation
//! answered is kept as the highest *answered version* the moment its response is read.
//!
//! **Stale reads.** Each reader loads the answered version just before sending, and takes the
//! match's `version` from the response (the object whose `id` is the match's, or a root field
//! that selects no `id`). A response older than a mutation already answered when the read was
//! sent is a stale read; one instance must never give one.
//!
//! **Floor.** Then, unless `--no-floor`, the same client loop (same connections, duration,
//! method and request) drives a bare hyper HTTP/1.1 server that answers every request with a
//! fixed 200-byte JSON body, in a child process (`loadgen http-floor-serve`) whose CPU time is
//! read from `/proc` like the server's: the server's CPU per request over the floor's is what
//! GraphQL, routing and the store add to answering an HTTP request at all.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::floor::KillOnDrop;
use crate::procfs;
use crate::report::{self, Metrics};
use crate::target::{Admin, Target, TargetArgs};

/// The score screen: everything a match page shows at a glance.
pub const SCORE_QUERY: &str = "query($id:ID!){match(id:$id){id status version score{home away} \
                               homeTeam{name shortName} awayTeam{name shortName}}}";

/// Replaced, in `--variables`, by the seeded match's id.
pub const MATCH_PLACEHOLDER: &str = "$MATCH";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// `POST /graphql` with a JSON body `{"query", "variables"}`.
    Post,
    /// `GET /graphql?query=...&variables=...` (GraphQL over HTTP's GET), no body.
    Get,
}

#[derive(Args, Clone, Debug)]
pub struct HttpArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured seconds (after one second of warm-up); the floor runs as long again.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// The GraphQL document every read sends.
    #[arg(long, default_value = SCORE_QUERY)]
    pub query: String,
    /// Its variables, a JSON object; `$MATCH` inside it becomes the seeded match's id.
    #[arg(long, default_value = r#"{"id":"$MATCH"}"#)]
    pub variables: String,
    /// How reads are sent.
    #[arg(long, value_enum, default_value = "post")]
    pub method: Method,
    /// One `updateScore` to the same match per N reads, from a separate writer connection
    /// (0: no writes).
    #[arg(long, default_value_t = 0)]
    pub write_every: u64,
    /// Measure the HTTP floor after the server (the default).
    #[arg(long, overrides_with = "no_floor")]
    pub floor: bool,
    /// Skip the HTTP floor.
    #[arg(long, overrides_with = "floor")]
    pub no_floor: bool,
    /// Repeat with a fresh server each time; prints medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Also print one JSON line per run and one for the summary.
    #[arg(long)]
    pub json: bool,
}

/// `loadgen http-floor-serve`: no settings; it prints the loopback address it listens on.
#[derive(Args, Clone, Debug)]
pub struct FloorServeArgs {}

pub async fn run(args: HttpArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.connections > 10_000 {
        bail!("--connections must be between 1 and 10000");
    }
    // Checked before any server starts; each run substitutes its own match id.
    request_variables(&args.variables, "match-id")?;
    let floor = !args.no_floor;
    let config = json!({"connections": args.connections, "duration_s": args.duration,
                        "method": format!("{:?}", args.method).to_lowercase(),
                        "write_every": args.write_every, "floor": floor,
                        "query": args.query, "variables": args.variables});
    let mut runs = Vec::new();
    for i in 1..=args.runs.max(1) {
        eprintln!("run {i}/{}: {config}", args.runs.max(1));
        let phases = if floor { 2 } else { 1 };
        let bound = Duration::from_secs(phases * (args.duration + 1) + 60);
        let metrics = tokio::time::timeout(bound, run_once(&args, floor))
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

/// `--variables` with `$MATCH` replaced by the match id (JSON-escaped, so any id stays a valid
/// string), parsed; it must be a JSON object.
pub fn request_variables(template: &str, match_id: &str) -> anyhow::Result<Value> {
    let quoted = Value::from(match_id).to_string();
    let text = template.replace(MATCH_PLACEHOLDER, &quoted[1..quoted.len() - 1]);
    let variables: Value = serde_json::from_str(&text)
        .with_context(|| format!("--variables is not JSON once $MATCH is replaced: {text}"))?;
    if !variables.is_object() {
        bail!("--variables must be a JSON object, not {text}");
    }
    Ok(variables)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so any decoder of a query
/// string (form-style or not) reads the text back unchanged.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The path and query of a GET request: `/graphql?query=...&variables=...`.
pub fn get_path(query: &str, variables: &Value) -> String {
    format!(
        "/graphql?query={}&variables={}",
        percent_encode(query),
        percent_encode(&variables.to_string())
    )
}

/// The match's `version` in a GraphQL response: that of the object whose `id` is the match's,
/// else that of a root field that selects no `id` (the match the query asked for by id).
/// `None` when the response has no such version (the query selects none, or it failed).
pub fn match_version(response: &Value, match_id: &str) -> Option<u64> {
    fn find(v: &Value, match_id: &str) -> Option<u64> {
        match v {
            Value::Object(fields) => {
                if fields.get("id").and_then(Value::as_str) == Some(match_id) {
                    if let Some(version) = fields.get("version").and_then(Value::as_u64) {
                        return Some(version);
                    }
                }
                fields.values().find_map(|f| find(f, match_id))
            }
            Value::Array(items) => items.iter().find_map(|i| find(i, match_id)),
            _ => None,
        }
    }
    let data = response.get("data")?;
    find(data, match_id).or_else(|| {
        data.as_object()?.values().find_map(|root| {
            let root = root.as_object()?;
            if root.contains_key("id") {
                return None;
            }
            root.get("version").and_then(Value::as_u64)
        })
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The number after `"version":` when the body holds that key exactly once.
pub fn single_version(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"version\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &body[at + KEY.len()..];
    if rest.windows(KEY.len()).any(|w| w == KEY) {
        return None;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// A read is stale when it returned a version older than one a mutation had already answered
/// when the read was sent.
pub fn is_stale(read_version: u64, answered_before_send: u64) -> bool {
    read_version < answered_before_send
}

/// One request as every client task sends it.
#[derive(Clone)]
struct RequestSpec {
    method: Method,
    /// `/graphql`, or `/graphql?query=...` for GET.
    path: String,
    /// The POST body (empty for GET).
    body: Bytes,
}

impl RequestSpec {
    fn new(method: Method, query: &str, variables: &Value) -> RequestSpec {
        match method {
            Method::Post => RequestSpec {
                method,
                path: "/graphql".into(),
                body: Bytes::from(
                    json!({"query": query, "variables": variables})
                        .to_string()
                        .into_bytes(),
                ),
            },
            Method::Get => RequestSpec {
                method,
                path: get_path(query, variables),
                body: Bytes::new(),
            },
        }
    }

    fn build(&self, authority: &str) -> hyper::Request<Full<Bytes>> {
        let builder = match self.method {
            Method::Post => {
                hyper::Request::post(&self.path).header("content-type", "application/json")
            }
            Method::Get => hyper::Request::get(&self.path),
        };
        builder
            .header("host", authority)
            .body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

/// What the client tasks and the writer share during one measurement.
struct Shared {
    match_id: String,
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Reads answered without error, warm-up included: the writer's pace.
    reads: AtomicU64,
    /// The highest version a mutation has answered so far.
    answered_version: AtomicU64,
    write_every: u64,
    /// Woken each time `reads` passes another `write_every`.
    writer_wake: Notify,
}

/// One connection's tally.
#[derive(Default)]
struct Tally {
    /// Measured window only.
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// Every answered read, warm-up and the tail after the window included.
    versioned_reads: u64,
    stale_reads: u64,
    first_stale: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.versioned_reads += other.versioned_reads;
        self.stale_reads += other.stale_reads;
        self.first_stale = self.first_stale.take().or(other.first_stale);
    }
}

#[derive(Default)]
struct WriterTally {
    writes: u64,
    errors: u64,
    first_error: Option<String>,
}

/// One measurement: the client loop against one server for the warm-up and the window.
struct Phase {
    reads: Tally,
    writer: WriterTally,
    window: Duration,
    /// The measured process's CPU over the window (`None` without its pid).
    target_cpu: Option<Duration>,
    self_cpu: Duration,
    machine_cpu: Option<Duration>,
    load_average: Option<f64>,
}

impl Phase {
    fn answered(&self) -> f64 {
        self.reads.latencies_us.len() as f64
    }

    fn target_cpu_us_per_req(&self) -> Option<f64> {
        let ok = self.answered();
        self.target_cpu
            .filter(|_| ok > 0.0)
            .map(|d| d.as_secs_f64() * 1e6 / ok)
    }
}

/// Runs C client tasks against `authority` for a warm-up second and `duration` seconds, and,
/// with `writer`, the writer task over the window.
async fn measure(
    authority: &str,
    spec: &RequestSpec,
    shared: Arc<Shared>,
    connections: usize,
    duration: u64,
    cpu_time: impl Fn() -> Option<Duration>,
    writer: Option<Admin>,
) -> anyhow::Result<Phase> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (authority, spec, shared) = (authority.to_string(), spec.clone(), shared.clone());
        tasks.spawn(async move { connection(authority, spec, shared).await });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let load_average = procfs::load_average();
    let machine_cpu0 = procfs::machine_busy_time();
    let target_cpu0 = cpu_time();
    let self_cpu0 = procfs::self_cpu_time();
    let started = Instant::now();
    shared.measuring.store(true, Ordering::SeqCst);
    let writer = writer.map(|admin| {
        let shared = shared.clone();
        tokio::spawn(async move { write_loop(admin, shared).await })
    });
    tokio::time::sleep(Duration::from_secs(duration)).await;
    shared.measuring.store(false, Ordering::SeqCst);
    let window = started.elapsed();
    let target_cpu = match (target_cpu0, cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let self_cpu = procfs::self_cpu_time().saturating_sub(self_cpu0);
    let machine_cpu = machine_cpu0
        .zip(procfs::machine_busy_time())
        .map(|(a, b)| b.saturating_sub(a));
    shared.stop.store(true, Ordering::SeqCst);
    shared.writer_wake.notify_one();

    let mut reads = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        reads.merge(tally?);
    }
    reads.latencies_us.sort_unstable();
    let writer = match writer {
        Some(w) => w.await?,
        None => WriterTally::default(),
    };
    Ok(Phase {
        reads,
        writer,
        window,
        target_cpu,
        self_cpu,
        machine_cpu,
        load_average,
    })
}

async fn run_once(args: &HttpArgs, floor: bool) -> anyhow::Result<Metrics> {
    let mut target = Target::start(&args.target).await?;
    let admin = Admin::new(&target)?;
    let (match_id, _) = admin.seed(1).await.context("seeding a match")?.remove(0);
    let variables = request_variables(&args.variables, &match_id)?;
    let spec = RequestSpec::new(args.method, &args.query, &variables);

    let shared = Arc::new(Shared {
        match_id: match_id.clone(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        reads: AtomicU64::new(0),
        answered_version: AtomicU64::new(0),
        write_every: args.write_every,
        writer_wake: Notify::new(),
    });
    // The writer's own client: a connection of its own, never one of the readers'.
    let writer = (args.write_every > 0)
        .then(|| Admin::new(&target))
        .transpose()?;
    let server = measure(
        target.authority(),
        &spec,
        shared,
        args.connections,
        args.duration,
        || target.cpu_time(),
        writer,
    )
    .await?;
    target.stop();
    let floor = if floor {
        Some(measure_floor(args, &spec, &match_id).await?)
    } else {
        None
    };

    let ok = server.answered();
    let mut m = Metrics::default();
    m.push("requests", "requests answered", "", ok);
    m.push("errors", "errors", "", server.reads.errors as f64);
    m.push(
        "requests_per_s",
        "requests/s",
        "req/s",
        ok / server.window.as_secs_f64(),
    );
    m.push_ms_percentiles(
        &server.reads.latencies_us,
        &[
            ("latency_p50_ms", "latency p50", 50.0),
            ("latency_p99_ms", "latency p99", 99.0),
            ("latency_max_ms", "latency max", 100.0),
        ],
    );
    m.push("writes", "writes answered", "", server.writer.writes as f64);
    m.push(
        "failed_writes",
        "failed writes",
        "",
        server.writer.errors as f64,
    );
    m.push(
        "stale_reads",
        "stale reads",
        "",
        (server.reads.versioned_reads > 0).then_some(server.reads.stale_reads as f64),
    );
    m.push(
        "server_cpu_s",
        "server CPU",
        "s",
        server.target_cpu.map(|d| d.as_secs_f64()),
    );
    m.push(
        "loadgen_cpu_s",
        "loadgen CPU",
        "s",
        server.self_cpu.as_secs_f64(),
    );
    m.push(
        "server_cpu_us_per_req",
        "server CPU per request",
        "µs",
        server.target_cpu_us_per_req(),
    );
    m.push(
        "loadgen_cpu_us_per_req",
        "loadgen CPU per request",
        "µs",
        (ok > 0.0).then(|| server.self_cpu.as_secs_f64() * 1e6 / ok),
    );
    if let Some(f) = &floor {
        let fok = f.answered();
        m.push(
            "floor_requests_per_s",
            "floor requests/s",
            "req/s",
            fok / f.window.as_secs_f64(),
        );
        m.push(
            "floor_cpu_us_per_req",
            "floor CPU per request",
            "µs",
            f.target_cpu_us_per_req(),
        );
        m.push(
            "floor_loadgen_cpu_us_per_req",
            "loadgen CPU per floor request",
            "µs",
            (fok > 0.0).then(|| f.self_cpu.as_secs_f64() * 1e6 / fok),
        );
        m.push(
            "server_cpu_vs_floor",
            "server CPU per request / floor's",
            "×",
            server
                .target_cpu_us_per_req()
                .zip(f.target_cpu_us_per_req())
                .filter(|(_, f)| *f > 0.0)
                .map(|(s, f)| s / f),
        );
    }
    report::push_machine(
        &mut m,
        server.load_average,
        server.machine_cpu,
        server.target_cpu,
        server.self_cpu,
        server.window,
    );
    if let Some(e) = server.reads.first_error {
        m.notes.push(format!("first error: {e}"));
    }
    if let Some(e) = server.writer.first_error {
        m.notes.push(format!("first failed write: {e}"));
    }
    if let Some(s) = server.reads.first_stale {
        m.notes.push(format!("first stale read: {s}"));
    }
    if server.reads.versioned_reads == 0 {
        m.notes
            .push("no response carried the match's version: stale reads not counted".into());
    }
    if let Some(f) = &floor {
        if let Some(e) = &f.reads.first_error {
            m.notes
                .push(format!("floor: {} errors, the first: {e}", f.reads.errors));
        }
    }
    Ok(m)
}

/// The same client loop against a bare HTTP/1.1 server in a child process.
async fn measure_floor(
    args: &HttpArgs,
    spec: &RequestSpec,
    match_id: &str,
) -> anyhow::Result<Phase> {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe()?)
            .arg("http-floor-serve")
            // The child leaves when this end closes, whatever happens to this process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning the http-floor-serve child")?,
    );
    let stdout = child.0.stdout.take().context("floor server stdout")?;
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .context("the floor server did not say where it listens")???;
    let authority = line.trim().to_string();
    if !authority.starts_with("127.0.0.1:") {
        bail!("the floor server said {line:?}, not a loopback address");
    }
    let pid = child.0.id();
    let shared = Arc::new(Shared {
        match_id: match_id.to_string(),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        reads: AtomicU64::new(0),
        answered_version: AtomicU64::new(0),
        write_every: 0,
        writer_wake: Notify::new(),
    });
    let phase = measure(
        &authority,
        spec,
        shared,
        args.connections,
        args.duration,
        || procfs::cpu_time(pid).ok(),
        None,
    )
    .await?;
    drop(child);
    Ok(phase)
}

/// One `updateScore` each time the reads answered pass another `write_every`, until the window
/// ends; each answered version raises `answered_version` as soon as its response is read.
async fn write_loop(admin: Admin, shared: Arc<Shared>) -> WriterTally {
    let mut tally = WriterTally::default();
    let every = shared.write_every.max(1);
    let mut next = shared.reads.load(Ordering::SeqCst) + every;
    let mut step = 0u64;
    loop {
        while shared.reads.load(Ordering::SeqCst) < next {
            if !shared.measuring.load(Ordering::SeqCst) {
                return tally;
            }
            // A bounded wait: the end of the window is seen even if no read comes.
            let _ = tokio::time::timeout(Duration::from_millis(100), shared.writer_wake.notified())
                .await;
        }
        if !shared.measuring.load(Ordering::SeqCst) {
            return tally;
        }
        match admin.update_score(&shared.match_id, step).await {
            Ok(version) => {
                shared
                    .answered_version
                    .fetch_max(u64::from(version), Ordering::SeqCst);
                tally.writes += 1;
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(format!("{e:#}"));
            }
        }
        step += 1;
        next += every;
    }
}

/// One keep-alive connection in a closed loop; reconnects after an error.
async fn connection(authority: String, spec: RequestSpec, shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let fail = |tally: &mut Tally, e: String| {
        if shared.measuring.load(Ordering::Relaxed) {
            tally.errors += 1;
            tally.first_error.get_or_insert(e);
        }
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let mut sender = match open(&authority).await {
            Ok(s) => s,
            Err(e) => {
                fail(&mut tally, format!("connect: {e:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while !shared.stop.load(Ordering::Relaxed) {
            let request = spec.build(&authority);
            // Taken before the request leaves: a mutation answered by now must be visible.
            let answered_before = shared.answered_version.load(Ordering::SeqCst);
            let t0 = Instant::now();
            let result = async {
                let resp = sender.send_request(request).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, bytes))
            }
            .await;
            let elapsed = t0.elapsed();
            let (status, bytes) = match result {
                Ok(answer) => answer,
                Err(e) => {
                    fail(&mut tally, format!("request: {e:#}"));
                    break;
                }
            };
            // Parsing every body as JSON would cost this process more than the server spends on
            // a cached answer: errors are found by their key, and the version read straight
            // from the bytes when the body holds exactly one (a full parse otherwise).
            let ok = status.is_success() && !contains(&bytes, b"\"errors\"");
            if !ok {
                fail(
                    &mut tally,
                    format!("{status}: {}", String::from_utf8_lossy(&bytes)),
                );
                continue;
            }
            if shared.measuring.load(Ordering::Relaxed) {
                tally.latencies_us.push(elapsed.as_micros() as u64);
            }
            let reads = shared.reads.fetch_add(1, Ordering::SeqCst) + 1;
            if shared.write_every > 0 && reads % shared.write_every == 0 {
                shared.writer_wake.notify_one();
            }
            let version = single_version(&bytes).or_else(|| {
                // No version at all (the floor's body, a query that selects none): no parse.
                if !contains(&bytes, b"\"version\"") {
                    return None;
                }
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|b| match_version(&b, &shared.match_id))
            });
            if let Some(version) = version {
                tally.versioned_reads += 1;
                if is_stale(version, answered_before) {
                    tally.stale_reads += 1;
                    tally.first_stale.get_or_insert(format!(
                        "version {version} read after version {answered_before} was answered"
                    ));
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

/// The floor server's answer to every request.
pub const FLOOR_BODY_LEN: usize = 200;

/// A 200-byte JSON body shaped like a score-screen answer.
pub fn floor_body() -> Vec<u8> {
    let shape = |id: &str| {
        format!(
            r#"{{"data":{{"match":{{"id":"{id}","status":"LIVE","version":7,"score":{{"home":1,"away":0}},"homeTeam":{{"name":"Home","shortName":"HOM"}},"awayTeam":{{"name":"Away","shortName":"AWY"}}}}}}}}"#
        )
    };
    let pad = FLOOR_BODY_LEN - shape("").len();
    shape(&"f".repeat(pad)).into_bytes()
}

/// `loadgen http-floor-serve`: a bare hyper HTTP/1.1 server on a loopback port that reads each
/// request and answers `200` with `floor_body()`. Prints its address on the first line of
/// stdout and exits when stdin closes.
pub async fn floor_serve(_args: FloorServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let body = Bytes::from(floor_body());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, most likely: let connections close first.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        // Read like any server must, so the connection stays reusable.
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .expect("a valid response"),
                        )
                    }
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_is_replaced_by_the_id_as_a_json_string() {
        let v = request_variables(r#"{"id":"$MATCH"}"#, "m_01H").unwrap();
        assert_eq!(v, json!({"id": "m_01H"}));
        let v =
            request_variables(r#"{"id":"$MATCH","first":3,"other":"x$MATCH"}"#, "a\"b").unwrap();
        assert_eq!(v, json!({"id": "a\"b", "first": 3, "other": "xa\"b"}));
        let v = request_variables("{}", "m").unwrap();
        assert_eq!(v, json!({}));
    }

    #[test]
    fn variables_must_be_a_json_object() {
        assert!(request_variables(r#"{"id":$MATCH}"#, "m1").is_err());
        assert!(request_variables(r#"["$MATCH"]"#, "m1").is_err());
        assert!(request_variables("not json", "m1").is_err());
    }

    #[test]
    fn get_urls_encode_everything_but_unreserved_characters() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("a b&c=d+e"), "a%20b%26c%3Dd%2Be");
        assert_eq!(percent_encode("{\"$é\"}"), "%7B%22%24%C3%A9%22%7D");
    }

    #[test]
    fn a_get_url_decodes_to_the_query_and_variables() {
        let variables = json!({"id": "m 1&x=+"});
        let path = get_path(SCORE_QUERY, &variables);
        let (route, query_string) = path.split_once('?').unwrap();
        assert_eq!(route, "/graphql");
        assert!(
            query_string
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b)),
            "{query_string}"
        );
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("query".to_string(), SCORE_QUERY.to_string()),
                ("variables".to_string(), variables.to_string()),
            ]
        );
    }

    #[test]
    fn the_version_is_the_matchs() {
        let body = json!({"data": {"match": {"id": "m1", "status": "LIVE", "version": 12,
                                             "score": {"home": 1, "away": 0}}}});
        assert_eq!(match_version(&body, "m1"), Some(12));
        // Another object's version is not the match's.
        let body =
            json!({"data": {"a": {"id": "m2", "version": 99}, "b": {"id": "m1", "version": 5}}});
        assert_eq!(match_version(&body, "m1"), Some(5));
        // A root field that selects no id is the match the query asked for.
        let body = json!({"data": {"score": {"version": 4, "score": {"home": 0, "away": 0}}}});
        assert_eq!(match_version(&body, "m1"), Some(4));
    }

    #[test]
    fn no_version_when_the_query_selects_none_or_fails() {
        let body = json!({"data": {"match": {"id": "m1", "score": {"home": 1, "away": 0}}}});
        assert_eq!(match_version(&body, "m1"), None);
        let body = json!({"data": {"match": {"id": "m2", "version": 3}}});
        assert_eq!(match_version(&body, "m1"), None);
        let body = json!({"data": null, "errors": [{"message": "NOT_FOUND"}]});
        assert_eq!(match_version(&body, "m1"), None);
        assert_eq!(match_version(&json!({"errors": []}), "m1"), None);
    }

    #[test]
    fn a_single_version_is_read_from_the_bytes() {
        let one = br#"{"data":{"match":{"id":"m","version":42,"score":{"home":1}}}}"#;
        assert_eq!(single_version(one), Some(42));
        let two = br#"{"data":{"a":{"version":1},"b":{"version":2}}}"#;
        assert_eq!(single_version(two), None, "ambiguous: parsed instead");
        assert_eq!(single_version(br#"{"data":{"match":null}}"#), None);
    }

    #[test]
    fn a_read_is_stale_only_below_the_version_answered_before_it_was_sent() {
        assert!(is_stale(4, 5));
        assert!(!is_stale(5, 5));
        assert!(!is_stale(6, 5));
        // Before any write is answered nothing is stale.
        assert!(!is_stale(1, 0));
    }

    #[test]
    fn the_floor_body_is_200_bytes_of_json() {
        let body = floor_body();
        assert_eq!(body.len(), FLOOR_BODY_LEN);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["match"]["status"], "LIVE");
    }

    #[test]
    fn requests_carry_the_query_in_the_body_or_the_url() {
        let variables = json!({"id": "m1"});
        let post = RequestSpec::new(Method::Post, SCORE_QUERY, &variables);
        assert_eq!(post.path, "/graphql");
        let sent: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(
            sent,
            json!({"query": SCORE_QUERY, "variables": {"id": "m1"}})
        );
        let r = post.build("127.0.0.1:1");
        assert_eq!(r.method(), hyper::Method::POST);
        assert_eq!(r.headers()["content-type"], "application/json");

        let get = RequestSpec::new(Method::Get, SCORE_QUERY, &variables);
        assert!(get.body.is_empty());
        let r = get.build("127.0.0.1:1");
        assert_eq!(r.method(), hyper::Method::GET);
        assert!(r.uri().query().unwrap().starts_with("query=query%28"));
    }
}
