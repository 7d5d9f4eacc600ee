//! `gatehouse-bench`: a load generator for a running gatehouse server.
//!
//! It opens `--connections` HTTP/1.1 keep-alive connections and, on each one, sends correctly signed
//! RPC-v1 requests (HMAC-SHA1, fresh `SignatureNonce` and `Timestamp` every time) back to back until
//! `--duration` has passed or `--requests` have been sent, then reports throughput and latency.
//!
//! ```text
//! gatehouse-bench --endpoint http://127.0.0.1:8080 --access-key-id ID --access-key-secret S \
//!     --action DescribeVpnGateway --param VpnGatewayId=vpn-xxx --param RegionId=cn-hangzhou \
//!     --connections 32 --duration 10s
//! gatehouse-bench ... --action CreateCustomerGateway --param RegionId=cn-hangzhou \
//!     --param-template 'IpAddress={ip}' --param-template 'Name=cgw{n}' --requests 1000
//! gatehouse-bench ... --action CreateVpnConnection --param RegionId=cn-hangzhou \
//!     --param-file VpnGatewayId=gateways.txt --param-file CustomerGatewayId=cgws.txt \
//!     --param LocalSubnet=10.0.0.0/24 --param-template 'RemoteSubnet={ip}/32' --wait-active --connections 20
//! ```
//!
//! Every request has a number `n` (a run-wide counter starting at `--counter-start`). `--param` values
//! are sent literally; `--param-template` values expand `{n}` and `{ip}` (a distinct IPv4 address
//! derived from `n`, `11.x.y.z`); `--param-file` values are line `n mod lines` of a file. GET puts every
//! parameter in the query; POST (the default) sends them as an `application/x-www-form-urlencoded`
//! body, the way Node pop-core does.
//!
//! `--wait-active` measures changes to VPN gateways up to the point they are applied: after each 2xx
//! answer the connection polls `DescribeVpnGateway` for the request's `VpnGatewayId` until its `Status`
//! is `active` again, and the report counts the requests that got there (and how long it took). So that
//! no two connections change the same gateway, connection `i` of `C` then sends only the requests
//! `n ≡ i (mod C)`; the `VpnGatewayId` values must split evenly (e.g. a file of 100 gateways and `C` = 20
//! gives every connection 5 gateways of its own).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use gatehouse::api::signer::{sign_and_encode, timestamp_now};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

mod params;

use params::*;

