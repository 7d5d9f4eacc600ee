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
//! ```
//!
//! `--param` values are sent literally; `--param-template` values expand `{n}` (a run-wide request
//! counter starting at `--counter-start`) and `{ip}` (a distinct IPv4 address derived from that counter,
//! `11.x.y.z`). GET puts every parameter in the query; POST (the default) sends them as an
//! `application/x-www-form-urlencoded` body, the way Node pop-core does.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use gatehouse::api::auth::{percent_encode, rpc_v1_signature, rpc_v1_string_to_sign};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

const MAX_DURATION: Duration = Duration::from_secs(300);
/// Longest error body kept for the report.
const MAX_ERROR_BODY: usize = 2000;
/// How long after the deadline an in-flight request may still finish.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed connect, so a dead server does not turn the bench into a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

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
    about = "Load generator for a running gatehouse server (signed RPC-v1 requests over keep-alive HTTP/1.1)"
)]
struct Args {
    /// Server base URL (plain http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
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
    /// First value of the request counter used by --param-template (pick a fresh range per run when
    /// creating unique resources).
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
    /// Per-request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------------
// Pure parts: argument parsing, templates, signing, percentiles
// ---------------------------------------------------------------------------------------------------

/// One piece of a `--param-template` value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `{n}`: the request counter.
    N,
    /// `{ip}`: a distinct IPv4 address derived from the counter.
    Ip,
}

fn split_param(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name, value)),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    let (name, value) = split_param(s)?;
    Ok((name.to_owned(), value.to_owned()))
}

fn parse_template_param(s: &str) -> Result<(String, Vec<Seg>), String> {
    let (name, value) = split_param(s)?;
    Ok((name.to_owned(), parse_template(value)?))
}

/// Splits a template into literal text, `{n}` and `{ip}`; `{{` and `}}` are literal braces.
fn parse_template(t: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut lit = String::new();
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            lit.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            lit.push('}');
            rest = after;
        } else if c == '{' {
            let end = rest.find('}').ok_or_else(|| format!("unclosed '{{' in template {t:?}"))?;
            let seg = match &rest[1..end] {
                "n" => Seg::N,
                "ip" => Seg::Ip,
                other => return Err(format!("unknown placeholder {{{other}}} in {t:?} (use {{n}} or {{ip}})")),
            };
            if !lit.is_empty() {
                segs.push(Seg::Lit(std::mem::take(&mut lit)));
            }
            segs.push(seg);
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err(format!("unmatched '}}' in template {t:?} (write '}}}}' for a literal brace)"));
        } else {
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !lit.is_empty() {
        segs.push(Seg::Lit(lit));
    }
    Ok(segs)
}

/// A distinct address for every `n` below 254·65536 (then it wraps): 11.x.y.z with z in 1..=254.
fn ip_for(n: u64) -> Ipv4Addr {
    let z = (n % 254) as u8 + 1;
    let rest = n / 254;
    Ipv4Addr::new(11, ((rest >> 8) & 0xff) as u8, (rest & 0xff) as u8, z)
}

fn expand(segs: &[Seg], n: u64) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Lit(s) => out.push_str(s),
            Seg::N => out.push_str(&n.to_string()),
            Seg::Ip => out.push_str(&ip_for(n).to_string()),
        }
    }
    out
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?} in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

fn parse_bench_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!("duration must be > 0 and at most {}s", MAX_DURATION.as_secs()));
    }
    Ok(d)
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("timeout must be > 0".into());
    }
    Ok(d)
}

/// What every request of a run shares.
struct Plan {
    method: HttpMethod,
    action: String,
    api_version: String,
    access_key_id: String,
    secret: String,
    params: Vec<(String, String)>,
    templates: Vec<(String, Vec<Seg>)>,
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
        let user = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(self.templates.iter().map(|(k, segs)| (k.clone(), expand(segs, n))));
        for (k, v) in user {
            match out.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        out
    }

    /// The signed, encoded parameter string (query or form body) of request number `n`.
    fn encoded_request(&self, n: u64, nonce: &str, timestamp: &str) -> String {
        sign_and_encode(self.method.as_str(), &self.params_for(n, nonce, timestamp), &self.secret)
    }
}

/// `k=v&…&Signature=…`, RFC 3986-encoded, signed for `method`.
fn sign_and_encode(method: &str, params: &[(String, String)], secret: &str) -> String {
    let signature = rpc_v1_signature(&rpc_v1_string_to_sign(method, params), secret);
    let mut out = String::with_capacity(512);
    for (k, v) in params {
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
        out.push('&');
    }
    out.push_str("Signature=");
    out.push_str(&percent_encode(&signature));
    out
}

fn timestamp_now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(&fmt).expect("UTC timestamps always format")
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

