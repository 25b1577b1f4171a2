//! `api`: runs the Scoreline server, or mints a token (`api token --role admin`).

use std::time::Duration;

use anyhow::Context;
use api::{
    init_telemetry, parse_ttl, Application, AuthConfig, Authenticator, Cli, Command, DynamoStore,
    Role,
};
use clap::Parser;

/// mimalloc rather than the system allocator: a query answered from the cache makes some 50
/// small allocations, and glibc's `malloc` and `free` were a quarter of its instructions. Version
/// 2, built without transparent huge pages (`no_thp`): where the kernel makes every mapping huge,
/// its memory otherwise grew in 2 MiB pages and a client that stops reading held three times
/// the memory. docs/benchmarks.md (the read path, third pass) has the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => {
            let role = Role::parse(&args.role)
                .with_context(|| format!("unknown role {:?}: use admin or operator", args.role))?;
            let secret = args
                .secret
                .context("AUTH_JWT_SECRET (or --secret) is needed to sign a token")?;
            let auth = Authenticator::new(AuthConfig {
                jwt_secret: Some(secret),
                jwks_url: None,
                issuer: args.issuer,
                audience: args.audience,
            })?;
            let ttl: Duration = parse_ttl(&args.ttl)?;
            println!("{}", auth.mint(role, &args.sub, ttl)?);
            Ok(())
        }
        Some(Command::InitTable) => {
            let config = cli.serve;
            let _ = init_telemetry(config.log_format);
            let store = DynamoStore::connect(&config.dynamo()).await;
            let created = store
                .init_table()
                .await
                .context("creating the DynamoDB table")?;
            if created {
                println!("created table {}", store.table());
            } else {
                println!("table {} already exists", store.table());
            }
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", api::sdl());
            Ok(())
        }
        None | Some(Command::Serve) => {
            let config = cli.serve;
            let json = init_telemetry(config.log_format);
            let app = Application::build(config).await?;
            let address = app.local_addr();
            tracing::info!(%address, "Scoreline is listening");
            if let Some(metrics) = app.metrics_addr() {
                tracing::info!(address = %metrics, "metrics are served on their own listener");
            }
            // For people on a terminal a banner; in JSON mode the same facts as log lines, so
            // every line of the stream parses.
            if json {
                tracing::info!(
                    graphiql = %format!("http://{address}/"),
                    graphql = %format!("http://{address}/graphql"),
                    console = %format!("http://{address}/console"),
                    scoreboard = %format!("http://{address}/scoreboard"),
                    "endpoints"
                );
                if let Some(token) = app.admin_token() {
                    tracing::warn!(
                        admin_token = token,
                        "no AUTH_JWT_SECRET or AUTH_JWKS_URL set: this process made its own \
                         secret; the admin token works for 24 h, until the process exits"
                    );
                }
            } else {
                eprintln!("Scoreline is listening on http://{address}  (GraphiQL: http://{address}/, GraphQL and WebSocket: http://{address}/graphql)");
                eprintln!(
                    "Console: http://{address}/console  Scoreboard: http://{address}/scoreboard"
                );
                if let Some(token) = app.admin_token() {
                    eprintln!(
                        "No AUTH_JWT_SECRET or AUTH_JWKS_URL set: this process made its own secret."
                    );
                    eprintln!("Admin token for this run (24 h):\n\n  {token}\n");
                    eprintln!("Send it as: Authorization: Bearer <token>");
                }
            }
            app.run_until_stopped().await
        }
    }
}
