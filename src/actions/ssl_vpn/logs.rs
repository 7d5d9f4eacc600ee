//! The SSL-VPN server's log: the lines its data plane reports (OpenVPN's own format), kept per
//! server up to `KEEP` lines, and DescribeVpnSslServerLogs over them.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SslVpnServer;
use crate::api::error::{ApiError, ApiResult};
use crate::app::{Body, Ctx};
use crate::dataplane::remote_access::LogLine;
use crate::store::{now_ms, Resource, Tx, TxExt};

/// The newest lines a server keeps.
const KEEP: usize = 2000;

/// One server's log, stored beside it under the server's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SslVpnServerLog {
    pub id: String,
    pub account_id: i64,
    pub region_id: String,
    pub created_ms: i64,
    pub lines: Vec<LogLine>,
}

crate::resource!(SslVpnServerLog, "SslVpnServerLog", {});

/// Appends lines to the server's log, dropping the oldest beyond `KEEP`.
pub fn append(tx: &mut dyn Tx, s: &SslVpnServer, lines: &[LogLine]) -> ApiResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    match tx.get_as::<SslVpnServerLog>(s.account_id, &s.id)? {
        Some(mut log) => {
            log.lines.extend_from_slice(lines);
            let excess = log.lines.len().saturating_sub(KEEP);
            log.lines.drain(..excess);
            tx.update_as(&log)
        }
        None => tx.insert_as(&SslVpnServerLog {
            id: s.id.clone(),
            account_id: s.account_id,
            region_id: s.region_id.clone(),
            created_ms: now_ms(),
            lines: lines[lines.len().saturating_sub(KEEP)..].to_vec(),
        }),
    }
}

pub fn forget(tx: &mut dyn Tx, account_id: i64, server_id: &str) -> ApiResult<()> {
    tx.delete(SslVpnServerLog::KIND, account_id, server_id)
}

/// The window `[from, to]` (UNIX seconds) the query asks for: From and To, or one of them and
/// MinutePeriod, or MinutePeriod up to now.
fn window(from: Option<i64>, to: Option<i64>, minutes: Option<i64>, now_s: i64) -> ApiResult<(i64, i64)> {
    let span = minutes.map(|m| m.saturating_mul(60));
    match (from, to, span) {
        (Some(f), Some(t), _) => Ok((f, t)),
        (Some(f), None, Some(s)) => Ok((f, f.saturating_add(s))),
        (None, Some(t), Some(s)) => Ok((t.saturating_sub(s), t)),
        (None, None, Some(s)) => Ok((now_s.saturating_sub(s), now_s)),
        (Some(_), None, None) => Err(ApiError::bad_request("MissingParam.To", "With From, give To or MinutePeriod.")),
        (None, Some(_), None) => Err(ApiError::bad_request("MissingParam.From", "With To, give From or MinutePeriod.")),
        (None, None, None) => Err(ApiError::bad_request(
            "MissingParam.MinutePeriod",
            "Give MinutePeriod when neither From nor To is given.",
        )),
    }
}

pub async fn describe(ctx: Ctx) -> ApiResult<Body> {
    let region = ctx.region()?;
    let p = &ctx.params;
    let id = p.required("VpnSslServerId")?;
    let cert = p.str("SslVpnClientCertId");
    let (from, to) = (p.parse::<i64>("From")?, p.parse::<i64>("To")?);
    let minutes = p.parse::<i64>("MinutePeriod")?;
    if minutes.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid_parameter("MinutePeriod", "it must be at least 1"));
    }
    let (from_s, to_s) = window(from, to, minutes, now_ms() / 1000)?;
    if from_s > to_s {
        return Err(ApiError::invalid_parameter("From", "the window ends before it starts"));
    }
    let page = p.page(50)?;
    let account_id = ctx.account_id;
    ctx.store().read(|tx| {
        let s = super::find(tx, account_id, &region.id, &id)?;
        let log = tx.get_as::<SslVpnServerLog>(account_id, &s.id)?;
        let lines: Vec<&LogLine> = log
            .iter()
            .flat_map(|l| l.lines.iter())
            .filter(|l| (from_s.saturating_mul(1000)..=to_s.saturating_mul(1000).saturating_add(999)).contains(&l.ms))
            .filter(|l| cert.as_ref().is_none_or(|c| l.text.contains(c.as_str())))
            .collect();
        let shown: Vec<&str> =
            lines.iter().skip(page.offset() as usize).take(page.size as usize).map(|l| l.text.as_str()).collect();
        Ok(crate::actions::rules::object(json!({
            "Count": lines.len(),
            "IsCompleted": true,
            "PageNumber": page.number,
            "PageSize": page.size,
            "Data": {"Logs": shown},
        })))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(window(Some(10), Some(20), None, 99).unwrap(), (10, 20));
        assert_eq!(window(Some(10), None, Some(1), 99).unwrap(), (10, 70));
        assert_eq!(window(None, Some(100), Some(1), 999).unwrap(), (40, 100));
        assert_eq!(window(None, None, Some(2), 1000).unwrap(), (880, 1000));
        assert_eq!(window(Some(1), Some(2), Some(3), 9).unwrap(), (1, 2));
        assert_eq!(window(Some(1), None, None, 9).unwrap_err().code, "MissingParam.To");
        assert_eq!(window(None, Some(1), None, 9).unwrap_err().code, "MissingParam.From");
        assert_eq!(window(None, None, None, 9).unwrap_err().code, "MissingParam.MinutePeriod");
    }
}
