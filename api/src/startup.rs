//! Wiring: builds the store, broker, pipeline, authenticator and schema from the configuration,
//! binds the listener, and serves until stopped. Tests use exactly this
//! (`Application::build(config)`, `port()`, `run_until_stopped()`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;
use scoreline_core::publish::Publisher;
use scoreline_core::store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::admission::{Admission, RateLimiter, Streams, MAX_RATE_KEYS};
use crate::auth::{Authenticator, Role};
use crate::broker::{Broker, MemoryBroker, RedisBroker, RedisBrokerConfig};
use crate::config::{BrokerKind, Config, StoreKind, StreamStart};
use crate::fanout::Fanout;
use crate::graphql::documents::DocumentCache;
use crate::graphql::persisted::{PersistedDocuments, Required};
use crate::graphql::response_cache::ResponseCache;
use crate::graphql::schema::Services;
use crate::graphql::{build_schema, SchemaLimits, ScorelineSchema};
use crate::metrics::Metrics;
use crate::pipeline::{spawn_embedded, Intake};
use crate::server::{self, ConnectionStats, ServerLimits};
use crate::store::{DynamoStore, MemoryStore};
use crate::ws::WsSettings;
use crate::{demo, http, simulate};
use scoreline_pipeline::poller::{self, PollerConfig, StartPosition};

/// Shared by every handler: one allocation, so that handing it to a request (axum clones the
/// state for each) is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub schema: ScorelineSchema,
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    pub intake: Arc<Intake>,
    pub auth: Authenticator,
    /// The publish endpoint's secrets and replay guard; `None` turns the endpoint off.
    pub publish: Option<Arc<http::PublishAuth>>,
    pub ws: WsSettings,
    pub fanout: Arc<Fanout>,
    pub metrics: Arc<Metrics>,
    pub documents: Arc<DocumentCache>,
    pub persisted: Arc<PersistedDocuments>,
    pub responses: Arc<ResponseCache>,
    /// `max-age` of anonymous GET queries (`HTTP_CACHE_MAX_AGE_SECS`).
    pub http_cache_max_age: u32,
    pub max_body_bytes: usize,
    pub max_batch_operations: usize,
    pub admission: Arc<Admission>,
    /// Permits for GraphQL executions over HTTP (`MAX_CONCURRENT_REQUESTS`).
    pub work: Arc<Semaphore>,
    pub request_timeout: Duration,
    pub connections: Arc<ConnectionStats>,
    pub max_publish_body_bytes: usize,
    pub shutdown: watch::Receiver<bool>,
    /// graphql-sse single connection mode: reserved streams by token.
    pub reservations: Arc<http::Reservations>,
    /// The console page, for the console's sign-in settings.
    pub console: Arc<http::ConsolePage>,
}

/// What the router serves besides the API itself.
#[derive(Clone, Debug)]
pub struct RouterOptions {
    pub graphiql: bool,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_allowed_origins: String,
    pub access_log: bool,
    /// Serve `/metrics` on the public port (no `METRICS_ADDR`).
    pub public_metrics: bool,
    /// Most time one request may take (408 beyond).
    pub request_timeout: Duration,
}

/// The public routes and the publish endpoint, inside [`http::Front`] (the access log, CORS,
/// the timeout, the body limits and the panic guard).
pub fn router(state: AppState, options: &RouterOptions) -> anyhow::Result<http::Front> {
    let mut routes = Router::new()
        .route(
            "/graphql",
            get(http::graphql_get)
                .post(http::graphql_post)
                .put(http::graphql_put)
                .delete(http::graphql_delete),
        )
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/console", get(http::console_page))
        .route("/console-sw.js", get(http::console_worker))
        .route("/scoreboard", get(http::scoreboard_page))
        .route("/assets/{file}", get(http::page_asset))
        .route(http::PUBLISH_PATH, post(http::publish));
    if options.public_metrics {
        routes = routes.route("/metrics", get(http::metrics));
    }
    if options.graphiql {
        routes = routes
            .route("/", get(http::graphiql_page))
            .route("/graphiql/{file}", get(http::graphiql_asset));
    }
    let front = http::FrontOptions {
        cors: http::Cors::new(&options.cors_allowed_origins)?,
        body_limit: state.max_body_bytes,
        // Change batches are larger than client requests.
        publish_body_limit: state.max_publish_body_bytes,
        timeout: options.request_timeout,
        access_log: options.access_log,
    };
    Ok(http::Front::new(routes.with_state(state), front))
}

