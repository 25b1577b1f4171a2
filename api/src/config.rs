//! Configuration, 12-factor style: every setting is a flag and an environment variable, with a
//! default that runs the embedded server on loopback.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scoreline_core::Secret;

use crate::auth::AuthConfig;
use crate::graphql::persisted::Required;
use crate::http::{ConsoleSignIn, ConsoleToken, SignInConfig};

#[derive(Parser, Debug)]
#[command(
    name = "api",
    version,
    about = "Scoreline: live sports scores over GraphQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Print a token signed with AUTH_JWT_SECRET.
    Token(TokenArgs),
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    Schema,
    /// Create the DynamoDB table (indexes, stream, TTL) if it does not exist.
    InitTable,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// admin or operator.
    #[arg(long)]
    pub role: String,
    /// The token's subject.
    #[arg(long, default_value = "scoreline-cli")]
    pub sub: String,
    /// Lifetime, e.g. 90s, 15m, 1h, 2d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// HS256 secret (defaults to AUTH_JWT_SECRET).
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,
    #[arg(long, env = "AUTH_ISSUER")]
    pub issuer: Option<String>,
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub audience: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In memory, with an in-process change feed.
    Memory,
    /// Amazon DynamoDB (or DynamoDB Local), one table.
    Dynamodb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamStart {
    /// Only changes made after start-up.
    Latest,
    /// Everything the stream still holds.
    TrimHorizon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// In-process fan-out.
    Memory,
    /// Redis pub/sub (REDIS_URL), shared by every API instance.
    Redis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal, text when it is.
    Auto,
    Json,
    Text,
}

