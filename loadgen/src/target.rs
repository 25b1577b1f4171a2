//! The server under load: spawned by the tool (a fresh process per run) or one already running,
//! plus an admin token and the GraphQL calls that seed and drive it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use rand::Rng;
use serde_json::{json, Value};

use crate::procfs;

/// How to reach (or start) the server; shared by `ws` and `http`.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// The server binary to spawn for each run. Build it first with
    /// `cargo build --release -p api -p loadgen`. Default: `$CARGO_TARGET_DIR/release/api`,
    /// else `/root/.cache/scoreline-target/release/api`, else `target/release/api`.
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Extra environment for the spawned server, e.g. `--server-env WS_KEEPALIVE_SECS=60`
    /// or `--server-env RUST_LOG=warn` (repeatable).
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
    /// Where the spawned server's logs go (JSON lines); discarded by default.
    #[arg(long)]
    pub server_log: Option<PathBuf>,
    /// Use a running server instead of spawning one, e.g. http://127.0.0.1:8080. Every run
    /// then reuses it.
    #[arg(long)]
    pub url: Option<String>,
    /// The running server's pid, for its RSS and CPU time (with `--url`).
    #[arg(long, requires = "url")]
    pub server_pid: Option<u32>,
    /// The running server's AUTH_JWT_SECRET, to mint an admin token (with `--url`).
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// A server to load: its base URL, pid (when known) and an admin token.
pub struct Target {
    pub base: String,
    pub pid: Option<u32>,
    pub token: String,
    child: Option<Child>,
}

impl Target {
    pub async fn start(args: &TargetArgs) -> anyhow::Result<Target> {
        if let Some(url) = &args.url {
            let secret = args.jwt_secret.clone().context(
                "--url needs the server's --jwt-secret (or AUTH_JWT_SECRET) to mint an admin token",
            )?;
            let target = Target {
                base: url.trim_end_matches('/').to_string(),
                pid: args.server_pid,
                token: mint_admin(&secret)?,
                child: None,
            };
            target.wait_healthy(Duration::from_secs(10)).await?;
            return Ok(target);
        }
        let bin = args.server_bin.clone().unwrap_or_else(default_server_bin);
        if !bin.exists() {
            bail!(
                "no server binary at {}: build it with `cargo build --release -p api -p loadgen` or pass --server-bin",
                bin.display()
            );
        }
        let secret: String = {
            let mut rng = rand::thread_rng();
            (0..32)
                .map(|_| format!("{:02x}", rng.gen::<u8>()))
                .collect()
        };
        let port = free_port()?;
        let log = match &args.server_log {
            Some(path) => Stdio::from(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&bin);
        cmd.env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("AUTH_JWT_SECRET", &secret)
            .env("DEMO", "false")
            .env("SIMULATE", "false")
            .env("STORE", "memory")
            .env("BROKER", "memory")
            .env("LOG_FORMAT", "json")
            // Every simulated client comes from 127.0.0.1, which no real deployment sees: the
            // per-address bounds and the rate limits would refuse the load itself.
            .env("MAX_STREAMS_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_SUBJECT", "0")
            // Settings that would change what is measured come from --server-env only.
            .env_remove("AUTH_JWKS_URL")
            .env_remove("AUTH_ISSUER")
            .env_remove("AUTH_AUDIENCE")
            .env_remove("PUBLISH_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for kv in &args.server_env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--server-env {kv:?}: expected KEY=VALUE"))?;
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let target = Target {
            base: format!("http://127.0.0.1:{port}"),
            pid: Some(child.id()),
            token: mint_admin(&secret)?,
            child: Some(child),
        };
        target.wait_healthy(Duration::from_secs(30)).await?;
        Ok(target)
    }

    pub fn ws_url(&self) -> String {
        format!("ws{}/graphql", self.base.trim_start_matches("http"))
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    /// The `host:port` part of the base URL.
    pub fn authority(&self) -> &str {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the server at {} did not become healthy", self.base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(|p| procfs::rss_kib(p).ok())
    }

    pub fn cpu_time(&self) -> Option<Duration> {
        self.pid.and_then(|p| procfs::cpu_time(p).ok())
    }

    /// Stops a spawned server (SIGKILL: its shutdown grace period would only add waiting).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The release server binary `loadgen` uses when none is named.
pub fn default_server_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("release/api");
    }
    let shared = PathBuf::from("/root/.cache/scoreline-target/release/api");
    if shared.exists() {
        return shared;
    }
    PathBuf::from("target/release/api")
}

