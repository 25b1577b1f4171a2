//! A real `redis-server` for tests, on a free loopback port, without persistence. It can be
//! killed (SIGKILL, as a crash) and started again on the same port, or frozen (SIGSTOP, as a
//! network cut) and thawed. Stopped when dropped, and
//! when the thread that started it ends (so no server outlives a test).
//!
//! Debian's `redis-server` must be installed (`scripts/test` installs it): without it the
//! tests that need it fail with a message saying so.

use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The `redis-server` binary: `REDIS_SERVER` or the one on the `PATH`.
fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it accepts connections.
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("sending SIGKILL to redis-server");
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("redis-server exits after SIGKILL");
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, as when the
    /// network is cut without a FIN.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let pid = self
            .child
            .as_ref()
            .and_then(|c| c.id())
            .expect("redis-server is running");
        // SAFETY: kill(2) with the pid of a child this harness owns.
        let result = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(result, 0, "signalling redis-server");
    }

    /// Starts the server (again) on the same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let mut command = Command::new(binary());
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning", "--logfile", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        stop_with_parent_thread(&mut command);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start redis-server ({e}): install it (apt-get install redis-server; \
                 scripts/test does) or set REDIS_SERVER to its path"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on port {} within 20 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Has the kernel kill a child when the thread that spawned it ends, so a test that dies
/// leaves no server behind (`kill_on_drop` covers the orderly cases).
pub(crate) fn stop_with_parent_thread(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