#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to bind; loopback unless configured.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Serve `/metrics` on this address (e.g. 127.0.0.1:9090) and not on the public port, so
    /// a load balancer in front of the public port never exposes it.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[arg(long, env = "STORE", value_enum, default_value = "memory")]
    pub store: StoreKind,
    #[arg(long, env = "BROKER", value_enum, default_value = "memory")]
    pub broker: BrokerKind,
    /// The Redis server with BROKER=redis, e.g. redis://127.0.0.1:6379 (a password goes in the
    /// URL, from the environment; it is never logged).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// The DynamoDB table (with STORE=dynamodb).
    #[arg(long, env = "DYNAMODB_TABLE", default_value = "scoreline")]
    pub dynamodb_table: String,
    /// Endpoint override, e.g. DynamoDB Local at http://127.0.0.1:8000.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub dynamodb_endpoint: Option<String>,
    /// Use fixed dummy credentials (DynamoDB Local accepts any).
    #[arg(long, env = "DYNAMODB_LOCAL", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub dynamodb_local: bool,
    /// Create the table at start-up if it does not exist (as `api init-table` does).
    #[arg(long, env = "DYNAMODB_CREATE_TABLE", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub dynamodb_create_table: bool,
    /// Read the table's DynamoDB stream in this process and publish its changes (local
    /// development, or a single instance without the stream-handler Lambda).
    #[arg(long, env = "STREAM_POLL", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub stream_poll: bool,
    /// Where the stream poller starts on the shards it finds at start-up.
    #[arg(long, env = "STREAM_POLL_FROM", value_enum, default_value = "latest")]
    pub stream_poll_from: StreamStart,
    /// Milliseconds between polls of an idle stream.
    #[arg(long, env = "STREAM_POLL_INTERVAL_MS", default_value_t = 200)]
    pub stream_poll_interval_ms: u64,
    /// Records the memory store's change feed holds (STORE=memory): when the pipeline falls
    /// this far behind, writes wait for room.
    #[arg(long, env = "CHANGE_FEED_CAPACITY", default_value_t = crate::store::memory::DEFAULT_FEED_CAPACITY)]
    pub change_feed_capacity: usize,
    /// Milliseconds a write waits for room in a full change feed before it fails with
    /// SERVICE_UNAVAILABLE (nothing written).
    #[arg(long, env = "CHANGE_FEED_WAIT_MS", default_value_t = 5000)]
    pub change_feed_wait_ms: u64,

    /// HS256 secret for tokens; without it (and without a JWKS URL) a random secret is made for
    /// the process and an admin token printed at start-up.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<Secret>,
    /// JWKS URL for RS256 tokens (e.g. a Cognito user pool's).
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,
    /// Required `iss` of tokens, when set.
    #[arg(long, env = "AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// Required `aud` (or `client_id`) of tokens, when set.
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Secret for signed `POST /internal/publish` requests; the endpoint is off without it.
    #[arg(long, env = "PUBLISH_SECRET", hide_env_values = true)]
    pub publish_secret: Option<Secret>,
    /// The secret before a rotation, accepted as well while senders move to the new one
    /// (docs/deploy.md: rotating the publish secret).
    #[arg(long, env = "PUBLISH_SECRET_PREVIOUS", hide_env_values = true)]
    pub publish_secret_previous: Option<Secret>,
    /// Signed publish requests remembered (about 110 bytes each) to refuse their replays
    /// within the 300 s signature window; when full, new requests get 503 until the oldest
    /// expire.
    #[arg(long, env = "PUBLISH_REPLAY_CAPACITY", default_value_t = 100_000)]
    pub publish_replay_capacity: usize,

    /// The OpenID provider operators sign in to the console with (authorization-code flow with
    /// PKCE), e.g. a Cognito user pool's `https://cognito-idp.<region>.amazonaws.com/<pool id>`;
    /// its `/.well-known/openid-configuration` names the endpoints. Unset: the console signs in
    /// by pasting a token only.
    #[arg(long, env = "CONSOLE_OIDC_ISSUER")]
    pub console_oidc_issuer: Option<String>,
    /// The console's client id at the provider: a public client, without a secret.
    #[arg(long, env = "CONSOLE_OIDC_CLIENT_ID")]
    pub console_oidc_client_id: Option<String>,
    /// The scopes the console asks for, space-separated; `openid` among them.
    #[arg(
        long,
        env = "CONSOLE_OIDC_SCOPES",
        default_value = "openid profile email"
    )]
    pub console_oidc_scopes: String,
    /// Where the provider sends the browser back; by default the console's own URL as the
    /// browser sees it (`https://<host>/console`).
    #[arg(long, env = "CONSOLE_OIDC_REDIRECT_URI")]
    pub console_oidc_redirect_uri: Option<String>,
    /// Which of the provider's tokens the console sends to the API: `access` (Cognito's carries
    /// `cognito:groups`) or `id`.
    #[arg(long, env = "CONSOLE_OIDC_TOKEN", value_enum, default_value = "access")]
    pub console_oidc_token: ConsoleToken,
    /// The provider's name on the sign-in button; by default "Amazon Cognito" for a Cognito
    /// user pool, else the issuer's host.
    #[arg(long, env = "CONSOLE_OIDC_NAME")]
    pub console_oidc_name: Option<String>,
    /// Offer to paste a token in the console; by default on without CONSOLE_OIDC_ISSUER, off
    /// with it.
    #[arg(long, env = "CONSOLE_TOKEN_PASTE", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub console_token_paste: Option<bool>,

    /// Load the demo competitions, teams and matches at start-up.
    #[arg(long, env = "DEMO", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub demo: bool,
    /// Drive the live demo matches with scoring events through the mutation path.
    #[arg(long, env = "SIMULATE", default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub simulate: bool,
    /// Milliseconds between simulated events.
    #[arg(long, env = "SIMULATE_INTERVAL_MS", default_value_t = 3000)]
    pub simulate_interval_ms: u64,
    /// Serve GraphiQL on `/`.
    #[arg(long, env = "GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub graphiql: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Largest accepted `POST /internal/publish` body, in bytes (a batch of 200 changes is
    /// about 85 KB).
    #[arg(long, env = "MAX_PUBLISH_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_publish_body_bytes: usize,
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// The most fields a query's response can hold, as estimated before it runs: each list's
    /// selection multiplied by the items it can return (`first`).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,
    /// Answer introspection (`__schema`, `__type`): GraphiQL, codegen and schema tools need it.
    /// Production apps may turn it off; `__typename` always works.
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub introspection: bool,
    /// Origins browsers may call the API from: `*` (any; credentials are never allowed, auth is
    /// a bearer token) or a comma-separated list such as `https://app.example.com`.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "*")]
    pub cors_allowed_origins: String,
    /// Most operations in one JSON-array batch request.
    #[arg(long, env = "MAX_BATCH_OPERATIONS", default_value_t = 10)]
    pub max_batch_operations: usize,
    /// Bytes of documents kept for automatic persisted queries (0 turns APQ off).
    #[arg(long, env = "APQ_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub apq_cache_bytes: usize,
    /// An Apollo persisted-query manifest (JSON) of the documents an app was built with; they
    /// run by id (`extensions.persistedQuery.sha256Hash`).
    #[arg(long, env = "PERSISTED_DOCUMENTS")]
    pub persisted_documents: Option<PathBuf>,
    /// Who must use the manifest's documents: `none`, `anonymous` (signed-in clients may still
    /// send any document) or `all`.
    #[arg(
        long,
        env = "PERSISTED_DOCUMENTS_REQUIRED",
        value_enum,
        default_value = "none"
    )]
    pub persisted_documents_required: Required,
    /// Most TCP connections open at once; 0 takes the descriptor limit less a reserve. Beyond
    /// it a new connection gets 503 `TOO_MANY_CONNECTIONS` and is closed.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Seconds a connection has to send a request's headers, and an idle keep-alive connection
    /// stays open.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Longest one match-day mutation retries against concurrent writers on its match before it
    /// fails with SERVICE_UNAVAILABLE (having written nothing).
    #[arg(long, env = "MAX_WRITE_RETRY_SECS", default_value_t = 20)]
    pub max_write_retry_secs: u64,
    /// Seconds one HTTP request may take, body included (408 beyond).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Most GraphQL requests executing at once over HTTP; others wait up to the request
    /// timeout, then get 503.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Most WebSockets and HTTP streams open at once (0: MAX_CONNECTIONS).
    #[arg(long, env = "MAX_STREAMS", default_value_t = 0)]
    pub max_streams: usize,
    /// Most WebSockets and HTTP streams open from one client address (0: no limit).
    #[arg(long, env = "MAX_STREAMS_PER_ADDRESS", default_value_t = 500)]
    pub max_streams_per_address: usize,
    /// Load balancers in front of the API that append to `X-Forwarded-For` (1 behind an ALB);
    /// 0 uses the TCP peer as the client's address.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
    /// Anonymous requests, WebSocket upgrades and anonymous operations per second from one
    /// client address (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_ADDRESS", default_value_t = 100)]
    pub rate_limit_per_address: u32,
    /// Mutations and subscriptions per second of one signed-in subject (bursts of twice that);
    /// 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_SUBJECT", default_value_t = 100)]
    pub rate_limit_per_subject: u32,
    /// Most concurrent subscriptions on one WebSocket connection.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 100)]
    pub max_subscriptions_per_connection: usize,
    /// Seconds a WebSocket client has to send `connection_init`.
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", default_value_t = 3)]
    pub ws_init_timeout_secs: u64,
    /// Seconds between keep-alives on WebSocket connections (pings or `ka`).
    #[arg(long, env = "WS_KEEPALIVE_SECS", default_value_t = 15)]
    pub ws_keepalive_secs: u64,
    /// Seconds a WebSocket connection may stay silent (no message, no pong) before it is
    /// closed; keep it above twice the keep-alive interval.
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECS", default_value_t = 45)]
    pub ws_idle_timeout_secs: u64,
    /// Bytes of query responses kept until a change makes them wrong (0: off); see
    /// docs/operations.md.
    #[arg(long, env = "RESPONSE_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub response_cache_bytes: usize,
    /// `max-age` of `Cache-Control: public` on anonymous GET queries, in seconds: how long a
    /// browser or CDN may reuse an answer without asking (0: `no-cache`, always revalidate
    /// with the `ETag`).
    #[arg(long, env = "HTTP_CACHE_MAX_AGE_SECS", default_value_t = 1)]
    pub http_cache_max_age_secs: u32,
    /// Seconds to let connections finish after SIGTERM before exiting.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// One log line per HTTP request and per WebSocket session (target `access`).
    #[arg(long, env = "ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: bool,

    /// `json` for machines, `text` for people, `auto` picks by whether stderr is a terminal.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
}

