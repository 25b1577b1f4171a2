//! CPU cost of one Lambda invocation's own work on a 100-record batch (50 event INSERTs and
//! 50 match MODIFYs over 5 matches, as recordEvent transactions produce them): decoding the
//! records into changes, then serializing and signing the change batch. A baseline in the
//! same run: merely parsing the event's JSON into a `serde_json::Value`.
//!
//! Run: `cargo bench -p scoreline-pipeline --bench handler` (optional env: `BENCH_ITERATIONS`,
//! default 200, after 20 warm-up iterations). Reports median and p90 of wall time and of the
//! thread's CPU time (CLOCK_THREAD_CPUTIME_ID), per iteration.

#[allow(dead_code)]
#[path = "../tests/common/records.rs"]
mod records;

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::Event;
use scoreline_core::publish::sign;
use scoreline_core::ChangeBatch;
use scoreline_pipeline::decode_batch;

const SECRET: &str = "bench-publish-secret";
const TIMESTAMP: i64 = 1_795_360_901;

#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is Linux's.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    // No per-thread CPU clock here: CPU columns repeat wall time.
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

struct Stats {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn measure(iterations: usize, warm_up: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..warm_up {
        f();
    }
    let mut wall = Vec::with_capacity(iterations);
    let mut cpu = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let (c0, w0) = (thread_cpu_time(), Instant::now());
        f();
        let (w1, c1) = (Instant::now(), thread_cpu_time());
        wall.push(w1 - w0);
        cpu.push(c1 - c0);
    }
    wall.sort();
    cpu.sort();
    Stats { wall, cpu }
}

fn report(name: &str, stats: &Stats) {
    println!(
        "{name:<44} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
        micros(percentile(&stats.wall, 0.5)),
        micros(percentile(&stats.wall, 0.9)),
        micros(percentile(&stats.cpu, 0.5)),
        micros(percentile(&stats.cpu, 0.9)),
    );
}

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let warm_up = 20;

    let stream = records::goal_rush(5, 50, 0);
    let raw = stream.event_text();
    let event: Event = serde_json::from_str(&raw).expect("a DynamoDB stream event");
    assert_eq!(event.records.len(), 100);
    let decoded = decode_batch(&event.records);
    assert_eq!((decoded.changes.len(), decoded.undecodable), (100, 0));
    let batch = ChangeBatch::new(decoded.changes.into_iter().map(|(_, c)| c).collect());
    let body = serde_json::to_vec(&batch).expect("JSON");

    println!(
        "stream-handler bench: 100 records (50 event INSERT + 50 match MODIFY, 5 matches); \
         event JSON {} bytes, change batch body {} bytes; {iterations} iterations after {warm_up} \
         warm-up; profile: {}",
        raw.len(),
        body.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimized"
        },
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>10}",
        "µs per batch", "wall p50", "wall p90", "cpu p50", "cpu p90"
    );

    let baseline = measure(iterations, warm_up, || {
        let v: serde_json::Value = serde_json::from_str(black_box(&raw)).unwrap();
        black_box(v);
    });
    report("baseline: JSON text -> serde_json::Value", &baseline);

    let parse = measure(iterations, warm_up, || {
        let e: Event = serde_json::from_str(black_box(&raw)).unwrap();
        black_box(e);
    });
    report("JSON text -> aws_lambda_events Event", &parse);

    let decode = measure(iterations, warm_up, || {
        black_box(decode_batch(black_box(&event.records)));
    });
    report("decode_batch (records -> changes)", &decode);

    let serialize_sign = measure(iterations, warm_up, || {
        let body = serde_json::to_vec(black_box(&batch)).unwrap();
        black_box(sign(SECRET, TIMESTAMP, &body));
    });
    report("serialize + sign the ChangeBatch", &serialize_sign);

    let handler = measure(iterations, warm_up, || {
        let decoded = decode_batch(black_box(&event.records));
        let batch = ChangeBatch::new(decoded.changes.into_iter().map(|(_, c)| c).collect());
        let body = serde_json::to_vec(&batch).unwrap();
        black_box(sign(SECRET, TIMESTAMP, &body));
    });
    report("decode + serialize + sign (the handler)", &handler);

    let end_to_end = measure(iterations, warm_up, || {
        let e: Event = serde_json::from_str(black_box(&raw)).unwrap();
        let decoded = decode_batch(&e.records);
        let batch = ChangeBatch::new(decoded.changes.into_iter().map(|(_, c)| c).collect());
        let body = serde_json::to_vec(&batch).unwrap();
        black_box(sign(SECRET, TIMESTAMP, &body));
    });
    report("parse Event + decode + serialize + sign", &end_to_end);
}