fn micros_to_ms(us: Option<u32>) -> Option<f64> {
    us.map(|us| us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------------------------
// Load generation
// ---------------------------------------------------------------------------------------------------

struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// `Host` header value (the endpoint's authority, as written).
    host: HeaderValue,
    path: String,
}

fn parse_endpoint(endpoint: &str) -> Result<Target, String> {
    let uri: Uri = endpoint.parse().map_err(|e| format!("invalid --endpoint {endpoint:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("--endpoint scheme {other:?} is not supported (plain http only)")),
        None => return Err(format!("--endpoint {endpoint:?} needs a scheme, e.g. http://127.0.0.1:8080")),
    }
    let authority = uri.authority().ok_or_else(|| format!("--endpoint {endpoint:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let addr = format!("{}:{port}", authority.host());
    let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
    let path = match uri.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    Ok(Target { addr, host, path })
}

struct Shared {
    plan: Plan,
    target: Target,
    counter: AtomicU64,
    counter_start: u64,
    max_requests: Option<u64>,
    deadline: Instant,
    timeout: Duration,
    stop: AtomicBool,
    first_error: Mutex<Option<(u16, String)>>,
    first_transport_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct WorkerStats {
    /// Latency of every completed request, in microseconds.
    latencies_us: Vec<u32>,
    ok: u64,
    non_2xx: u64,
    transport_errors: u64,
    timeouts: u64,
    connects: u64,
}

fn record_first<T>(slot: &Mutex<Option<T>>, value: impl FnOnce() -> T) {
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(value());
    }
}

async fn connect(shared: &Shared) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream =
        TcpStream::connect(&shared.target.addr).await.map_err(|e| format!("connect {}: {e}", shared.target.addr))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn build_request(shared: &Shared, n: u64) -> Request<Full<Bytes>> {
    let plan = &shared.plan;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let encoded = plan.encoded_request(n, &nonce, &timestamp_now());
    let builder = Request::builder()
        .header(HOST, shared.target.host.clone())
        .header(USER_AGENT, "gatehouse-bench/0.1")
        .header("x-acs-action", plan.action.as_str())
        .header("x-acs-version", plan.api_version.as_str());
    let (builder, body) = match plan.method {
        HttpMethod::Get => (builder.method(Method::GET).uri(format!("{}?{encoded}", shared.target.path)), Bytes::new()),
        HttpMethod::Post => (
            builder
                .method(Method::POST)
                .uri(shared.target.path.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Bytes::from(encoded),
        ),
    };
    builder.body(Full::new(body)).expect("request parts are valid")
}

async fn worker(shared: Arc<Shared>) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed) || Instant::now() >= shared.deadline {
            break;
        }
        // A usable connection first (the server may have closed the previous one).
        let ready = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            sender = None;
            match connect(&shared).await {
                Ok(s) => {
                    stats.connects += 1;
                    sender = Some(s);
                }
                Err(e) => {
                    stats.transport_errors += 1;
                    record_first(&shared.first_transport_error, || e);
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
            continue;
        }
        let seq = shared.counter.fetch_add(1, Ordering::Relaxed);
        if shared.max_requests.is_some_and(|max| seq >= max) {
            break;
        }
        let request = build_request(&shared, shared.counter_start.wrapping_add(seq));
        let s = sender.as_mut().expect("connection is ready");
        let started = Instant::now();
        let until = (started + shared.timeout).min(shared.deadline + DEADLINE_GRACE);
        let exchange = async {
            let response = s.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout_at(until, exchange).await {
            Ok(Ok((status, body))) => {
                let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                stats.latencies_us.push(us);
                if status.is_success() {
                    stats.ok += 1;
                } else {
                    stats.non_2xx += 1;
                    record_first(&shared.first_error, || {
                        let end = body.len().min(MAX_ERROR_BODY);
                        (status.as_u16(), String::from_utf8_lossy(&body[..end]).into_owned())
                    });
                }
            }
            Ok(Err(e)) => {
                stats.transport_errors += 1;
                record_first(&shared.first_transport_error, || format!("request: {e}"));
                sender = None;
            }
            Err(_) => {
                stats.timeouts += 1;
                sender = None; // the connection still has a request in flight
            }
        }
    }
    stats
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

async fn run(args: Args) -> Result<i32, String> {
    let target = parse_endpoint(&args.endpoint)?;
    {
        let mut names: Vec<&str> = args.params.iter().map(|(k, _)| k.as_str()).collect();
        names.extend(args.param_templates.iter().map(|(k, _)| k.as_str()));
        if names.contains(&"Signature") {
            return Err("the Signature parameter is computed, do not pass it".into());
        }
        let mut sorted = names.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("parameter {:?} given more than once", w[0]));
        }
    }
    if args.requests == Some(0) {
        return Err("--requests must be at least 1".into());
    }
    let plan = Plan {
        method: args.method,
        action: args.action.clone(),
        api_version: args.api_version.clone(),
        access_key_id: args.access_key_id.clone(),
        secret: args.access_key_secret.clone(),
        params: args.params.clone(),
        templates: args.param_templates.clone(),
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        plan,
        target,
        counter: AtomicU64::new(0),
        counter_start: args.counter_start,
        max_requests: args.requests,
        deadline: started + args.duration,
        timeout: args.timeout,
        stop: AtomicBool::new(false),
        first_error: Mutex::new(None),
        first_transport_error: Mutex::new(None),
    });
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let tasks: Vec<_> = (0..args.connections).map(|_| tokio::spawn(worker(shared.clone()))).collect();
    let mut total = WorkerStats::default();
    for task in tasks {
        let s = task.await.map_err(|e| format!("worker failed: {e}"))?;
        total.latencies_us.extend(s.latencies_us);
        total.ok += s.ok;
        total.non_2xx += s.non_2xx;
        total.transport_errors += s.transport_errors;
        total.timeouts += s.timeouts;
        total.connects += s.connects;
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let lat = &total.latencies_us;
    let completed = lat.len() as u64;
    let rate = if elapsed > 0.0 { completed as f64 / elapsed } else { 0.0 };
    let mean_ms = if lat.is_empty() {
        None
    } else {
        Some(lat.iter().map(|&us| us as f64).sum::<f64>() / lat.len() as f64 / 1000.0)
    };
    let (p50, p90, p99, max) = (
        micros_to_ms(percentile(lat, 50.0)),
        micros_to_ms(percentile(lat, 90.0)),
        micros_to_ms(percentile(lat, 99.0)),
        micros_to_ms(lat.last().copied()),
    );
    let first_error = shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let first_transport_error = shared.first_transport_error.lock().unwrap_or_else(|e| e.into_inner()).clone();

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
            "transport_errors": total.transport_errors,
            "timeouts": total.timeouts,
            "connections_opened": total.connects,
            "req_per_s": rate,
            "latency_ms": { "mean": mean_ms, "p50": p50, "p90": p90, "p99": p99, "max": max },
            "first_error": first_error.as_ref().map(|(status, body)| serde_json::json!({"status": status, "body": body})),
            "first_transport_error": first_transport_error,
        });
        println!("{report}");
    } else {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        println!(
            "gatehouse-bench: {} {} {} — {} connections, {:.2} s",
            args.method.as_str(),
            args.endpoint,
            args.action,
            args.connections,
            elapsed
        );
        println!("  requests:    {completed} (2xx {}, non-2xx {})", total.ok, total.non_2xx);
        println!(
            "  errors:      {} transport, {} timeouts ({} connections opened)",
            total.transport_errors, total.timeouts, total.connects
        );
        println!("  throughput:  {rate:.1} req/s");
        println!(
            "  latency ms:  mean {}  p50 {}  p90 {}  p99 {}  max {}",
            ms(mean_ms),
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max)
        );
        if let Some((status, body)) = &first_error {
            println!("  first non-2xx: HTTP {status}: {body}");
        }
        if let Some(e) = &first_transport_error {
            println!("  first transport error: {e}");
        }
    }
    Ok(if completed == 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse::api::auth::{claim, decode_form, verify, SignedParts};

    #[test]
    fn percentile_nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 0.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), Some(20));
        assert_eq!(percentile(&v, 51.0), Some(30));
        assert_eq!(percentile(&v, 99.0), Some(40));
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
    }

    #[test]
    fn template_parsing_and_expansion() {
        assert_eq!(parse_template("cgw{n}").unwrap(), vec![Seg::Lit("cgw".into()), Seg::N]);
        assert_eq!(parse_template("{ip}").unwrap(), vec![Seg::Ip]);
        assert_eq!(parse_template("plain").unwrap(), vec![Seg::Lit("plain".into())]);
        assert_eq!(parse_template("").unwrap(), vec![]);
        assert_eq!(parse_template("a{{b}}").unwrap(), vec![Seg::Lit("a{b}".into())]);
        assert_eq!(parse_template("网{n}关").unwrap(), vec![Seg::Lit("网".into()), Seg::N, Seg::Lit("关".into())]);
        assert!(parse_template("{x}").is_err());
        assert!(parse_template("{n").is_err());
        assert!(parse_template("a}b").is_err());

        let t = parse_template("cgw-{n}-{ip}").unwrap();
        assert_eq!(expand(&t, 0), "cgw-0-11.0.0.1");
        assert_eq!(expand(&t, 253), "cgw-253-11.0.0.254");
        assert_eq!(expand(&t, 254), "cgw-254-11.0.1.1");
        assert_eq!(expand(&t, 12345), "cgw-12345-11.0.48.154");
    }

    #[test]
    fn ip_for_is_unique_and_never_network_or_broadcast() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..200_000u64 {
            let ip = ip_for(n);
            let o = ip.octets();
            assert_eq!(o[0], 11);
            assert!(o[3] != 0 && o[3] != 255, "{ip}");
            assert!(seen.insert(ip), "duplicate {ip} at {n}");
        }
        assert_eq!(ip_for(254 * 65536 - 1), Ipv4Addr::new(11, 255, 255, 254));
    }

    #[test]
    fn cli_param_parsing() {
        assert_eq!(parse_param("RegionId=cn-hangzhou").unwrap(), ("RegionId".into(), "cn-hangzhou".into()));
        assert_eq!(parse_param("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_param("Empty=").unwrap(), ("Empty".into(), "".into()));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=x").is_err());
        assert_eq!(parse_template_param("Name=cgw{n}").unwrap().1, vec![Seg::Lit("cgw".into()), Seg::N]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_bench_duration("300s").is_ok());
        assert!(parse_bench_duration("301s").is_err());
        assert!(parse_bench_duration("0s").is_err());
    }

    #[test]
    fn endpoint_parsing() {
        let t = parse_endpoint("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host.to_str().unwrap(), t.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/")
        );
        let t = parse_endpoint("http://localhost").unwrap();
        assert_eq!(t.addr, "localhost:80");
        assert!(parse_endpoint("https://127.0.0.1:8443").is_err());
        assert!(parse_endpoint("127.0.0.1:8080").is_err());
    }

    fn plan(method: HttpMethod) -> Plan {
        Plan {
            method,
            action: "CreateCustomerGateway".into(),
            api_version: "2016-04-28".into(),
            access_key_id: "ak-bench".into(),
            secret: "bench~secret".into(),
            params: vec![("RegionId".into(), "cn-hangzhou".into()), ("Format".into(), "json".into())],
            templates: vec![
                ("IpAddress".into(), parse_template("{ip}").unwrap()),
                ("Name".into(), parse_template("cgw {n}*").unwrap()),
            ],
        }
    }

    #[test]
    fn params_for_overrides_and_expands() {
        let p = plan(HttpMethod::Post).params_for(7, "nonce-1", "2026-11-22T01:46:34Z");
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Format"), Some("json")); // user value replaced the common one
        assert_eq!(p.iter().filter(|(n, _)| n == "Format").count(), 1);
        assert_eq!(get("IpAddress"), Some("11.0.0.8"));
        assert_eq!(get("Name"), Some("cgw 7*"));
        assert_eq!(get("SignatureNonce"), Some("nonce-1"));
        assert_eq!(get("AccessKeyId"), Some("ak-bench"));
        assert_eq!(get("Action"), Some("CreateCustomerGateway"));
    }

    /// What the bench sends must pass the server's own verification, both as a GET query and a POST body.
    #[test]
    fn encoded_requests_verify_with_the_server_code() {
        let headers = hyper::HeaderMap::new();
        for method in [HttpMethod::Get, HttpMethod::Post] {
            let plan = plan(method);
            let ts = timestamp_now();
            let wire = plan.encoded_request(42, "abcdef0123456789", &ts);
            let decoded = decode_form(wire.as_bytes());
            let (query, body): (Vec<_>, Vec<_>) = match method {
                HttpMethod::Get => (decoded, vec![]),
                HttpMethod::Post => (vec![], decoded),
            };
            let parts = SignedParts {
                method: method.as_str(),
                query: &query,
                body_params: &body,
                headers: &headers,
                body: wire.as_bytes(),
            };
            let c = claim(&parts).unwrap();
            assert_eq!(c.access_key_id, "ak-bench");
            assert_eq!(c.nonce, "abcdef0123456789");
            assert_eq!(c.timestamp, ts);
            gatehouse::api::auth::check_timestamp(&c, time::OffsetDateTime::now_utc()).unwrap();
            verify(&c, &parts, "bench~secret").unwrap();
            assert!(verify(&c, &parts, "other").is_err());
        }
    }

    #[test]
    fn timestamp_format() {
        let ts = timestamp_now();
        assert_eq!(ts.len(), "2026-11-22T01:46:34Z".len());
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "gatehouse-bench",
            "--access-key-id",
            "ID",
            "--access-key-secret",
            "S",
            "--action",
            "DescribeVpnGateway",
            "--param",
            "VpnGatewayId=vpn-xxx",
            "--param",
            "RegionId=cn-hangzhou",
            "--param-template",
            "Name=cgw{n}",
            "--connections",
            "4",
            "--duration",
            "2s",
            "--method",
            "get",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.method, HttpMethod::Get);
        assert_eq!(a.params.len(), 2);
        assert_eq!(a.duration, Duration::from_secs(2));
        assert!(a.json);
    }
}