impl Config {
    /// Defaults for tests: a free port, no demo data. Every test client comes from 127.0.0.1
    /// and some send thousands of requests: the per-address bounds and the rate limits are off
    /// unless a test sets them. Tests run on shared, busy machines and check outcomes, not
    /// latency: the request and write-retry time limits are lifted unless a test sets them.
    pub fn for_tests() -> Self {
        let mut config = Cli::parse_from(["api"]).serve;
        config.port = 0;
        config.demo = false;
        config.max_streams_per_address = 0;
        config.rate_limit_per_address = 0;
        config.rate_limit_per_subject = 0;
        config.request_timeout_secs = 600;
        config.max_write_retry_secs = 600;
        config
    }

    pub fn auth(&self) -> AuthConfig {
        AuthConfig {
            jwt_secret: self.auth_jwt_secret.clone(),
            jwks_url: self.auth_jwks_url.clone(),
            issuer: self.auth_issuer.clone(),
            audience: self.auth_audience.clone(),
        }
    }

    /// The console's sign-in settings, checked, and checked against the API's own token
    /// settings: the console's tokens are only useful if the API accepts them.
    pub fn console_sign_in(&self) -> anyhow::Result<ConsoleSignIn> {
        let sign_in = ConsoleSignIn::parse(SignInConfig {
            issuer: self.console_oidc_issuer.clone(),
            client_id: self.console_oidc_client_id.clone(),
            scopes: self.console_oidc_scopes.clone(),
            redirect_uri: self.console_oidc_redirect_uri.clone(),
            token: self.console_oidc_token,
            name: self.console_oidc_name.clone(),
            token_paste: self.console_token_paste,
        })?;
        if let Some(oidc) = &sign_in.oidc {
            anyhow::ensure!(
                self.auth_jwks_url.is_some(),
                "CONSOLE_OIDC_ISSUER needs AUTH_JWKS_URL (the provider's jwks_uri), so that \
                 the API can verify the tokens the console gets"
            );
            if let Some(issuer) = self.auth_issuer.as_deref().filter(|i| *i != oidc.issuer) {
                tracing::warn!(
                    auth_issuer = issuer,
                    console_issuer = oidc.issuer.as_str(),
                    "AUTH_ISSUER differs from CONSOLE_OIDC_ISSUER: the API will refuse the \
                     console's tokens unless the provider issues them as AUTH_ISSUER"
                );
            }
            if let Some(audience) = self.auth_audience.as_deref() {
                // An ID token's audience is the client it was issued to: certain refusal.
                anyhow::ensure!(
                    oidc.token != ConsoleToken::Id || audience == oidc.client_id,
                    "CONSOLE_OIDC_TOKEN=id sends ID tokens, whose audience is \
                     CONSOLE_OIDC_CLIENT_ID, but AUTH_AUDIENCE is another client: the API \
                     would refuse them"
                );
                // An access token's may be an API's (`aud`), but Cognito's name the client.
                if audience != oidc.client_id {
                    tracing::warn!(
                        auth_audience = audience,
                        console_client_id = oidc.client_id.as_str(),
                        "AUTH_AUDIENCE differs from CONSOLE_OIDC_CLIENT_ID: the API will refuse \
                         the console's access tokens unless their aud is AUTH_AUDIENCE (Cognito's \
                         carry client_id, the console's client)"
                    );
                }
            }
        }
        Ok(sign_in)
    }

    pub fn dynamo(&self) -> crate::store::DynamoConfig {
        crate::store::DynamoConfig {
            table: self.dynamodb_table.clone(),
            endpoint: self.dynamodb_endpoint.clone(),
            region: None,
            local_credentials: self.dynamodb_local,
        }
    }

    /// The memory store's settings.
    pub fn memory(&self) -> crate::store::MemoryOptions {
        crate::store::MemoryOptions {
            feed_capacity: self.change_feed_capacity,
            feed_wait: Duration::from_millis(self.change_feed_wait_ms),
            ..Default::default()
        }
    }

    pub fn ws_init_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_init_timeout_secs)
    }

    /// At least a second: a zero interval would spin (and tokio refuses it).
    pub fn ws_keepalive(&self) -> Duration {
        Duration::from_secs(self.ws_keepalive_secs.max(1))
    }

    /// At least a second, so a live client always has time to answer.
    pub fn ws_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_idle_timeout_secs.max(1))
    }
}
