//! The gateway's SSL-VPN server: one `openvpn` process in the gateway's namespace, in
//! `<gateway dir>/openvpn/`: `server.conf` (certificates inline), `crl.pem`, `openvpn.pid`
//! (written by Gatehouse), `management.sock`, `openvpn.log`, `status.txt`.
//!
//! OpenVPN cannot change a server option at runtime, so a changed configuration restarts the
//! process (clients reconnect by themselves). The CRL is a file OpenVPN reads at every
//! connection: a revocation rewrites it in place and drops the revoked clients over the
//! management socket, without a restart. Online clients come from the status file; the log
//! from `openvpn.log`, read on from where it was last read.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::daemon::{alive, stop_process, Daemon};
use crate::dataplane::remote_access::{LogLine, OpenVpnFiles, SslVpnPlan};
use crate::dataplane::DataPlaneError;

/// How long a management exchange may take.
const MANAGEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How large `openvpn.log` grows before it starts over (what was read is in the store).
const LOG_MAX: u64 = 8 << 20;

pub struct OpenVpn {
    dir: PathBuf,
    daemon: Daemon,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> DataPlaneError {
    DataPlaneError::new(format!("{what}: {e}"))
}

impl OpenVpn {
    pub fn new(gateway_dir: &Path, ns: String) -> Self {
        let dir = gateway_dir.join("openvpn");
        OpenVpn { daemon: Daemon::new(ns, dir.join("openvpn.pid")), dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The PID of this gateway's openvpn if one runs (see `Daemon::running_pid`).
    pub async fn running_pid(&self) -> Option<u32> {
        self.daemon.running_pid().await
    }

    /// Brings the server to `plan` on `local`: started if it is not running, restarted if its
    /// configuration changed; a changed CRL is swapped in and the revoked clients dropped.
    pub async fn apply(&self, plan: &SslVpnPlan, local: std::net::Ipv4Addr) -> Result<(), DataPlaneError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir.display().to_string(), e))?;
        let conf = plan.openvpn_server_config(Some(&OpenVpnFiles { dir: &self.dir, local }));
        let crl_changed = std::fs::read_to_string(self.path("crl.pem")).ok().as_deref() != Some(plan.crl.as_str());
        if crl_changed {
            // Atomically: OpenVPN may be reading it for a connection right now.
            let tmp = self.path("crl.pem.new");
            std::fs::write(&tmp, &plan.crl).map_err(|e| io_err("writing crl.pem", e))?;
            std::fs::rename(&tmp, self.path("crl.pem")).map_err(|e| io_err("replacing crl.pem", e))?;
        }
        let running = self.running_pid().await;
        let same = std::fs::read_to_string(self.path("server.conf")).ok().as_deref() == Some(conf.as_str());
        match running {
            Some(_) if same => {
                if crl_changed {
                    self.drop_revoked(plan).await;
                }
                Ok(())
            }
            Some(pid) => {
                stop_process(pid).await;
                self.start(&conf).await
            }
            None => self.start(&conf).await,
        }
    }