const MAX_DURATION: Duration = Duration::from_secs(300);
/// Longest error body kept for the report.
const MAX_ERROR_BODY: usize = 2000;
/// How long after the deadline an in-flight request may still finish.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed connect, so a dead server does not turn the bench into a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Pause between two `--wait-active` polls of a gateway that is not `active` yet.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// The parameter `--wait-active` polls, and the action it polls with.
const WAIT_PARAM: &str = "VpnGatewayId";
const WAIT_ACTION: &str = "DescribeVpnGateway";

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse-bench",
    version,
    about = "Load generator for a running gatehouse server (signed RPC-v1 requests over keep-alive HTTP/1.1 or HTTPS)"
)]
struct Args {
    /// Server base URL: http://… or https://… (with --ca-cert).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// For an https endpoint: the PEM certificate(s) to trust (serve prints the generated one's path).
    #[arg(long)]
    ca_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: String,
    /// API action, e.g. DescribeVpnGateway.
    #[arg(long)]
    action: String,
    /// API version sent as `Version` and `x-acs-version`.
    #[arg(long, default_value = "2016-04-28")]
    api_version: String,
    /// A request parameter, sent literally (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// A request parameter whose value is expanded per request (repeatable): `{ip}` becomes a unique IPv4
    /// address, `{ n }` (written without the spaces) the request counter; `{{`/`}}` are literal braces.
    #[arg(long = "param-template", value_name = "NAME=TEMPLATE", value_parser = parse_template_param)]
    param_templates: Vec<(String, Vec<Seg>)>,
    /// A request parameter whose values are the lines of a file (repeatable): request `n` sends line
    /// `n mod lines`. Blank lines are skipped.
    #[arg(long = "param-file", value_name = "NAME=PATH", value_parser = parse_param)]
    param_files: Vec<(String, String)>,
    /// First value of the request counter used by --param-template and --param-file (pick a fresh range
    /// per run when creating unique resources).
    #[arg(long, default_value_t = 0)]
    counter_start: u64,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,
    /// Stop after this long (e.g. 10s, 500ms, 2m; at most 300s).
    #[arg(long, default_value = "10s", value_parser = parse_bench_duration)]
    duration: Duration,
    /// Stop after this many requests have been sent (whichever of --duration/--requests comes first).
    #[arg(long)]
    requests: Option<u64>,
    /// GET = parameters in the query; POST = parameters in a form body.
    #[arg(long, value_enum, ignore_case = true, default_value = "POST")]
    method: HttpMethod,
    /// Per-request timeout (with --wait-active also the longest wait for a gateway to be active).
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,
    /// After each 2xx answer, poll DescribeVpnGateway for the request's VpnGatewayId until it is
    /// `active`, and report how many requests got there per second. Connection i of C sends only the
    /// requests n ≡ i (mod C), so the VpnGatewayId values must split evenly between connections.
    #[arg(long)]
    wait_active: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------------
// Pure parts: argument parsing, parameter values, signing, percentiles
// ---------------------------------------------------------------------------------------------------

/// Sequence number `taken` of connection `index` of `connections` under `--wait-active`: the
/// connection owns the residue class `index` mod `connections`.
fn strided_seq(index: u64, taken: u64, connections: u64) -> u64 {
    index + taken * connections
}

/// What every request of a run shares.
#[derive(Clone)]
struct Plan {
    method: HttpMethod,
    action: String,
    api_version: String,
    access_key_id: String,
    secret: String,
    params: Vec<(String, Value)>,
}

impl Plan {
    /// The full parameter list of request number `n`: common parameters, then the user's (a user
    /// parameter with a common parameter's name replaces it).
    fn params_for(&self, n: u64, nonce: &str, timestamp: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = vec![
            ("Action".into(), self.action.clone()),
            ("Version".into(), self.api_version.clone()),
            ("Format".into(), "JSON".into()),
            ("AccessKeyId".into(), self.access_key_id.clone()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), nonce.into()),
            ("Timestamp".into(), timestamp.into()),
        ];
        for (k, v) in &self.params {
            let v = v.at(n);
            match out.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k.clone(), v)),
            }
        }
        out
    }

    /// The signed, encoded parameter string (query or form body) of request number `n`.
    fn encoded_request(&self, n: u64, nonce: &str, timestamp: &str) -> String {
        sign_and_encode(self.method.as_str(), &self.params_for(n, nonce, timestamp), &self.secret)
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The `--wait-active` poll: DescribeVpnGateway of request `n`'s gateway (same region and
    /// credentials, JSON), after checking that the gateways split evenly between `connections`.
    fn poll_plan(&self, connections: u64) -> Result<Plan, String> {
        let gateway = self.value(WAIT_PARAM).ok_or_else(|| format!("--wait-active needs a {WAIT_PARAM} parameter"))?;
        if !gateway.splits_between(connections) {
            return Err(format!(
                "--wait-active: the {WAIT_PARAM} values do not split evenly between {connections} connections \
                 (give a --param-file whose number of lines is a multiple of --connections)"
            ));
        }
        let kept = ["RegionId", WAIT_PARAM];
        Ok(Plan {
            action: WAIT_ACTION.into(),
            params: self.params.iter().filter(|(k, _)| kept.contains(&k.as_str())).cloned().collect(),
            ..self.clone()
        })
    }
}

/// A top-level string field of a JSON answer.
fn json_field(body: &[u8], field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(field)?.as_str().map(str::to_owned)
}

/// The error code of a non-2xx answer (its `Code`), or `HTTP <status>` when it has none.
fn error_code(status: StatusCode, body: &[u8]) -> String {
    json_field(body, "Code").unwrap_or_else(|| format!("HTTP {}", status.as_u16()))
}