/// `/metrics` alone, for its own listener (`METRICS_ADDR`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(http::metrics))
        .with_state(state)
}

pub struct Application {
    listener: TcpListener,
    limits: ServerLimits,
    router: http::Front,
    /// The metrics listener and its router, with `METRICS_ADDR`.
    metrics: Option<(TcpListener, Router)>,
    state: AppState,
    admin_token: Option<String>,
    shutdown_tx: watch::Sender<bool>,
    shutdown_timeout: Duration,
    background: Vec<JoinHandle<()>>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let auth = Authenticator::new(config.auth()).context("invalid auth configuration")?;
        let console = Arc::new(http::ConsolePage::new(
            config
                .console_sign_in()
                .context("invalid console sign-in configuration")?,
        )?);
        let admin_token = if auth.secret_was_generated() {
            Some(auth.mint(Role::Admin, "scoreline-dev", Duration::from_secs(24 * 3600))?)
        } else {
            None
        };

        let broker: Arc<dyn Broker> = match config.broker {
            BrokerKind::Memory => Arc::new(MemoryBroker::default()),
            BrokerKind::Redis => {
                let url = config
                    .redis_url
                    .as_ref()
                    .context("BROKER=redis needs REDIS_URL, e.g. redis://127.0.0.1:6379")?;
                Arc::new(RedisBroker::start(
                    url.expose(),
                    RedisBrokerConfig::default(),
                )?)
            }
        };
        let metrics = Arc::new(Metrics::default());
        let intake = Arc::new(Intake::new(broker.clone(), metrics.clone()));
        let mut background = Vec::new();
        let store: Arc<dyn Store> = match config.store {
            StoreKind::Memory => {
                let (store, feed) = MemoryStore::with_metrics(config.memory(), metrics.clone());
                background.push(spawn_embedded(
                    feed,
                    intake.clone() as Arc<dyn Publisher>,
                    metrics.clone(),
                ));
                Arc::new(store)
            }
            StoreKind::Dynamodb => {
                let store = DynamoStore::connect(&config.dynamo()).await;
                if config.dynamodb_create_table
                    && store
                        .init_table()
                        .await
                        .context("creating the DynamoDB table")?
                {
                    tracing::info!(table = store.table(), "created the DynamoDB table");
                }
                if config.stream_poll {
                    background.push(spawn_stream_poller(&store, &config, intake.clone()).await?);
                }
                Arc::new(store)
            }
        };

        let responses = Arc::new(ResponseCache::new(
            config.response_cache_bytes,
            Some(broker.clone()),
            metrics.clone(),
        ));
        if responses.enabled() {
            background.push(responses.follow(broker.as_ref()));
        }
        let schema = build_schema(
            Services {
                store: store.clone(),
                broker: broker.clone(),
                metrics: metrics.clone(),
                responses: responses.clone(),
            },
            SchemaLimits {
                max_depth: config.max_query_depth,
                max_complexity: config.max_query_complexity,
                introspection: config.introspection,
                max_write_retry: Duration::from_secs(config.max_write_retry_secs),
            },
        );
        if config.demo {
            demo::load(store.as_ref())
                .await
                .context("loading the demo data")?;
        }
        if config.simulate {
            background.push(simulate::spawn(
                schema.clone(),
                Duration::from_millis(config.simulate_interval_ms.max(100)),
            ));
        }

