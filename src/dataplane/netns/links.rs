//! A gateway's network namespace and its links, through iproute2 (`ip`). Every operation is
//! idempotent: it checks what exists before it creates, so a restarted Gatehouse adopts what is
//! already right.
//!
//! Inside namespace `<prefix><gateway id>`:
//! - `pub0` (and `pub1` on dual-tunnel gateways): the public addresses, veths into the uplink
//!   bridge; the default route via `--uplink-gateway` when one is given;
//! - `vpc0`: the IntranetIp, a veth into the VPC's bridge; VPC hosts reach remote subnets
//!   through it;
//! - `lo`: health-check source addresses (/32), answered for on no link (arp_ignore).
//!
//! The host ends of the veths are named `gh<hash><role>` (≤ 15 characters), from a hash of the
//! namespace's name.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use tokio::process::Command;

use crate::dataplane::DataPlaneError;

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `ip args…`; its stderr becomes the error.
pub async fn ip(args: &[&str]) -> Result<String, DataPlaneError> {
    run("ip", args).await
}

/// Runs a program to completion within `IP_TIMEOUT`.
pub async fn run(program: &str, args: &[&str]) -> Result<String, DataPlaneError> {
    let out = tokio::time::timeout(IP_TIMEOUT, Command::new(program).args(args).kill_on_drop(true).output())
        .await
        .map_err(|_| DataPlaneError::new(format!("{program} {} timed out", args.join(" "))))?
        .map_err(|e| DataPlaneError::new(format!("running {program}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(DataPlaneError::new(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub fn exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// The names of every namespace that starts with `prefix`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect()
}

/// The host end of one of the namespace's veths.
pub fn host_link(ns: &str, role: &str) -> String {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let hash = ns.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("gh{:08x}{role}", hash as u32)
}

/// One link of the namespace: its name inside, the bridge its host end joins, its address.
pub struct Link<'a> {
    pub name: &'a str,
    pub bridge: &'a str,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// Creates the namespace (forwarding on, IPv6 and reverse-path filtering off) if it is missing.
pub async fn ensure_namespace(ns: &str) -> Result<(), DataPlaneError> {
    if !exists(ns) {
        ip(&["netns", "add", ns]).await?;
    }
    ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
        ("net.ipv6.conf.all.disable_ipv6", "1"),
        ("net.ipv6.conf.default.disable_ipv6", "1"),
    ] {
        let setting = format!("{key}={value}");
        run("ip", &["netns", "exec", ns, "sysctl", "-q", "-w", &setting]).await?;
    }
    Ok(())
}

/// Makes `link` exist in `ns` with its address, its host end up in its bridge.
pub async fn ensure_link(ns: &str, role: &str, link: &Link<'_>) -> Result<(), DataPlaneError> {
    let host = host_link(ns, role);
    if ip(&["-n", ns, "link", "show", link.name]).await.is_err() {
        // A host end left over from a namespace that went away would block the name.
        let _ = ip(&["link", "del", &host]).await;
        ip(&["link", "add", &host, "type", "veth", "peer", "name", link.name, "netns", ns]).await?;
    }
    ip(&["link", "set", &host, "master", link.bridge, "up"]).await?;
    let cidr = format!("{}/{}", link.addr, link.prefix_len);
    ip(&["-n", ns, "addr", "replace", &cidr, "dev", link.name]).await?;
    ip(&["-n", ns, "link", "set", link.name, "up"]).await?;
    Ok(())
}

/// Traffic from a second public address leaves through its own link (table `100 + index`): both
/// public links sit on one subnet, and a tunnel's packets must take the path of its address.
pub async fn ensure_source_route(
    ns: &str,
    index: usize,
    link: &Link<'_>,
    via: Option<Ipv4Addr>,
) -> Result<(), DataPlaneError> {
    let table = (100 + index).to_string();
    let from = link.addr.to_string();
    while ip(&["-n", ns, "rule", "del", "from", &from, "lookup", &table]).await.is_ok() {}
    ip(&["-n", ns, "rule", "add", "from", &from, "lookup", &table, "priority", &table]).await?;
    let subnet = ipnet::Ipv4Net::new(link.addr, link.prefix_len).map_err(DataPlaneError::new)?.trunc().to_string();
    ip(&["-n", ns, "route", "replace", &subnet, "dev", link.name, "src", &from, "table", &table]).await?;
    if let Some(via) = via {
        ip(&["-n", ns, "route", "replace", "default", "via", &via.to_string(), "dev", link.name, "table", &table])
            .await?;
    }
    Ok(())
}

/// The namespace's default route, via the uplink's gateway.
pub async fn ensure_default_route(ns: &str, via: Ipv4Addr) -> Result<(), DataPlaneError> {
    ip(&["-n", ns, "route", "replace", "default", "via", &via.to_string(), "dev", "pub0"]).await.map(drop)
}

/// Makes the addresses labelled `<dev>:<label>` on `dev` exactly `wanted` (addresses without
/// that label, such as the link's own, are left alone).
pub async fn ensure_addresses(ns: &str, dev: &str, label: &str, wanted: &[Ipv4Net]) -> Result<(), DataPlaneError> {
    let label = format!("{dev}:{label}");
    let shown = ip(&["-n", ns, "-4", "-o", "addr", "show", "dev", dev, "label", &label]).await?;
    let have: Vec<Ipv4Net> = shown
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|cidr| cidr.parse().ok())
        .collect();
    for a in have.iter().filter(|a| !wanted.contains(a)) {
        ip(&["-n", ns, "addr", "del", &a.to_string(), "dev", dev]).await?;
    }
    for a in wanted.iter().filter(|a| !have.contains(a)) {
        ip(&["-n", ns, "addr", "add", &a.to_string(), "dev", dev, "label", &label]).await?;
    }
    Ok(())
}

/// Deletes the namespace's links, then the namespace. Deleting a veth takes its host end off the
/// bridge at once; `ip netns del` alone would leave them (and the namespace's addresses, which a
/// new gateway may be given) on the bridge for as long as any process still lives in it.
pub async fn remove_namespace(ns: &str) -> Result<(), DataPlaneError> {
    if !exists(ns) {
        return Ok(());
    }
    let shown = ip(&["-n", ns, "-o", "link", "show"]).await?;
    // `2: pub0@if7: <…>`: the name ends at `@` (a veth's peer) or `:`.
    let names = shown.lines().filter_map(|l| l.split(": ").nth(1)?.split('@').next());
    for name in names.filter(|n| *n != "lo") {
        let _ = ip(&["-n", ns, "link", "del", name]).await;
    }
    ip(&["netns", "del", ns]).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_links_are_short_stable_and_distinct() {
        let a = host_link("gh-vpn-abcdefghijklmnopqrstu", "u0");
        assert_eq!(a, host_link("gh-vpn-abcdefghijklmnopqrstu", "u0"));
        assert!(a.len() <= 15, "{a}");
        assert_ne!(a, host_link("gh-vpn-abcdefghijklmnopqrstv", "u0"));
        assert_ne!(a, host_link("gh-vpn-abcdefghijklmnopqrstu", "v"));
    }
}