fn body_excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]).into_owned()
}

/// Nearest-rank percentile of an ascending slice (`p` in 0..=100); `None` when empty.
fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    // The epsilon keeps float noise (0.999 * 1000 = 999.0000000000001) from bumping the rank.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Mean, percentiles and maximum of a set of durations, in milliseconds (`None` when there are none).
#[derive(Debug, PartialEq)]
struct Summary {
    mean: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

impl Summary {
    fn of(mut us: Vec<u32>) -> Summary {
        us.sort_unstable();
        let ms = |v: Option<u32>| v.map(|us| us as f64 / 1000.0);
        let mean = (!us.is_empty()).then(|| us.iter().map(|&v| v as f64).sum::<f64>() / us.len() as f64 / 1000.0);
        Summary {
            mean,
            p50: ms(percentile(&us, 50.0)),
            p90: ms(percentile(&us, 90.0)),
            p99: ms(percentile(&us, 99.0)),
            max: ms(us.last().copied()),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max })
    }

    fn text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        format!(
            "mean {}  p50 {}  p90 {}  p99 {}  max {}",
            ms(self.mean),
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

// ---------------------------------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------------------------------

struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// The name the server's certificate must carry, for an https endpoint.
    tls_name: Option<rustls_pki_types::ServerName<'static>>,
    /// `Host` header value (the endpoint's authority, as written).
    host: HeaderValue,
    path: String,
}

fn parse_endpoint(endpoint: &str) -> Result<Target, String> {
    let uri: Uri = endpoint.parse().map_err(|e| format!("invalid --endpoint {endpoint:?}: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(format!("--endpoint scheme {other:?} is not supported (http or https)")),
        None => return Err(format!("--endpoint {endpoint:?} needs a scheme, e.g. http://127.0.0.1:8080")),
    };
    let authority = uri.authority().ok_or_else(|| format!("--endpoint {endpoint:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tls_name = match https {
        true => Some(
            rustls_pki_types::ServerName::try_from(authority.host().to_string())
                .map_err(|e| format!("--endpoint host {:?}: {e}", authority.host()))?,
        ),
        false => None,
    };
    let addr = format!("{}:{port}", authority.host());
    let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
    let path = match uri.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    Ok(Target { addr, tls_name, host, path })
}

struct Shared {
    plan: Plan,
    /// `--wait-active`: the poll, and the number of connections the requests are strided over.
    poll: Option<(Plan, u64)>,
    target: Target,
    /// For an https endpoint: the client trusting --ca-cert.
    tls: Option<tokio_rustls::TlsConnector>,
    counter: AtomicU64,
    counter_start: u64,
    max_requests: Option<u64>,
    deadline: Instant,
    timeout: Duration,
    stop: AtomicBool,
    first_error: Mutex<Option<(u16, String)>>,
    first_transport_error: Mutex<Option<String>>,
    first_wait_failure: Mutex<Option<String>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The sequence number of the next request of connection `index`, which has taken `taken` so far;
    /// `None` once --requests are used up.
    fn next_seq(&self, index: u64, taken: u64) -> Option<u64> {
        let seq = match &self.poll {
            Some((_, connections)) => strided_seq(index, taken, *connections),
            None => self.counter.fetch_add(1, Ordering::Relaxed),
        };
        self.max_requests.is_none_or(|max| seq < max).then_some(seq)
    }
}

#[derive(Default)]
struct WorkerStats {
    /// Latency of every completed request, in microseconds.
    latencies_us: Vec<u32>,
    ok: u64,
    non_2xx: u64,
    /// Non-2xx answers by error code.
    error_codes: BTreeMap<String, u64>,
    transport_errors: u64,
    timeouts: u64,
    connects: u64,
    /// `--wait-active`: 2xx requests whose gateway was seen `active` again, and from sending the
    /// request to that sighting, in microseconds.
    activated_us: Vec<u32>,
    /// `--wait-active`: 2xx requests whose gateway was not seen `active` within --timeout.
    not_activated: u64,
    polls: u64,
}

impl WorkerStats {
    fn merge(&mut self, s: WorkerStats) {
        self.latencies_us.extend(s.latencies_us);
        self.ok += s.ok;
        self.non_2xx += s.non_2xx;
        for (code, count) in s.error_codes {
            *self.error_codes.entry(code).or_default() += count;
        }
        self.transport_errors += s.transport_errors;
        self.timeouts += s.timeouts;
        self.connects += s.connects;
        self.activated_us.extend(s.activated_us);
        self.not_activated += s.not_activated;
        self.polls += s.polls;
    }
}

fn record_first<T>(slot: &Mutex<Option<T>>, value: impl FnOnce() -> T) {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(value());
    }
}

fn take_first<T: Clone>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn build_request(target: &Target, plan: &Plan, n: u64) -> Request<Full<Bytes>> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let encoded = plan.encoded_request(n, &nonce, &timestamp_now());
    let builder = Request::builder()
        .header(HOST, target.host.clone())
        .header(USER_AGENT, "gatehouse-bench/0.1")
        .header("x-acs-action", plan.action.as_str())
        .header("x-acs-version", plan.api_version.as_str());
    let (builder, body) = match plan.method {
        HttpMethod::Get => (builder.method(Method::GET).uri(format!("{}?{encoded}", target.path)), Bytes::new()),
        HttpMethod::Post => (
            builder
                .method(Method::POST)
                .uri(target.path.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Bytes::from(encoded),
        ),
    };
    builder.body(Full::new(body)).expect("request parts are valid")
}

/// One worker's keep-alive connection, reopened when the server closes it.
#[derive(Default)]
struct Link {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Link {
    /// Whether the connection can take a request now, connecting first if needed; false after a
    /// failed connect (counted, then a pause).
    async fn ready(&mut self, shared: &Shared, stats: &mut WorkerStats) -> bool {
        if let Some(s) = self.sender.as_mut() {
            if s.ready().await.is_ok() {
                return true;
            }
        }
        self.sender = None;
        let connected = async {
            let stream = TcpStream::connect(&shared.target.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", shared.target.addr))?;
            let _ = stream.set_nodelay(true);
            let handshake = |e| format!("handshake: {e}");
            let sender = match (&shared.tls, &shared.target.tls_name) {
                (Some(tls), Some(name)) => {
                    let stream = tls.connect(name.clone(), stream).await.map_err(|e| format!("TLS: {e}"))?;
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(handshake)?;
                    tokio::spawn(conn);
                    sender
                }
                _ => {
                    let (sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(handshake)?;
                    tokio::spawn(conn);
                    sender
                }
            };
            Ok::<_, String>(sender)
        };
        match connected.await {
            Ok(s) => {
                stats.connects += 1;
                self.sender = Some(s);
                true
            }
            Err(e) => {
                stats.transport_errors += 1;
                record_first(&shared.first_transport_error, || e);
                tokio::time::sleep(RECONNECT_BACKOFF).await;
                false
            }
        }
    }

    /// Sends `request` on the ready connection and reads the whole answer by `until`; a transport
    /// error or timeout is counted, drops the connection and gives `None`.
    async fn send(
        &mut self,
        shared: &Shared,
        stats: &mut WorkerStats,
        request: Request<Full<Bytes>>,
        until: Instant,
    ) -> Option<(StatusCode, Bytes)> {
        let s = self.sender.as_mut().expect("connection is ready");
        let exchange = async {
            let response = s.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout_at(until, exchange).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                stats.transport_errors += 1;
                record_first(&shared.first_transport_error, || format!("request: {e}"));
                self.sender = None;
                None
            }
            Err(_) => {
                stats.timeouts += 1;
                self.sender = None; // the connection still has a request in flight
                None
            }
        }
    }
}

async fn worker(shared: Arc<Shared>, index: u64) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut link = Link::default();
    let mut taken = 0;
    loop {
        if shared.stopped() || Instant::now() >= shared.deadline {
            break;
        }
        // A usable connection first (the server may have closed the previous one).
        if !link.ready(&shared, &mut stats).await {
            continue;
        }
        let Some(seq) = shared.next_seq(index, taken) else { break };
        taken += 1;
        let n = shared.counter_start.wrapping_add(seq);
        let request = build_request(&shared.target, &shared.plan, n);
        let started = Instant::now();
        let until = (started + shared.timeout).min(shared.deadline + DEADLINE_GRACE);
        let Some((status, body)) = link.send(&shared, &mut stats, request, until).await else { continue };
        stats.latencies_us.push(micros(started.elapsed()));
        if status.is_success() {
            stats.ok += 1;
            if let Some((poll, _)) = &shared.poll {
                wait_active(&shared, poll, n, started, &mut link, &mut stats).await;
            }
        } else {
            stats.non_2xx += 1;
            *stats.error_codes.entry(error_code(status, &body)).or_default() += 1;
            record_first(&shared.first_error, || (status.as_u16(), body_excerpt(&body)));
        }
    }
    stats
}

/// Polls the gateway of request `n` (sent at `sent`) until it is `active` again, at most --timeout
/// after `sent`, and counts the request as activated (with the time it took) or not.
async fn wait_active(shared: &Shared, poll: &Plan, n: u64, sent: Instant, link: &mut Link, stats: &mut WorkerStats) {
    let until = sent + shared.timeout;
    let mut last_status = None;
    let failure = loop {
        if shared.stopped() {
            break "interrupted".to_owned();
        }
        if Instant::now() >= until {
            break format!("not active within {:?} (last Status {last_status:?})", shared.timeout);
        }
        if !link.ready(shared, stats).await {
            continue;
        }
        stats.polls += 1;
        match link.send(shared, stats, build_request(&shared.target, poll, n), until).await {
            Some((status, body)) if status.is_success() => {
                last_status = json_field(&body, "Status");
                if last_status.as_deref() == Some("active") {
                    stats.activated_us.push(micros(sent.elapsed()));
                    return;
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Some((status, body)) => break format!("{WAIT_ACTION}: HTTP {}: {}", status.as_u16(), body_excerpt(&body)),
            None => {} // counted; try again until `until`
        }
    };
    stats.not_activated += 1;
    let gateway = poll.value(WAIT_PARAM).map(|v| v.at(n)).unwrap_or_default();
    record_first(&shared.first_wait_failure, || format!("{gateway}: {failure}"));
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("gatehouse-bench: {e}");
            std::process::exit(2);
        }
    }
}

/// The user's parameters in one list, files read; an error for a repeated or computed name.
fn user_params(args: &Args) -> Result<Vec<(String, Value)>, String> {
    let mut params: Vec<(String, Value)> =
        args.params.iter().map(|(k, v)| (k.clone(), Value::Literal(v.clone()))).collect();
    params.extend(args.param_templates.iter().map(|(k, segs)| (k.clone(), Value::Template(segs.clone()))));
    for (k, path) in &args.param_files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--param-file {k}={path}: {e}"))?;
        let values = parse_value_list(&text).map_err(|e| format!("--param-file {k}={path}: {e}"))?;
        params.push((k.clone(), Value::List(values)));
    }
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    if names.contains(&"Signature") {
        return Err("the Signature parameter is computed, do not pass it".into());
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("parameter {:?} given more than once", w[0]));
    }
    Ok(params)
}

async fn run(args: Args) -> Result<i32, String> {
    let target = parse_endpoint(&args.endpoint)?;
    let tls = match (&target.tls_name, &args.ca_cert) {
        (Some(_), Some(ca)) => Some(gatehouse::api::tls::connector(ca).map_err(|e| format!("--ca-cert: {e:#}"))?),
        (Some(_), None) => return Err("an https --endpoint needs --ca-cert".into()),
        (None, _) => None,
    };
    if args.requests == Some(0) {
        return Err("--requests must be at least 1".into());
    }
    let plan = Plan {
        method: args.method,
        action: args.action.clone(),
        api_version: args.api_version.clone(),
        access_key_id: args.access_key_id.clone(),
        secret: args.access_key_secret.clone(),
        params: user_params(&args)?,
    };
    let connections = u64::from(args.connections);
    let poll = if args.wait_active { Some((plan.poll_plan(connections)?, connections)) } else { None };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        plan,
        poll,
        target,
        tls,
        counter: AtomicU64::new(0),
        counter_start: args.counter_start,
        max_requests: args.requests,
        deadline: started + args.duration,
        timeout: args.timeout,
        stop: AtomicBool::new(false),
        first_error: Mutex::new(None),
        first_transport_error: Mutex::new(None),
        first_wait_failure: Mutex::new(None),
    });
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let tasks: Vec<_> = (0..connections).map(|i| tokio::spawn(worker(shared.clone(), i))).collect();
    let mut total = WorkerStats::default();
    for task in tasks {
        total.merge(task.await.map_err(|e| format!("worker failed: {e}"))?);
    }
    // With --wait-active this includes waiting for the last requests' gateways to be active.
    let elapsed = started.elapsed().as_secs_f64();
    let per_s = |count: u64| if elapsed > 0.0 { count as f64 / elapsed } else { 0.0 };
    let completed = total.latencies_us.len() as u64;
    let activated = total.activated_us.len() as u64;
    let latency = Summary::of(std::mem::take(&mut total.latencies_us));
    let activation = Summary::of(std::mem::take(&mut total.activated_us));
    let first_error = take_first(&shared.first_error);
    let first_transport_error = take_first(&shared.first_transport_error);
    let first_wait_failure = take_first(&shared.first_wait_failure);

    if args.json {
        let report = serde_json::json!({
            "endpoint": args.endpoint,
            "action": args.action,
            "method": args.method.as_str(),
            "connections": args.connections,
            "elapsed_s": elapsed,
            "requests": completed,
            "ok_2xx": total.ok,
            "non_2xx": total.non_2xx,
            "non_2xx_codes": total.error_codes,
            "transport_errors": total.transport_errors,
            "timeouts": total.timeouts,
            "connections_opened": total.connects,
            "req_per_s": per_s(completed),
            "latency_ms": latency.json(),
            "wait_active": args.wait_active.then(|| serde_json::json!({
                "activated": activated,
                "not_activated": total.not_activated,
                "activated_per_s": per_s(activated),
                "polls": total.polls,
                "request_to_active_ms": activation.json(),
                "first_failure": first_wait_failure,
            })),
            "first_error": first_error.as_ref().map(|(status, body)| serde_json::json!({"status": status, "body": body})),
            "first_transport_error": first_transport_error,
        });
        println!("{report}");
    } else {
        println!(
            "gatehouse-bench: {} {} {} — {} connections, {:.2} s",
            args.method.as_str(),
            args.endpoint,
            args.action,
            args.connections,
            elapsed
        );
        println!("  requests:    {completed} (2xx {}, non-2xx {})", total.ok, total.non_2xx);
        if !total.error_codes.is_empty() {
            let codes: Vec<String> = total.error_codes.iter().map(|(code, count)| format!("{code} {count}")).collect();
            println!("  non-2xx:     {}", codes.join(", "));
        }
        println!(
            "  errors:      {} transport, {} timeouts ({} connections opened)",
            total.transport_errors, total.timeouts, total.connects
        );
        println!("  throughput:  {:.1} req/s", per_s(completed));
        println!("  latency ms:  {}", latency.text());
        if args.wait_active {
            println!(
                "  active:      {activated} of {} 2xx seen {WAIT_ACTION} active again ({} not, {} polls)",
                total.ok, total.not_activated, total.polls
            );
            println!("  activated:   {:.1} /s (elapsed includes the wait for the last ones)", per_s(activated));
            println!("  to active ms: {}", activation.text());
        }
        if let Some((status, body)) = &first_error {
            println!("  first non-2xx: HTTP {status}: {body}");
        }
        if let Some(e) = &first_transport_error {
            println!("  first transport error: {e}");
        }
        if let Some(e) = &first_wait_failure {
            println!("  first not activated: {e}");
        }
    }
    Ok(if completed == 0 || total.not_activated > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests;