        let mut persisted = PersistedDocuments::new(config.apq_cache_bytes);
        if let Some(path) = &config.persisted_documents {
            persisted = persisted.with_manifest_file(path, config.persisted_documents_required)?;
        } else if config.persisted_documents_required != Required::None {
            anyhow::bail!("PERSISTED_DOCUMENTS_REQUIRED needs a manifest: set PERSISTED_DOCUMENTS");
        }
        let max_connections = match config.max_connections {
            0 => server::connection_capacity(),
            n => n,
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let fanout = Arc::new(Fanout::new(schema.clone(), metrics.clone()));
        let documents = Arc::new(DocumentCache::new(&schema.sdl()));
        let state = AppState(Arc::new(Shared {
            schema,
            store,
            broker,
            intake,
            auth,
            publish: http::publish_auth(
                config.publish_secret.clone(),
                config.publish_secret_previous.clone(),
                config.publish_replay_capacity,
            )?,
            ws: WsSettings {
                init_timeout: config.ws_init_timeout(),
                keepalive: config.ws_keepalive(),
                idle_timeout: config.ws_idle_timeout(),
                max_subscriptions: config.max_subscriptions_per_connection,
                access_log: config.access_log,
            },
            fanout,
            metrics,
            documents,
            persisted: Arc::new(persisted),
            responses,
            http_cache_max_age: config.http_cache_max_age_secs,
            max_body_bytes: config.max_body_bytes,
            max_batch_operations: config.max_batch_operations.max(1),
            admission: Arc::new(Admission {
                streams: Streams::new(
                    if config.max_streams == 0 {
                        max_connections
                    } else {
                        config.max_streams
                    },
                    config.max_streams_per_address,
                ),
                by_address: RateLimiter::new(config.rate_limit_per_address, MAX_RATE_KEYS),
                by_subject: RateLimiter::new(config.rate_limit_per_subject, MAX_RATE_KEYS),
                trusted_proxy_hops: config.trusted_proxy_hops,
            }),
            work: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            request_timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
            connections: Arc::new(ConnectionStats::default()),
            max_publish_body_bytes: config.max_publish_body_bytes,
            shutdown: shutdown_rx,
            reservations: Arc::new(http::Reservations::default()),
            console: console.clone(),
        }));
        // Reads the console's OpenID provider settings now, so that a problem shows in the log
        // at start-up; a console page requested meanwhile waits for this one attempt.
        background.push(tokio::spawn(async move { console.prepare().await }));
        let address = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let metrics = match config.metrics_addr {
            Some(address) => Some((
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding METRICS_ADDR {address}"))?,
                metrics_router(state.clone()),
            )),
            None => None,
        };
        Ok(Self {
            listener,
            metrics,
            router: router(
                state.clone(),
                &RouterOptions {
                    graphiql: config.graphiql,
                    cors_allowed_origins: config.cors_allowed_origins.clone(),
                    access_log: config.access_log,
                    public_metrics: config.metrics_addr.is_none(),
                    request_timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
                },
            )?,
            limits: ServerLimits {
                max_connections,
                header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
            },
            state,
            admin_token,
            shutdown_tx,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served, with `METRICS_ADDR`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The admin token minted with the per-process secret, when no auth was configured.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then closes WebSockets (1001) and lets in-flight HTTP
    /// requests finish, up to the shutdown timeout.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown_tx = self.shutdown_tx;
        let timeout = self.shutdown_timeout;
        let (stopping_tx, mut stopping_rx) = watch::channel(false);
        let metrics_server = self
            .metrics
            .map(|(listener, router)| serve_metrics(listener, router, stopping_rx.clone()));
        let graceful = async move {
            signal.await;
            tracing::info!("shutting down: closing subscriptions, finishing requests");
            let _ = shutdown_tx.send(true);
            let _ = stopping_tx.send(true);
        };
        let server = server::serve(
            self.listener,
            self.router,
            self.limits,
            self.state.connections.clone(),
            graceful,
        );
        let deadline = async move {
            let _ = stopping_rx.wait_for(|s| *s).await;
            tokio::time::sleep(timeout).await;
        };
        tokio::select! {
            () = server => {}
            () = deadline => tracing::warn!("shutdown deadline passed; exiting with connections open"),
        }
        for task in self.background {
            task.abort();
        }
        if let Some(task) = metrics_server {
            task.abort();
        }
        Ok(())
    }
}

/// Serves `/metrics` on its own listener until shutdown starts.
fn serve_metrics(
    listener: TcpListener,
    router: Router,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(%error, "the metrics listener failed");
        }
    })
}

/// Reads the table's stream in this process and publishes through the intake, with the same
/// pipeline code the stream-handler Lambda runs.
async fn spawn_stream_poller(
    store: &DynamoStore,
    config: &Config,
    intake: Arc<Intake>,
) -> anyhow::Result<JoinHandle<()>> {
    let stream_arn = store
        .stream_arn()
        .await
        .context("describing the DynamoDB table")?
        .context(
            "the DynamoDB table has no stream: enable NEW_AND_OLD_IMAGES (api init-table does)",
        )?;
    let client = poller::client(store.sdk_config());
    let poller_config = PollerConfig {
        stream_arn,
        interval: Duration::from_millis(config.stream_poll_interval_ms.max(10)),
        start: match config.stream_poll_from {
            StreamStart::Latest => StartPosition::Latest,
            StreamStart::TrimHorizon => StartPosition::TrimHorizon,
        },
        batch_size: 1000,
    };
    Ok(tokio::spawn(async move {
        let publisher = intake as Arc<dyn Publisher>;
        if let Err(e) = poller::run(client, poller_config, publisher, std::future::pending()).await
        {
            tracing::error!(error = %e, "the stream poller stopped");
        }
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
