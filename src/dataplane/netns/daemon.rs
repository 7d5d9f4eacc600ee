//! What every daemon of a gateway (charon, openvpn, bird) has in common: it runs inside the
//! gateway's namespace in a process group of its own, so that it outlives Gatehouse; its PID is
//! recorded in a file of ours, and a later Gatehouse adopts it when that PID is alive and still
//! lives in the namespace (a recycled PID is not ours). Nothing is ever found or killed by name.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::links;
use crate::dataplane::DataPlaneError;

/// Unix socket paths are limited to 108 bytes.
const MAX_SOCKET_PATH: usize = 100;

/// One daemon of one gateway: its namespace and its PID file.
pub struct Daemon {
    pub ns: String,
    pid_file: PathBuf,
}

impl Daemon {
    pub fn new(ns: String, pid_file: PathBuf) -> Self {
        Daemon { ns, pid_file }
    }

    /// The daemon's PID if it runs: recorded by us, alive, and inside the namespace. Cheap (two
    /// `stat`s and a read of /proc): the watchers ask every second.
    pub async fn running_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()?;
        (alive(pid) && in_namespace(pid, &self.ns)).then_some(pid)
    }

    /// Starts `program args…` in the namespace (`setup` adds its environment or working
    /// directory) and records its PID. `ip netns exec` execs into the program, so the PID is the
    /// daemon's own; the daemon must stay in the foreground.
    pub fn start<I, S>(&self, program: &str, args: I, setup: impl FnOnce(&mut Command)) -> Result<u32, DataPlaneError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, program]).args(args);
        setup(&mut cmd);
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DataPlaneError::new(format!("starting {program}: {e}")))?;
        let pid = child.id().ok_or_else(|| DataPlaneError::new(format!("{program} exited at once")))?;
        std::fs::write(&self.pid_file, format!("{pid}\n"))
            .map_err(|e| DataPlaneError::new(format!("writing {}: {e}", self.pid_file.display())))?;
        // Reap it when it exits, so a dead daemon leaves no zombie behind.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(pid)
    }

    /// Stops the daemon if it runs, and forgets its PID.
    pub async fn stop(&self) {
        if let Some(pid) = self.running_pid().await {
            stop_process(pid).await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Whether `pid` lives in namespace `ns`: its network namespace is the file `ip netns` keeps
/// for `ns` (what `ip netns identify` compares, without running it).
fn in_namespace(pid: u32, ns: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(of_pid), Ok(named)) =
        (std::fs::metadata(format!("/proc/{pid}/ns/net")), std::fs::metadata(Path::new("/run/netns").join(ns)))
    else {
        return false;
    };
    (of_pid.dev(), of_pid.ino()) == (named.dev(), named.ino())
}

/// `dir/name` for a unix socket, or a file in the temporary directory named after `dir` when
/// that path would be too long for one.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    if path.as_os_str().len() <= MAX_SOCKET_PATH {
        return path;
    }
    std::env::temp_dir().join(format!("gatehouse-{}.{name}", links::host_link(&dir.to_string_lossy(), "")))
}

/// Stops a daemon of ours: TERM, then KILL if it is still there after 3 s; returns once it is
/// gone (until then it holds its namespace and its ports), or after 2 s more.
pub async fn stop_process(pid: u32) {
    signal(pid, "TERM").await;
    if !exited(pid, Duration::from_secs(3)).await {
        signal(pid, "KILL").await;
        exited(pid, Duration::from_secs(2)).await;
    }
}

/// Waits up to `limit` for `pid` to exit; whether it did.
async fn exited(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

async fn signal(pid: u32, sig: &str) {
    let _ = links::run("kill", &[&format!("-{sig}"), &pid.to_string()]).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_socket_paths_move_to_the_temporary_directory() {
        let short = Path::new("/var/lib/gatehouse/dataplane/vpn-1");
        assert_eq!(socket_path(short, "bird.ctl"), short.join("bird.ctl"));
        let long = PathBuf::from(format!("/{}", "d".repeat(120)));
        let moved = socket_path(&long, "bird.ctl");
        assert!(moved.starts_with(std::env::temp_dir()) && moved.to_string_lossy().ends_with(".bird.ctl"));
        assert!(moved.as_os_str().len() <= MAX_SOCKET_PATH);
    }
}
