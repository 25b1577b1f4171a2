//! `stream-handler`: the Lambda (default, under the Lambda runtime) or the local poller
//! (`stream-handler poll`, cargo feature `poller`), both publishing change batches: signed to
//! the API (`SINK=http`, the default) or straight to Redis pub/sub (`SINK=redis`). A thin
//! binary: the work is `scoreline-pipeline`'s; this reads the configuration, builds the sink
//! and runs the Lambda runtime or the poller.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::dynamodb::Event;
use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use scoreline_core::Secret;
use scoreline_pipeline::lambda::handle_event;
#[cfg(feature = "poller")]
use scoreline_pipeline::poller::{self, PollerConfig, StartPosition};
use scoreline_pipeline::retry::RetryPolicy;
#[cfg(feature = "redis")]
use scoreline_pipeline::sink::RedisPublisher;
use scoreline_pipeline::sink::{HttpPublisher, Sink};

#[derive(Parser, Debug)]
#[command(
    name = "stream-handler",
    version,
    about = "DynamoDB stream records in, Scoreline change batches out"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Where change batches go: `http` (the API's signed publish endpoint) or `redis` (Redis
    /// pub/sub, read by every API instance with BROKER=redis).
    #[arg(long, env = "SINK", value_enum, default_value = "http", global = true)]
    sink: SinkKind,
    /// The Redis server (SINK=redis), e.g. redis://my-cache.example.internal:6379.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    redis_url: Option<Secret>,
    /// The API's publish endpoint, e.g. https://api.example.com/internal/publish.
    #[arg(long, env = "PUBLISH_URL", global = true)]
    publish_url: Option<String>,
    /// The shared secret that signs publish requests.
    #[arg(long, env = "PUBLISH_SECRET", hide_env_values = true, global = true)]
    publish_secret: Option<Secret>,
    /// Timeout of one publish request, in milliseconds.
    #[arg(
        long,
        env = "PUBLISH_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    publish_timeout_ms: u64,
    /// Most attempts per publish.
    #[arg(long, env = "PUBLISH_MAX_ATTEMPTS", default_value_t = 8, global = true)]
    publish_max_attempts: u32,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SinkKind {
    Http,
    Redis,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run under the Lambda runtime (the default).
    Lambda,
    /// Poll a table's DynamoDB stream (e.g. on DynamoDB Local) and publish its changes.
    #[cfg(feature = "poller")]
    Poll(PollArgs),
}

#[cfg(feature = "poller")]
#[derive(clap::Args, Debug)]
struct PollArgs {
    #[arg(long, env = "DYNAMODB_TABLE", default_value = "scoreline")]
    table: String,
    /// Endpoint override, e.g. DynamoDB Local at http://127.0.0.1:8000.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    endpoint: Option<String>,
    /// Use fixed dummy credentials (DynamoDB Local accepts any).
    #[arg(long, env = "DYNAMODB_LOCAL", default_value_t = false, action = clap::ArgAction::Set)]
    local: bool,
    #[arg(long, value_enum, default_value = "latest")]
    from: From,
    /// Milliseconds between polls of an idle stream.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
}

#[cfg(feature = "poller")]
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum From {
    Latest,
    TrimHorizon,
}

fn publisher(cli: &Cli) -> anyhow::Result<Sink> {
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(cli.publish_timeout_ms),
        max_attempts: cli.publish_max_attempts.max(1),
        ..RetryPolicy::default()
    };
    match cli.sink {
        SinkKind::Http => {
            let url = cli
                .publish_url
                .clone()
                .context("PUBLISH_URL (or --publish-url) is required")?;
            let secret = cli
                .publish_secret
                .clone()
                .context("PUBLISH_SECRET (or --publish-secret) is required")?;
            Ok(Sink::Http(HttpPublisher::new(url, secret, policy)?))
        }
        #[cfg(feature = "redis")]
        SinkKind::Redis => {
            let url = cli
                .redis_url
                .as_ref()
                .context("REDIS_URL (or --redis-url) is required with SINK=redis")?;
            Ok(Sink::Redis(Box::new(
                RedisPublisher::new(url.expose(), policy).context("invalid REDIS_URL")?,
            )))
        }
        #[cfg(not(feature = "redis"))]
        SinkKind::Redis => {
            anyhow::bail!("this build has no Redis sink: build with the `redis` feature")
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Built once per process and reused by every invocation.
    let publisher = Arc::new(publisher(&cli)?);
    match &cli.command {
        None | Some(Command::Lambda) => run_lambda(publisher).await,
        #[cfg(feature = "poller")]
        Some(Command::Poll(args)) => run_poller(args, publisher).await,
    }
}

/// Time kept in reserve at the end of an invocation to answer the runtime.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

async fn run_lambda(publisher: Arc<Sink>) -> anyhow::Result<()> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let publisher = publisher.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = std::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);
            let (response, report) =
                handle_event(&event.payload, publisher.as_ref(), Some(deadline)).await;
            tracing::info!(
                records = event.payload.records.len(),
                delivered = report.delivered,
                ignored = report.ignored,
                undecodable = report.undecodable,
                failed_at = report.failed_at.as_deref().unwrap_or(""),
                "invocation handled"
            );
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
}

#[cfg(feature = "poller")]
async fn run_poller(args: &PollArgs, publisher: Arc<Sink>) -> anyhow::Result<()> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if args.local {
        loader = loader
            .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "scoreline-local",
            ))
            .region(aws_config::Region::new("us-east-1"));
    }
    let sdk = loader.load().await;
    let stream_arn = stream_arn(&sdk, &args.table).await?;
    tracing::info!(table = %args.table, %stream_arn, "polling the table's stream");
    let config = PollerConfig {
        stream_arn,
        interval: Duration::from_millis(args.interval_ms.max(10)),
        start: match args.from {
            From::Latest => StartPosition::Latest,
            From::TrimHorizon => StartPosition::TrimHorizon,
        },
        batch_size: 1000,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    poller::run(poller::client(&sdk), config, publisher, stop)
        .await
        .context("polling the stream")
}

/// The newest stream of the table, found through DynamoDB Streams' ListStreams.
#[cfg(feature = "poller")]
async fn stream_arn(sdk: &aws_config::SdkConfig, table: &str) -> anyhow::Result<String> {
    let client = poller::client(sdk);
    let streams = client
        .list_streams()
        .table_name(table)
        .send()
        .await
        .with_context(|| format!("listing the streams of table {table}"))?;
    streams
        .streams()
        .last()
        .and_then(|s| s.stream_arn())
        .map(str::to_string)
        .with_context(|| format!("table {table} has no stream: create it with `api init-table`"))
}
