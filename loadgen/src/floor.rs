//! `loadgen floor`: what one 120-byte WebSocket frame costs to write to a loopback TCP socket,
//! with no server around it: the floor under any server's cost per delivered message.
//!
//! This process accepts N loopback connections and, K times, writes one pre-built 120-byte text
//! frame to each of them from `--writers` tokio tasks (one per core by default). The reading
//! ends live in a child process (`loadgen floor-sink`) that drains them, so this process's CPU
//! time is the write path alone (on loopback that includes the kernel's delivery into the
//! receiving socket); the sink's CPU is reported separately.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use crate::procfs;
use crate::report::{self, Metrics};
use crate::stats::percentile;

#[derive(Args, Clone, Debug)]
pub struct FloorArgs {
    /// Loopback sockets written to.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Rounds: one frame to every socket per round.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Pause between rounds, so the readers drain as they would between score updates.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Writer tasks sharing the sockets (default: one per core).
    #[arg(long)]
    pub writers: Option<usize>,
    /// Repeat the measurement (fresh sockets and sink each time); prints medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Also print one JSON line per run and one for the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone, Debug)]
pub struct SinkArgs {
    /// The `floor` listener to connect to.
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub sockets: usize,
}

/// The size of a `next` frame of the bench's subscription.
pub const FRAME_LEN: usize = 120;

/// A server-to-client (unmasked) WebSocket text frame of exactly `FRAME_LEN` bytes, shaped like
/// a `matchUpdated` `next` message.
pub fn frame() -> Vec<u8> {
    let payload_len = FRAME_LEN - 2;
    let shape = |id: &str| {
        format!(
            r#"{{"type":"next","id":"1","payload":{{"data":{{"matchUpdated":{{"id":"{id}","version":123,"score":{{"home":1,"away":0}}}}}}}}}}"#
        )
    };
    let pad = payload_len - shape("").len();
    let payload = shape(&"m".repeat(pad));
    let mut out = vec![0x81, payload_len as u8];
    out.extend_from_slice(payload.as_bytes());
    out
}

const MAX_SOCKETS_PER_PROCESS: usize = 19_000;

pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    if args.sockets == 0 || args.sockets > MAX_SOCKETS_PER_PROCESS {
        bail!(
            "--sockets must be between 1 and {MAX_SOCKETS_PER_PROCESS}: a process may hold at most \
             20,000 file descriptors here (a hard limit), and each side of the bench holds one per socket"
        );
    }
    let writers = args
        .writers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let config = json!({"sockets": args.sockets, "rounds": args.rounds,
                        "interval_ms": args.interval_ms, "writers": writers});
    let mut runs = Vec::new();
    for i in 1..=args.runs.max(1) {
        eprintln!("run {i}/{}: {config}", args.runs.max(1));
        let bound = Duration::from_secs(120 + args.rounds as u64 * (1 + args.interval_ms / 1000));
        let metrics = tokio::time::timeout(bound, run_once(&args, writers))
            .await
            .with_context(|| format!("run {i} did not finish in {}s", bound.as_secs()))??;
        if args.json {
            println!("{}", metrics.to_json("floor", Value::from(i), &config));
        }
        runs.push(metrics);
    }
    println!("{}", report::table(&runs));
    if args.json && runs.len() > 1 {
        println!(
            "{}",
            report::medians(&runs).to_json("floor", Value::from("median"), &config)
        );
    }
    Ok(())
}

