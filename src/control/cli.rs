//! `gatehouse ctl …`: the control API from the command line, one subcommand per operation,
//! against a running server (plain HTTP). Requests are signed (RPC v1) with the key pair given,
//! which must be the root account's; without one they go unsigned (`serve --control-api open`).

use anyhow::Context;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::Operation;
use crate::api::signer::{sign_and_encode, timestamp_now};

#[derive(Args)]
pub struct CtlArgs {
    #[command(subcommand)]
    command: CtlCommand,
    /// The running server (plain HTTP).
    #[arg(long, env = "GATEHOUSE_ENDPOINT", default_value = "http://127.0.0.1:8080", global = true)]
    endpoint: String,
    /// An AccessKey of the root account (without one, requests go unsigned).
    #[arg(long, env = "GATEHOUSE_ACCESS_KEY_ID", global = true)]
    access_key_id: Option<String>,
    /// Its secret.
    #[arg(long, env = "GATEHOUSE_ACCESS_KEY_SECRET", global = true, hide_env_values = true)]
    access_key_secret: Option<String>,
}

#[derive(Args)]
struct AccountArg {
    /// The account (default: root).
    #[arg(long)]
    account: Option<String>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct ResetScope {
    /// Drop this account's resources.
    #[arg(long)]
    account: Option<String>,
    /// Drop every account's resources.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Whether the server and its store are up (no key needed).
    Health,
    /// The server's version (no key needed).
    Version,
    /// Every action served, with the seed document that documents it.
    Coverage,
    /// Drop every resource of one account (or of all), keeping accounts and keys.
    Reset(ResetScope),
    /// Make the next COUNT calls of an action fail with a documented Code, or be delayed.
    AddFault {
        /// The action (DescribeVpnGateway, CreateVpnConnection, …).
        #[arg(long)]
        action: String,
        /// Only calls naming this resource ID.
        #[arg(long)]
        resource_id: Option<String>,
        /// The Code to fail with: InternalError, Throttling.User, VpnGateway.Configuring,
        /// OperationDenied.VpnConfiguring.
        #[arg(long)]
        code: Option<String>,
        /// Delay added to each call, in milliseconds (up to 60000).
        #[arg(long)]
        latency_ms: Option<u64>,
        /// How many calls.
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[command(flatten)]
        account: AccountArg,
    },
    /// List injected faults (of one account, or of all).
    ListFaults {
        #[arg(long)]
        account: Option<String>,
    },
    /// Remove injected faults (of one account, or of all).
    ClearFaults {
        #[arg(long)]
        account: Option<String>,
    },
    /// Force an IPsec connection's tunnels up or down on the simulated data plane (`clear`
    /// returns them to the emulator's rules).
    TunnelStatus {
        /// The connection (vco-…).
        connection: String,
        /// up, down or clear.
        #[arg(value_parser = ["up", "down", "clear"])]
        status: String,
        /// Only this tunnel (dual-tunnel connections).
        #[arg(long)]
        tunnel_id: Option<String>,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Hold lifecycle transitions (gateways stay in init/updating/deleting) until `resume`.
    Pause,
    /// Let held lifecycle transitions go on.
    Resume,
    /// Complete pending lifecycle transitions now (of one account, or of all).
    Complete {
        #[arg(long)]
        account: Option<String>,
    },
}

impl CtlCommand {
    fn request(self) -> (Operation, Vec<(String, String)>) {
        let mut params = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                params.push((k.to_string(), v));
            }
        };
        let op = match self {
            CtlCommand::Health => Operation::Health,
            CtlCommand::Version => Operation::Version,
            CtlCommand::Coverage => Operation::Coverage,
            CtlCommand::Reset(scope) => {
                put("Account", scope.account);
                Operation::Reset
            }
            CtlCommand::AddFault { action, resource_id, code, latency_ms, count, account } => {
                put("TargetAction", Some(action));
                put("ResourceId", resource_id);
                put("Code", code);
                put("LatencyMs", latency_ms.map(|l| l.to_string()));
                put("Count", Some(count.to_string()));
                put("Account", account.account);
                Operation::AddFault
            }
            CtlCommand::ListFaults { account } => {
                put("Account", account);
                Operation::ListFaults
            }
            CtlCommand::ClearFaults { account } => {
                put("Account", account);
                Operation::ClearFaults
            }
            CtlCommand::TunnelStatus { connection, status, tunnel_id, account } => {
                put("VpnConnectionId", Some(connection));
                put("Status", Some(status));
                put("TunnelId", tunnel_id);
                put("Account", account.account);
                Operation::TunnelStatus
            }
            CtlCommand::Pause => Operation::Pause,
            CtlCommand::Resume => Operation::Resume,
            CtlCommand::Complete { account } => {
                put("Account", account);
                Operation::Complete
            }
        };
        (op, params)
    }
}

/// Runs one `gatehouse ctl` command: prints the server's JSON answer, fails on an error answer.
pub async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let (op, mut params) = args.command.request();
    params.insert(0, ("Action".into(), op.wire().into()));
    let body = match (&args.access_key_id, &args.access_key_secret) {
        (Some(id), Some(secret)) => {
            params.extend([
                ("AccessKeyId".to_string(), id.clone()),
                ("SignatureMethod".into(), "HMAC-SHA1".into()),
                ("SignatureVersion".into(), "1.0".into()),
                ("SignatureNonce".into(), uuid::Uuid::new_v4().to_string()),
                ("Timestamp".into(), timestamp_now()),
                ("Format".into(), "JSON".into()),
            ]);
            sign_and_encode("POST", &params, secret)
        }
        (None, None) => form(&params),
        _ => anyhow::bail!("give both --access-key-id and --access-key-secret, or neither"),
    };
    if !args.endpoint.starts_with("http://") {
        anyhow::bail!(
            "--endpoint {:?}: gatehouse ctl speaks plain HTTP (http://HOST:PORT, serve's --listen)",
            args.endpoint
        );
    }
    let url = format!("{}/_gatehouse/{}", args.endpoint.trim_end_matches('/'), op.wire());
    let request = hyper::Request::post(&url)
        .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from(body)))
        .with_context(|| format!("bad endpoint {:?}", args.endpoint))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.context("reading the answer")?.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    println!("{text}");
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}");
    }
    Ok(())
}

fn form(params: &[(String, String)]) -> String {
    use crate::api::auth::percent_encode;
    params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}
