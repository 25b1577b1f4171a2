//! Cold start of the Lambda binary under a Lambda Runtime API emulator: the time from
//! spawning the process until its first `GET /runtime/invocation/next` reaches the emulator
//! (init), and then the first invocation (a 14-record fixture event, published to a fake API)
//! from the event being queued until the response is posted.
//!
//! Run: `cargo bench -p stream-handler --bench cold_start` (the binary is then built with the
//! bench profile, i.e. release settings). Optional env: `COLD_START_RUNS` (default 5), after
//! one warm-up run that is not counted; `STREAM_HANDLER_BIN`, another build of the binary to
//! measure instead.

#[allow(dead_code)]
#[path = "../../pipeline/tests/common/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../../pipeline/tests/common/records.rs"]
mod records;
#[allow(dead_code)]
#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;

use std::time::{Duration, Instant};

use fake_api::FakeApi;
use runtime_api::{FunctionProcess, Outcome, RuntimeApi};

const SECRET: &str = "cold-start-secret";
const WAIT: Duration = Duration::from_secs(30);

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

async fn one_run(binary: &str, event: &str) -> (Duration, Duration) {
    let runtime = RuntimeApi::start().await;
    let api = FakeApi::start(SECRET).await;
    let start = Instant::now();
    let function = FunctionProcess::spawn(
        binary,
        &runtime.host(),
        &[
            ("PUBLISH_URL", api.url()),
            ("PUBLISH_SECRET", SECRET.to_string()),
        ],
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
    );
    let first_poll = runtime.next_poll(WAIT).await;
    let init = first_poll - start;
    let queued = Instant::now();
    let id = runtime.invoke(event.as_bytes());
    match runtime.next_outcome(WAIT).await {
        Some(Outcome::Response { request_id, body }) if request_id == id => {
            assert_eq!(body, serde_json::json!({"batchItemFailures": []}));
        }
        other => panic!("{other:?}\n{}", function.log_text()),
    }
    let first_invocation = queued.elapsed();
    api.next_accepted(WAIT).await;
    drop(function);
    (init, first_invocation)
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // Another build of the binary (e.g. a stripped copy, or the Lambda artifact's) can be
    // measured in its place.
    let binary = std::env::var("STREAM_HANDLER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_stream-handler").to_string());
    let binary = binary.as_str();
    let size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    let event = records::fixture_text("interleaved_matches.json");
    println!("cold start of {binary} ({size} bytes), {runs} runs after 1 warm-up");
    one_run(binary, &event).await;
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    for run in 1..=runs {
        let (init, first) = one_run(binary, &event).await;
        println!(
            "run {run}: init (spawn -> first GET /invocation/next) {:.2} ms; first invocation \
             (queued -> response posted) {:.2} ms",
            millis(init),
            millis(first)
        );
        inits.push(init);
        firsts.push(first);
    }
    let range = |v: &[Duration]| {
        (
            millis(*v.iter().min().unwrap()),
            millis(*v.iter().max().unwrap()),
        )
    };
    let (init_min, init_max) = range(&inits);
    let (first_min, first_max) = range(&firsts);
    println!(
        "init: median {:.2} ms (min {init_min:.2}, max {init_max:.2}); first invocation: median \
         {:.2} ms (min {first_min:.2}, max {first_max:.2})",
        millis(median(&inits)),
        millis(median(&firsts)),
    );
}
