//! The production shape on one machine, as processes the chaos run can kill: DynamoDB Local,
//! redis-server, API instances on `BROKER=redis`, and the stream-handler's poller.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The shared secret the poller signs publish requests with.
const PUBLISH_SECRET: &str = "chaos-publish-secret-0123456789";

/// A loopback port nobody uses right now, below the kernel's ephemeral range: a process
/// restarted on its port must not find it taken by one of the run's own outgoing connections
/// (which take their local ports from that range).
pub fn free_port() -> anyhow::Result<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    for _ in 0..1000 {
        let port = low + rand::random::<u16>() % (high - low);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port between {low} and {high}")
}

/// Waits until something accepts connections on `port`.
async fn wait_listening(port: u16, within: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Has the kernel kill a child when this process dies, so a chaos run that is itself killed
/// leaves no server behind (`kill_on_drop` covers the orderly cases).
fn dies_with_parent(command: &mut Command) {
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

/// Where a child's output goes: a file in the log folder, or nowhere.
fn log_to(dir: Option<&Path>, name: &str) -> anyhow::Result<Stdio> {
    let Some(dir) = dir else {
        return Ok(Stdio::null());
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .with_context(|| format!("opening {}/{name}.log", dir.display()))?;
    Ok(Stdio::from(file))
}

/// A child process that can be killed, stopped and started again with the same command.
pub struct Proc {
    name: String,
    child: Option<Child>,
}

impl Proc {
    fn spawn(name: &str, mut command: Command) -> anyhow::Result<Proc> {
        command.stdin(Stdio::null()).kill_on_drop(true);
        dies_with_parent(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
        })
    }

    fn signal(&self, signal: i32) -> anyhow::Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .with_context(|| format!("{} is not running", self.name))?;
        // SAFETY: kill(2) on a child this process owns.
        if unsafe { libc::kill(pid as i32, signal) } != 0 {
            bail!(
                "signalling {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
            child.wait().await.ok();
        }
        Ok(())
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// Whether it exited on its own (the poller must not).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

/// Everything the cluster's processes are started from.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub api: PathBuf,
    pub stream_handler: PathBuf,
    pub redis_server: PathBuf,
    pub dynamodb_local_dir: PathBuf,
    /// Where each process's output goes (`<name>.log`); discarded when absent.
    pub log_dir: Option<PathBuf>,
}

/// Where the poller sends change batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Signed HTTP to the first instance's `/internal/publish`.
    Http,
    /// Redis pub/sub, heard by every instance.
    Redis,
}

impl Sink {
    pub fn name(self) -> &'static str {
        match self {
            Sink::Http => "http",
            Sink::Redis => "redis",
        }
    }

    pub fn other(self) -> Sink {
        match self {
            Sink::Http => Sink::Redis,
            Sink::Redis => Sink::Http,
        }
    }
}

/// The processes of one chaos run.
pub struct Cluster {
    bin: Binaries,
    pub jwt_secret: String,
    table: String,
    pub dynamodb: Proc,
    dynamodb_port: u16,
    pub redis: Proc,
    redis_port: u16,
    /// API instances by index, each on a port of its own that it keeps across restarts.
    pub instances: Vec<Proc>,
    pub ports: Vec<u16>,
    pub poller: Proc,
    pub sink: Sink,
}

impl Cluster {
    pub async fn start(bin: Binaries, instances: usize, sink: Sink) -> anyhow::Result<Cluster> {
        for (what, path) in [("api", &bin.api), ("stream-handler", &bin.stream_handler)] {
            if !path.exists() {
                bail!(
                    "no {what} binary at {}: build it (cargo build --release -p api -p stream-handler -p loadgen) or pass its flag",
                    path.display()
                );
            }
        }
        let jar = bin.dynamodb_local_dir.join("DynamoDBLocal.jar");
        if !jar.exists() {
            bail!(
                "DynamoDB Local is not at {}: run scripts/install-dynamodb-local (scripts/test does) or pass --dynamodb-local-dir",
                jar.display()
            );
        }
        let dynamodb_port = free_port()?;
        let dynamodb = Proc::spawn("dynamodb-local", {
            let mut c = Command::new("java");
            c.args([
                "-Djava.library.path=DynamoDBLocal_lib",
                "-jar",
                "DynamoDBLocal.jar",
            ])
            .args(["-inMemory", "-port", &dynamodb_port.to_string()])
            .current_dir(&bin.dynamodb_local_dir)
            .stdout(log_to(bin.log_dir.as_deref(), "dynamodb-local")?)
            .stderr(log_to(bin.log_dir.as_deref(), "dynamodb-local")?);
            c
        })?;
        wait_listening(dynamodb_port, Duration::from_secs(60), "DynamoDB Local").await?;
        let redis_port = free_port()?;
        let mut cluster = Cluster {
            redis: Proc::spawn("redis-server", Self::redis_command(&bin, redis_port)?)?,
            bin,
            jwt_secret: format!("chaos-{}-{}", std::process::id(), rand::random::<u64>()),
            table: format!("chaos-{}", std::process::id()),
            dynamodb,
            dynamodb_port,
            redis_port,
            instances: Vec::new(),
            ports: Vec::new(),
            poller: Proc {
                name: "poller".into(),
                child: None,
            },
            sink,
        };
        wait_listening(redis_port, Duration::from_secs(20), "redis-server").await?;
        for i in 0..instances {
            let port = free_port()?;
            cluster.ports.push(port);
            // The first instance creates the table; the others start once it exists.
            let instance = cluster.spawn_api(i)?;
            cluster.instances.push(instance);
            cluster.wait_ready(i).await?;
        }
        cluster.poller = cluster.spawn_poller(sink)?;
        Ok(cluster)
    }

    fn redis_command(bin: &Binaries, port: u16) -> anyhow::Result<Command> {
        let mut c = Command::new(&bin.redis_server);
        c.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(log_to(bin.log_dir.as_deref(), "redis-server")?)
            .stderr(log_to(bin.log_dir.as_deref(), "redis-server")?);
        Ok(c)
    }

    fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    fn dynamodb_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.dynamodb_port)
    }

    pub fn base(&self, instance: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[instance])
    }

    fn spawn_api(&self, i: usize) -> anyhow::Result<Proc> {
        let name = format!("api-{i}");
        let mut c = Command::new(&self.bin.api);
        c.env("HOST", "127.0.0.1")
            .env("PORT", self.ports[i].to_string())
            .env("STORE", "dynamodb")
            .env("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_endpoint())
            .env("DYNAMODB_LOCAL", "true")
            .env("DYNAMODB_TABLE", &self.table)
            .env("DYNAMODB_CREATE_TABLE", (i == 0).to_string())
            .env("STREAM_POLL", "false")
            .env("BROKER", "redis")
            .env("REDIS_URL", self.redis_url())
            .env("AUTH_JWT_SECRET", &self.jwt_secret)
            .env("PUBLISH_SECRET", PUBLISH_SECRET)
            .env("DEMO", "false")
            .env("SIMULATE", "false")
            .env("GRAPHIQL", "false")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            // Every client of the run comes from 127.0.0.1: per-address bounds and rates
            // would refuse the load itself.
            .env("MAX_STREAMS_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_SUBJECT", "0")
            .env_remove("AUTH_JWKS_URL")
            .env_remove("AUTH_ISSUER")
            .env_remove("AUTH_AUDIENCE")
            .stdout(Stdio::null())
            .stderr(log_to(self.bin.log_dir.as_deref(), &name)?);
        Proc::spawn(&name, c)
    }

    fn spawn_poller(&self, sink: Sink) -> anyhow::Result<Proc> {
        let mut c = Command::new(&self.bin.stream_handler);
        c.arg("poll")
            .args([
                "--table",
                &self.table,
                "--endpoint",
                &self.dynamodb_endpoint(),
            ])
            .args([
                "--local",
                "true",
                "--from",
                "trim-horizon",
                "--interval-ms",
                "20",
            ])
            .env("SINK", sink.name())
            .env("PUBLISH_URL", format!("{}/internal/publish", self.base(0)))
            .env("PUBLISH_SECRET", PUBLISH_SECRET)
            .env("REDIS_URL", self.redis_url())
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_to(self.bin.log_dir.as_deref(), "poller")?);
        Proc::spawn("poller", c)
    }

    /// Waits until instance `i` answers `GET /readyz` with 200.
    pub async fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/readyz", self.base(i)))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("api-{i} was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills redis-server and starts it again on the same port after `down`.
    pub async fn restart_redis(&mut self, down: Duration) -> anyhow::Result<()> {
        self.redis.kill().await?;
        tokio::time::sleep(down).await;
        self.redis = Proc::spawn(
            "redis-server",
            Self::redis_command(&self.bin, self.redis_port)?,
        )?;
        wait_listening(self.redis_port, Duration::from_secs(20), "redis-server").await
    }

    /// SIGKILLs instance `i` and starts it again on its port after `down`.
    pub async fn restart_api(&mut self, i: usize, down: Duration) -> anyhow::Result<()> {
        self.instances[i].kill().await?;
        tokio::time::sleep(down).await;
        self.instances[i] = self.spawn_api(i)?;
        self.wait_ready(i).await
    }

    /// SIGKILLs the poller and starts it again after `down`, on `sink`. It reads the stream
    /// from its trim horizon again, as a Lambda whose checkpoint was lost would: every change
    /// is delivered again, which the instances must deduplicate.
    pub async fn restart_poller(&mut self, sink: Sink, down: Duration) -> anyhow::Result<()> {
        self.poller.kill().await?;
        tokio::time::sleep(down).await;
        self.poller = self.spawn_poller(sink)?;
        self.sink = sink;
        Ok(())
    }

    /// SIGSTOPs DynamoDB Local for `down`, then SIGCONTs it.
    pub async fn pause_dynamodb(&mut self, down: Duration) -> anyhow::Result<()> {
        self.dynamodb.stop()?;
        tokio::time::sleep(down).await;
        self.dynamodb.resume()
    }
}