    async fn start(&self, conf: &str) -> Result<(), DataPlaneError> {
        std::fs::write(self.path("server.conf"), conf).map_err(|e| io_err("writing server.conf", e))?;
        let _ = std::fs::remove_file(self.path("management.sock"));
        let (conf, dir) = (self.path("server.conf"), self.dir.clone());
        let pid = self.daemon.start("openvpn", [OsStr::new("--config"), conf.as_os_str()], |cmd| {
            // Log times in UTC, which is how they are read back.
            cmd.current_dir(dir).env("TZ", "UTC");
        })?;
        // Up once its management socket answers (a bad configuration exits at once instead).
        for _ in 0..100 {
            if !alive(pid) {
                let tail = self.log_tail(600);
                return Err(DataPlaneError::new(format!("openvpn exited at start: {tail}")));
            }
            if self.management("state").await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(DataPlaneError::new("openvpn's management socket did not answer within 5 s"))
    }

    /// Stops the server and forgets its files.
    pub async fn stop(&self) {
        self.daemon.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// One management command; its answer lines up to `END` (or the one `SUCCESS:`/`ERROR:` line).
    async fn management(&self, command: &str) -> Result<Vec<String>, DataPlaneError> {
        let exchange = async {
            let stream =
                UnixStream::connect(self.path("management.sock")).await.map_err(|e| io_err("management", e))?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            // OpenVPN ignores what is sent before its greeting.
            lines.next_line().await.map_err(|e| io_err("management", e))?;
            write.write_all(format!("{command}\n").as_bytes()).await.map_err(|e| io_err("management", e))?;
            let mut out = Vec::new();
            while let Some(line) = lines.next_line().await.map_err(|e| io_err("management", e))? {
                // The management interface ends its lines with CRLF.
                let line = line.trim_end_matches('\r').to_string();
                if line.starts_with(">INFO") || line.starts_with(">LOG") {
                    continue;
                }
                let done = line == "END" || line.starts_with("SUCCESS:") || line.starts_with("ERROR:");
                out.push(line);
                if done {
                    break;
                }
            }
            Ok(out)
        };
        tokio::time::timeout(MANAGEMENT_TIMEOUT, exchange)
            .await
            .map_err(|_| DataPlaneError::new("openvpn's management socket did not answer"))?
    }

    /// Drops the connected clients whose certificates were revoked. `client-kill` (unlike
    /// `kill`) tells the client, which reconnects at once and is refused by the new CRL.
    async fn drop_revoked(&self, plan: &SslVpnPlan) {
        let Ok(status) = self.management("status 3").await else { return };
        for row in status.iter().filter_map(|l| l.strip_prefix("CLIENT_LIST\t")) {
            // Common Name, Real Address, …, Client ID (the tenth field).
            let fields: Vec<&str> = row.split('\t').collect();
            let (Some(cn), Some(cid)) = (fields.first(), fields.get(9)) else { continue };
            if plan.revoked.iter().any(|r| r.id == *cn) {
                let _ = self.management(&format!("client-kill {cid}")).await;
            }
        }
    }

    /// Clients connected now, from the status file OpenVPN rewrites every 2 s. A client whose
    /// certificate was revoked is on its way out (OpenVPN lets it go a few seconds after telling
    /// it): it no longer counts.
    pub fn connections(&self, plan: &SslVpnPlan) -> u32 {
        let status = std::fs::read_to_string(self.path("status.txt")).unwrap_or_default();
        let revoked = |cn: &str| plan.revoked.iter().any(|r| r.id == cn);
        status
            .lines()
            .filter_map(|l| l.strip_prefix("CLIENT_LIST\t"))
            .filter(|row| !revoked(row.split('\t').next().unwrap_or_default()))
            .count() as u32
    }

    /// The log lines written since byte `offset`, and the offset after them (a log that was
    /// started again from scratch is read from its beginning). Lines about Gatehouse's own
    /// management sessions are left out, and file paths are shown by name only. Past
    /// `LOG_MAX` bytes the file starts over (OpenVPN appends, so it simply goes on at 0).
    pub fn log_since(&self, offset: u64) -> (Vec<LogLine>, u64) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::OpenOptions::new().read(true).write(true).open(self.path("openvpn.log")) else {
            return (Vec::new(), 0);
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = if len < offset { 0 } else { offset };
        let mut text = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut text).is_err() {
            return (Vec::new(), start);
        }
        // Only whole lines: a line being written is read next time.
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let dir = format!("{}/", self.dir.display());
        let lines = String::from_utf8_lossy(&text[..whole])
            .lines()
            .filter(|l| !l.get(20..).is_some_and(|m| m.starts_with("MANAGEMENT:")))
            .filter_map(|l| parse_log_line(&l.replace(&dir, "")))
            .collect();
        let mut end = start + whole as u64;
        if end > LOG_MAX && file.set_len(0).is_ok() {
            end = 0;
        }
        (lines, end)
    }

    fn log_tail(&self, max: usize) -> String {
        let text = std::fs::read_to_string(self.path("openvpn.log")).unwrap_or_default();
        text[text.len().saturating_sub(max)..].trim().to_string()
    }
}

/// `2026-11-22 01:38:23 message` (UTC, OpenVPN's `log-append` format) as a log line.
fn parse_log_line(line: &str) -> Option<LogLine> {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let (stamp, message) = (line.get(..19)?, line.get(20..)?);
    let t = time::PrimitiveDateTime::parse(stamp, &fmt).ok()?.assume_utc();
    Some(LogLine::openvpn(t.unix_timestamp() * 1_000_000, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_read_in_utc_and_rewritten_as_the_api_shows_them() {
        let l = parse_log_line("2022-02-28 14:05:51 MULTI: multi_create_instance called").unwrap();
        assert_eq!(l.text, "Mon Feb 28 14:05:51 2022 us=0 MULTI: multi_create_instance called");
        assert_eq!(l.ms, 1_646_057_151_000);
        assert!(parse_log_line("not a log line").is_none());
    }
}