async fn run_once(args: &FloorArgs, writers: usize) -> anyhow::Result<Metrics> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sink = Command::new(std::env::current_exe()?)
        .args([
            "floor-sink",
            "--addr",
            &addr.to_string(),
            "--sockets",
            &args.sockets.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning the floor-sink child")?;
    let mut sink = KillOnDrop(sink);
    let sink = &mut sink.0;
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    let stdout = sink.stdout.take().context("sink stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut sockets = Vec::with_capacity(args.sockets);
    while sockets.len() < args.sockets {
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
            .await
            .context("the sink stopped connecting")??;
        s.set_nodelay(true)?;
        // The sink holds a connect slot until this byte arrives, so connections waiting to be
        // accepted never exceed its concurrency and the listen backlog never overflows
        // (an overflowed backlog drops the handshake's last ACK silently).
        s.write_all(b"!").await?;
        sockets.push(s);
    }
    match tokio::time::timeout(Duration::from_secs(30), lines.recv()).await {
        Ok(Some(line)) if line == "ready" => {}
        other => bail!("the sink did not get ready: {other:?}"),
    }

    // Split the sockets over the writer tasks; each round is a message to every writer.
    let frame: Arc<[u8]> = frame().into();
    let mut rounds_tx = Vec::new();
    let (done_tx, mut done_rx) = mpsc::channel::<usize>(writers);
    let per = args.sockets.div_ceil(writers);
    let mut chunks: Vec<Vec<TcpStream>> = Vec::new();
    while !sockets.is_empty() {
        let rest = sockets.split_off(per.min(sockets.len()));
        chunks.push(std::mem::replace(&mut sockets, rest));
    }
    for mut chunk in chunks {
        let (tx, mut rx) = mpsc::channel::<()>(1);
        rounds_tx.push(tx);
        let (frame, done) = (frame.clone(), done_tx.clone());
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                let mut written = 0;
                for s in chunk.iter_mut() {
                    // The non-blocking write is the common case; await only a full buffer.
                    let ok = match s.try_write(&frame) {
                        Ok(n) if n == frame.len() => true,
                        Ok(n) => s.write_all(&frame[n..]).await.is_ok(),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            s.write_all(&frame).await.is_ok()
                        }
                        Err(_) => false,
                    };
                    written += usize::from(ok);
                }
                if done.send(written).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(done_tx);

    let load_average = procfs::load_average();
    let mut round_us = Vec::with_capacity(args.rounds);
    let mut cpu = Duration::ZERO;
    let mut writes = 0usize;
    for r in 0..args.rounds {
        if r > 0 {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
        let cpu0 = procfs::self_cpu_time();
        let t0 = Instant::now();
        for tx in &rounds_tx {
            tx.send(()).await.context("a writer stopped")?;
        }
        for _ in 0..rounds_tx.len() {
            writes += done_rx.recv().await.context("a writer stopped")?;
        }
        round_us.push(t0.elapsed().as_micros() as u64);
        cpu += procfs::self_cpu_time().saturating_sub(cpu0);
    }
    // Closing the writers closes the sockets: the sink sees EOF everywhere and reports.
    drop(rounds_tx);
    let sink_report = tokio::time::timeout(Duration::from_secs(60), lines.recv())
        .await
        .ok()
        .flatten()
        .and_then(|l| serde_json::from_str::<Value>(&l).ok());
    let _ = sink.wait();

    round_us.sort_unstable();
    let expected_writes = args.sockets * args.rounds;
    let mut m = Metrics::default();
    m.push("writes", "frames written", "", writes as f64);
    m.push(
        "failed_writes",
        "failed writes",
        "",
        (expected_writes - writes) as f64,
    );
    m.push(
        "cpu_us_per_write",
        "writer CPU per write",
        "µs",
        (writes > 0).then(|| cpu.as_secs_f64() * 1e6 / writes as f64),
    );
    m.push(
        "round_p50_ms",
        "time per round p50",
        "ms",
        percentile(&round_us, 50.0).map(|u| u as f64 / 1000.0),
    );
    m.push(
        "round_max_ms",
        "time per round max",
        "ms",
        round_us.last().map(|u| *u as f64 / 1000.0),
    );
    let sink_cpu = sink_report.as_ref().and_then(|r| r["cpu_s"].as_f64());
    let sink_bytes = sink_report.as_ref().and_then(|r| r["bytes"].as_f64());
    m.push("sink_cpu_s", "reader (child) CPU", "s", sink_cpu);
    m.push(
        "sink_cpu_us_per_frame",
        "reader CPU per frame",
        "µs",
        sink_cpu
            .filter(|_| writes > 0)
            .map(|c| c * 1e6 / writes as f64),
    );
    m.push("sink_bytes", "bytes the reader received", "", sink_bytes);
    m.push("load_average", "load average at start", "", load_average);
    if sink_bytes != Some((writes * FRAME_LEN) as f64) {
        m.notes.push(format!(
            "the reader received {sink_bytes:?} frame bytes, expected {}",
            writes * FRAME_LEN
        ));
    }
    Ok(m)
}

/// Ends a child (the sink here, `http`'s floor server) however a run ends: a failed run must
/// not leave it holding sockets.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The reading ends: connect (each waiting for the writer's one-byte hello), say `ready`, drain
/// until every socket is closed, then print this process's CPU time and the frame bytes read
/// (the hellos not counted) as one JSON line.
pub async fn sink(args: SinkArgs) -> anyhow::Result<()> {
    let sem = Arc::new(Semaphore::new(200));
    let mut connects = tokio::task::JoinSet::new();
    for _ in 0..args.sockets {
        let (sem, addr) = (sem.clone(), args.addr.clone());
        connects.spawn(async move {
            let _permit = sem.acquire().await;
            let mut s = TcpStream::connect(addr).await?;
            let mut hello = [0u8; 1];
            s.read_exact(&mut hello).await?;
            std::io::Result::Ok(s)
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    while let Some(s) = connects.join_next().await {
        let mut s = s?.context("connecting to the floor listener")?;
        readers.spawn(async move {
            let mut buf = [0u8; 4096];
            let mut total = 0u64;
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        });
    }
    println!("ready");
    // The connect phase is not part of the reader's per-frame cost.
    let cpu_ready = procfs::self_cpu_time();
    let mut bytes = 0u64;
    while let Some(n) = readers.join_next().await {
        bytes += n?;
    }
    println!(
        "{}",
        json!({"cpu_s": procfs::self_cpu_time().saturating_sub(cpu_ready).as_secs_f64(), "bytes": bytes})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_a_120_byte_unmasked_text_frame_of_json() {
        let f = frame();
        assert_eq!(f.len(), FRAME_LEN);
        assert_eq!(f[0], 0x81, "FIN + text");
        assert_eq!(f[1] as usize, FRAME_LEN - 2, "unmasked, 7-bit length");
        let v: Value = serde_json::from_slice(&f[2..]).unwrap();
        assert_eq!(v["payload"]["data"]["matchUpdated"]["version"], 123);
    }
}
