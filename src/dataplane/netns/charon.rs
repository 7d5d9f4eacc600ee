//! One charon (strongSwan's IKE daemon, the `charon-systemd` flavour, which writes no pid file
//! of its own) per gateway namespace: its configuration, starting it, adopting one that outlived
//! an earlier Gatehouse, and stopping it. Its files live in the gateway's directory:
//! `strongswan.conf`, `charon.log`, `charon.pid` (written by Gatehouse) and, when the path is
//! short enough for a unix socket, `charon.vici`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::daemon::{self, alive, Daemon};
use super::links;
use crate::dataplane::DataPlaneError;

/// Which ESP implementation the daemons use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EspBackend {
    /// The kernel's (XFRM), where the kernel has ESP.
    Kernel,
    /// strongSwan's userspace ESP (kernel-libipsec, a TUN device `ipsec0`): UDP-encapsulated ESP only.
    Libipsec,
}

/// Whether this kernel can hold an ESP SA: tries to add one in a throwaway namespace.
pub async fn detect_backend() -> EspBackend {
    let ns = format!("gh-esp-probe-{}", std::process::id());
    let probe = async {
        links::ip(&["netns", "add", &ns]).await?;
        links::ip(&[
            "-n",
            &ns,
            "xfrm",
            "state",
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
            "proto",
            "esp",
            "spi",
            "0x100",
            "enc",
            "cbc(aes)",
            "0x00112233445566778899aabbccddeeff",
            "auth",
            "hmac(sha1)",
            "0x00112233445566778899aabbccddeeff00112233",
        ])
        .await
    };
    let backend = if probe.await.is_ok() { EspBackend::Kernel } else { EspBackend::Libipsec };
    let _ = links::ip(&["netns", "del", &ns]).await;
    backend
}

/// The charon of one gateway: where its files are.
pub struct Charon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub ns: String,
    daemon: Daemon,
}

impl Charon {
    pub fn new(dir: PathBuf, ns: String) -> Self {
        let socket = daemon::socket_path(&dir, "charon.vici");
        let daemon = Daemon::new(ns.clone(), dir.join("charon.pid"));
        Charon { dir, socket, ns, daemon }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("strongswan.conf")
    }

    /// strongswan.conf for this instance. IKEv2 declares a peer dead after about 8 s of
    /// unanswered retransmissions (1 + 1.5 + 2.25 + 3.4 s).
    fn conf(&self, backend: EspBackend) -> String {
        let libipsec = if backend == EspBackend::Libipsec { "kernel-libipsec " } else { "" };
        format!(
            r#"# Written by Gatehouse for gateway namespace {ns}; rewritten at every start.
charon {{
  load = random nonce aes sha1 sha2 md5 hmac gmp kdf openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey attr {libipsec}kernel-netlink socket-default vici updown
  install_routes = yes
  routing_table = 220
  routing_table_prio = 220
  retransmit_tries = 3
  retransmit_timeout = 1.0
  retransmit_base = 1.5
  i_dont_care_about_security_and_use_aggressive_mode_psk = yes
  plugins {{
    vici {{ socket = unix://{socket} }}
  }}
  filelog {{
    main {{
      path = {log}
      time_format = %Y-%m-%d %H:%M:%S
      ike_name = yes
      append = yes
      default = 1
      flush_line = yes
    }}
  }}
}}
charon-systemd {{
  journal {{ default = -1 }}
}}
"#,
            ns = self.ns,
            socket = self.socket.display(),
            log = self.dir.join("charon.log").display(),
        )
    }

    /// The PID of this gateway's charon if one runs (see `Daemon::running_pid`).
    pub async fn running_pid(&self) -> Option<u32> {
        self.daemon.running_pid().await
    }

    /// Starts charon in the namespace, in its own process group so that it outlives Gatehouse.
    pub async fn start(&self, backend: EspBackend) -> Result<u32, DataPlaneError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| DataPlaneError::new(format!("{}: {e}", self.dir.display())))?;
        std::fs::write(self.conf_path(), self.conf(backend))
            .map_err(|e| DataPlaneError::new(format!("writing strongswan.conf: {e}")))?;
        let _ = std::fs::remove_file(&self.socket);
        let conf = self.conf_path();
        self.daemon.start("charon-systemd", std::iter::empty::<&str>(), |cmd| {
            cmd.env("STRONGSWAN_CONF", conf);
        })
    }

    /// Waits until the VICI socket answers.
    pub async fn wait_ready(&self, pid: u32, deadline: Duration) -> Result<(), DataPlaneError> {
        let start = Instant::now();
        loop {
            if super::vici::connect(&self.socket).await.is_ok() {
                return Ok(());
            }
            if !alive(pid) {
                return Err(DataPlaneError::new(format!(
                    "charon exited during start; see {}",
                    self.dir.join("charon.log").display()
                )));
            }
            if start.elapsed() > deadline {
                return Err(DataPlaneError::new("charon's VICI socket did not answer in time"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops this gateway's charon: TERM (it deletes its SAs with the peers), then KILL.
    pub async fn stop(&self) {
        self.daemon.stop().await;
    }
}

/// Whether the binaries gateway mode needs are installed.
pub fn check_installed() -> Result<(), DataPlaneError> {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|p| Path::new(&p).join(name).is_file()))
            .unwrap_or(false)
    };
    for bin in ["ip", "charon-systemd"] {
        if !found(bin) {
            return Err(DataPlaneError::new(format!(
                "{bin} not found: gateway mode needs iproute2 and strongSwan (charon-systemd); see README"
            )));
        }
    }
    if !found("ping") {
        tracing::warn!("ping not found (iputils-ping): every health check will fail");
    }
    Ok(())
}
