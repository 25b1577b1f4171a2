//! The stream-handler in the test process, against DynamoDB Local: a server that accepts signed
//! publish requests, and the poller reading a table's stream and publishing to it.

use std::sync::Arc;
use std::time::Duration;

use scoreline_core::publish::Publisher;
use scoreline_pipeline::poller::{self, PollerConfig, StartPosition};
use scoreline_pipeline::retry::RetryPolicy;
use scoreline_pipeline::sink::HttpPublisher;

use crate::{dynamodb_local, TestApp, PUBLISH_SECRET};

/// The poller's idle interval in these tests.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// An SDK configuration for DynamoDB Local, as `stream-handler poll --local` builds one.
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(dynamodb_local::endpoint())
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "scoreline-tests",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await
}

/// The newest stream of `table`.
pub async fn stream_arn(client: &aws_sdk_dynamodbstreams::Client, table: &str) -> String {
    let streams = client
        .list_streams()
        .table_name(table)
        .send()
        .await
        .expect("listing the table's streams");
    streams
        .streams()
        .last()
        .and_then(|s| s.stream_arn())
        .unwrap_or_else(|| panic!("table {table} has a stream"))
        .to_string()
}

/// A server on DynamoDB Local (a fresh table) that does not read the table's stream itself but
/// accepts signed publish requests, as deployed with the stream-handler Lambda. Returns the app
/// and its table.
pub async fn dynamodb_publishing_app() -> (TestApp, String) {
    let table = dynamodb_local::unique_table("e2e");
    let app = {
        let table = table.clone();
        TestApp::spawn_with(move |config| {
            config.store = api::StoreKind::Dynamodb;
            config.dynamodb_endpoint = Some(dynamodb_local::endpoint().to_string());
            config.dynamodb_table = table;
            config.dynamodb_local = true;
            config.dynamodb_create_table = true;
            config.stream_poll = false;
            config.publish_secret = Some(PUBLISH_SECRET.into());
        })
        .await
    };
    (app, table)
}

/// The stream-handler's poller, in this process, reading `table`'s stream from its trim horizon
/// and publishing to `app` over signed HTTP.
pub struct StreamHandler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), poller::PollError>>,
}

impl StreamHandler {
    pub async fn start(app: &TestApp, table: &str) -> StreamHandler {
        let sdk = local_sdk_config().await;
        let streams = poller::client(&sdk);
        let config = PollerConfig {
            stream_arn: stream_arn(&streams, table).await,
            interval: POLL_INTERVAL,
            start: StartPosition::TrimHorizon,
            batch_size: 1000,
        };
        let publisher: Arc<dyn Publisher> = Arc::new(
            HttpPublisher::new(app.publish_url(), PUBLISH_SECRET, RetryPolicy::default()).unwrap(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(poller::run(streams, config, publisher, async move {
            let _ = stopped.await;
        }));
        StreamHandler { stop, task }
    }

    /// Stops the poller and checks it ran without error.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the poller stops when told to")
            .expect("the poller task does not panic");
        assert!(result.is_ok(), "the poller ran without error: {result:?}");
    }
}