/// A loopback port nobody listens on right now (the server binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// An HS256 admin token as the server expects (`sub`, `exp`, `cognito:groups`), valid 6 h.
pub fn mint_admin(secret: &str) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({
        "sub": "loadgen",
        "cognito:groups": ["admin"],
        "iat": now,
        "exp": now + 6 * 3600,
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// GraphQL over HTTP with the admin token, on one keep-alive client.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Admin {
    pub fn new(target: &Target) -> anyhow::Result<Admin> {
        Admin::at(&target.base, &target.token)
    }

    /// An admin client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn at(base: &str, token: &str) -> anyhow::Result<Admin> {
        Ok(Admin {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("{base}/graphql"),
            auth: format!("Bearer {token}"),
        })
    }

    /// Runs a query or mutation; returns `data`, or the errors as an error.
    pub async fn call(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .header("authorization", &self.auth)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .context("sending a GraphQL request")?;
        let status = resp.status();
        let body: Value = resp.json().await.context("reading a GraphQL response")?;
        if !status.is_success() || body.get("errors").is_some() {
            bail!("GraphQL request failed ({status}): {body}");
        }
        Ok(body["data"].clone())
    }

    /// A competition, two teams and `matches` LIVE matches; returns each match's id and
    /// version.
    pub async fn seed(&self, matches: usize) -> anyhow::Result<Vec<(String, u32)>> {
        let c = self
            .call(
                "mutation($i: CreateCompetitionInput!) { createCompetition(input: $i) { id } }",
                json!({"i": {"name": "Load League", "sport": "SOCCER", "season": "2026"}}),
            )
            .await?["createCompetition"]["id"]
            .as_str()
            .context("competition id")?
            .to_string();
        let mut teams = Vec::new();
        for name in ["Load Home", "Load Away"] {
            let t = self
                .call(
                    "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id } }",
                    json!({"i": {"name": name, "sport": "SOCCER", "competitionIds": [c]}}),
                )
                .await?["createTeam"]["id"]
                .as_str()
                .context("team id")?
                .to_string();
            teams.push(t);
        }
        let mut out = Vec::with_capacity(matches);
        for _ in 0..matches {
            let m = self
                .call(
                    "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id } }",
                    json!({"i": {"competitionId": c, "homeTeamId": teams[0], "awayTeamId": teams[1],
                                 "startTime": "2026-11-22T15:00:00Z", "venue": "Load Ground"}}),
                )
                .await?["createMatch"]["id"]
                .as_str()
                .context("match id")?
                .to_string();
            let v = self
                .call(
                    "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { version } }",
                    json!({"i": {"matchId": m, "status": "LIVE"}}),
                )
                .await?["setMatchStatus"]["version"]
                .as_u64()
                .context("match version")?;
            out.push((m, v as u32));
        }
        Ok(out)
    }

    /// An `updateScore` whose score differs from the previous step's; returns the new version.
    pub async fn update_score(&self, match_id: &str, step: u64) -> anyhow::Result<u32> {
        let (home, away) = score_for_step(step);
        let data = self
            .call(
                "mutation($i: UpdateScoreInput!) { updateScore(input: $i) { version } }",
                json!({"i": {"matchId": match_id, "home": home, "away": away}}),
            )
            .await?;
        Ok(data["updateScore"]["version"]
            .as_u64()
            .context("updateScore version")? as u32)
    }

    /// Sets the clock of `match_id` to a reading that differs from step `step - 1`'s; returns
    /// the new version.
    pub async fn update_clock(&self, match_id: &str, step: u64) -> anyhow::Result<u32> {
        let data = self
            .call(
                "mutation($i: UpdateClockInput!) { updateClock(input: $i) { version } }",
                json!({"i": {"matchId": match_id, "elapsedSeconds": clock_for_step(step)}}),
            )
            .await?;
        Ok(data["updateClock"]["version"]
            .as_u64()
            .context("updateClock version")? as u32)
    }

    /// One update of the kind asked for.
    pub async fn update(
        &self,
        kind: crate::ws::Update,
        match_id: &str,
        step: u64,
    ) -> anyhow::Result<u32> {
        match kind {
            crate::ws::Update::Score => self.update_score(match_id, step).await,
            crate::ws::Update::Clock => self.update_clock(match_id, step).await,
        }
    }
}

/// Clock readings stay within the schema's bound (21,600 s) and consecutive steps differ.
pub fn clock_for_step(step: u64) -> u64 {
    step % 21_600
}

/// Scores stay within the schema's bound (999) and consecutive steps always differ.
pub fn score_for_step(step: u64) -> (u64, u64) {
    (1 + step % 999, (step / 999) % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_steps_set_different_valid_scores() {
        for step in 0..5000u64 {
            let (h, a) = score_for_step(step);
            assert!(h <= 999 && a <= 999);
            assert_ne!(score_for_step(step), score_for_step(step + 1));
            assert!(clock_for_step(step) <= 21_600);
            assert_ne!(clock_for_step(step), clock_for_step(step + 1));
        }
    }

    #[test]
    fn the_minted_token_carries_the_admin_group() {
        let token = mint_admin("s3cret").unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["cognito:groups"], json!(["admin"]));
        assert_eq!(data.claims["sub"], "loadgen");
    }
}
