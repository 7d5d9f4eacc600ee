//! The rules that tie a connection to the rest of its gateway (checked on every create and
//! modify), and the keys (`refs`) they look other connections up by, so that no rule reads every
//! connection of a gateway.

use ipnet::Ipv4Net;

use super::{Tunnel, VpnConnection};
use crate::actions::customer_gateways;
use crate::actions::ipsec::{self, TunnelSpec};
use crate::actions::vpn_gateways::VpnGateway;
use crate::api::error::{ApiError, ApiResult};
use crate::secret::MasterKey;
use crate::store::{ListQuery, Resource, Tx, TxExt};

/// Remote subnets are also indexed under their strict supernets of these prefix lengths
/// (`selin`). A new remote subnet finds the ones inside it through its own supernet at the longest
/// of these lengths not longer than itself (a superset, checked exactly after); one shorter than
/// all of them is checked against every connection of the pair.
const LEVELS: [u8; 3] = [8, 16, 24];

/// `net`'s supernet of `len` bits.
fn at(net: Ipv4Net, len: u8) -> Ipv4Net {
    Ipv4Net::new(net.network(), len).map(|n| n.trunc()).unwrap_or(net)
}

/// A connection's refs: its customer gateways, its gateway/customer-gateway pairs, its BGP
/// tunnel CIDRs and, per pair, its remote subnets (`sel`) and their indexed supernets (`selin`).
pub(super) fn refs(conn: &VpnConnection) -> Vec<String> {
    let gw = &conn.vpn_gateway_id;
    let mut refs = Vec::new();
    for t in &conn.tunnels {
        let cgw = &t.spec.customer_gateway_id;
        refs.extend([cgw_ref(cgw), peer_ref(gw, cgw)]);
        if t.spec.bgp.enable_bgp {
            refs.push(bgp_ref(gw, &t.spec.bgp.tunnel_cidr));
        }
        for net in conn.remote_subnets() {
            let net = net.trunc();
            refs.push(selector_ref("sel", gw, cgw, net));
            let levels = LEVELS.into_iter().filter(|l| *l < net.prefix_len());
            refs.extend(levels.map(|l| selector_ref("selin", gw, cgw, at(net, l))));
        }
    }
    refs.sort();
    refs.dedup();
    refs
}

/// The refs of the pair's connections whose remote subnets may overlap `remote`: theirs contains
/// ours (ours, or a supernet of ours, is theirs), or ours contains theirs. None when a subnet of
/// ours is too wide to look up.
fn overlap_refs(gw: &str, cgw: &str, remote: &[Ipv4Net]) -> Option<Vec<String>> {
    let mut refs = Vec::new();
    for n in remote.iter().map(|n| n.trunc()) {
        let level = LEVELS.into_iter().filter(|l| *l <= n.prefix_len()).max()?;
        refs.extend((0..=n.prefix_len()).map(|len| selector_ref("sel", gw, cgw, at(n, len))));
        if n.prefix_len() < 32 {
            refs.push(selector_ref("selin", gw, cgw, at(n, level)));
        }
    }
    Some(refs)
}

fn selector_ref(kind: &str, gw: &str, cgw: &str, net: Ipv4Net) -> String {
    format!("{kind}:{gw}/{cgw}/{net}")
}

pub(super) fn cgw_ref(cgw: &str) -> String {
    format!("cgw:{cgw}")
}

fn peer_ref(gw: &str, cgw: &str) -> String {
    format!("peer:{gw}/{cgw}")
}

fn bgp_ref(gw: &str, tunnel_cidr: &str) -> String {
    format!("bgp:{gw}/{tunnel_cidr}")
}

/// A connection name: 1-100 characters, not starting with `http://` or `https://`.
pub(super) fn check_connection_name(name: &str) -> ApiResult<()> {
    let n = name.chars().count();
    if (1..=100).contains(&n) && !name.starts_with("http://") && !name.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidParameter.VpnConnectionName",
            "The specified vpn connection name is invalid.",
        ))
    }
}

/// National-standard gateways need the peer's CA certificate; standard ones take none.
fn check_certificate(gw: &VpnGateway, spec: &TunnelSpec) -> ApiResult<()> {
    let national = gw.vpn_type == "NationalStandard";
    match (national, spec.remote_ca_certificate.is_empty()) {
        (true, true) => Err(ApiError::missing_parameter("RemoteCaCertificate")),
        (false, false) => Err(ApiError::invalid_parameter(
            "RemoteCaCertificate",
            "only national-standard (NationalStandard) VPN gateways take a peer CA certificate",
        )),
        _ => Ok(()),
    }
}

/// The rules that tie a connection to the rest of its gateway, checked on every create and
/// modify: customer gateways exist and differ from the gateway's addresses, BGP peers have an
/// ASN and tunnel CIDRs are unique on the gateway, and connections sharing a gateway and a
/// customer gateway agree on IKE and keep their traffic selectors apart.
pub(super) fn check_against_gateway(
    tx: &dyn Tx,
    gw: &VpnGateway,
    conn: &VpnConnection,
    key: &MasterKey,
) -> ApiResult<()> {
    // The other connections of this gateway that refer to any of `refs` (at most `limit`).
    let others = |refs: Vec<String>, limit: Option<u64>| -> ApiResult<Vec<VpnConnection>> {
        let q = ListQuery {
            kind: VpnConnection::KIND,
            account_id: gw.account_id,
            parent_id: Some(gw.id.clone()),
            refers_to: refs,
            // One more, in case `conn` itself is among them.
            limit: limit.map(|l| l + 1),
            ..Default::default()
        };
        Ok(tx.list_as::<VpnConnection>(&q)?.into_iter().filter(|c| c.id != conn.id).collect())
    };
    for t in &conn.tunnels {
        let cgw = customer_gateways::find(tx, gw.account_id, &gw.region_id, &t.spec.customer_gateway_id)?;
        if cgw.ip_address == t.internet_ip || cgw.ip_address == gw.internet_ip {
            return Err(ApiError::bad_request(
                "CustomerGateway.ConflictVpnIp",
                "The customer gateway associated with the IPSec connection should not have the same IP address as the VPN gateway.",
            ));
        }
        check_certificate(gw, &t.spec)?;
        if t.spec.bgp.enable_bgp {
            if cgw.asn.is_none() {
                return Err(ApiError::bad_request(
                    "MissingParam.CustomerGatewayAsn",
                    "Asn of customer gateway is mandatory when BGP is enabled.",
                ));
            }
            let same_cidr = |o: &Tunnel| o.spec.bgp.enable_bgp && o.spec.bgp.tunnel_cidr == t.spec.bgp.tunnel_cidr;
            let cidr_taken = !others(vec![bgp_ref(&gw.id, &t.spec.bgp.tunnel_cidr)], Some(1))?.is_empty()
                || conn.tunnels.iter().filter(|o| o.id != t.id).any(same_cidr);
            if cidr_taken {
                return Err(ApiError::bad_request(
                    "IllegalParam.TunnelCidr",
                    format!("The specified TunnelCidr {} is already used on this VPN gateway.", t.spec.bgp.tunnel_cidr),
                ));
            }
        }
        // Connections of one pair share one IKE configuration, so one of them speaks for all.
        let cgw_id = &t.spec.customer_gateway_id;
        for other in &others(vec![peer_ref(&gw.id, cgw_id)], Some(1))? {
            for ot in other.tunnels.iter().filter(|ot| &ot.spec.customer_gateway_id == cgw_id) {
                if !ipsec::same_ike(&ot.spec.ike, &t.spec.ike, key)? {
                    return Err(ApiError::bad_request(
                        "VpnConnectionParamInvalid.SameVpnAndCgwDifferentIkeConfigs",
                        "IPSec connections associated with the same user gateway and VPN gateway should have the same IKE configurations.",
                    ));
                }
            }
        }
        // Only connections of the pair whose remote subnets overlap ours can overlap.
        let remote = conn.remote_subnets();
        let candidates = match overlap_refs(&gw.id, cgw_id, &remote) {
            Some(refs) => others(refs, None)?,
            None => others(vec![peer_ref(&gw.id, cgw_id)], None)?,
        };
        for other in &candidates {
            if ipsec::subnets_overlap(&other.local_subnets(), &conn.local_subnets())
                && ipsec::subnets_overlap(&other.remote_subnets(), &remote)
            {
                return Err(ApiError::bad_request(
                    "VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap",
                    "Traffic selectors of IPSec connections associated with the same user gateway and VPN gateway should not overlap.",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::customer_gateways::CustomerGateway;
    use crate::actions::ipsec::{BgpConfig, Defaults, HealthCheckConfig, IkeConfig, IpsecConfig};
    use crate::actions::vpn_connections::normalize_subnets;
    use crate::dataplane::{BgpStatus, HealthStatus, TunnelStatus};
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;
    use serde_json::json;
    use std::sync::Arc;

    fn key() -> MasterKey {
        MasterKey::from_hex(&"11".repeat(32)).unwrap()
    }

    fn spec(cgw: &str, ike: Option<&str>, bgp: Option<&str>) -> TunnelSpec {
        let key = key();
        let d =
            Defaults { local_ip: "198.18.0.1", remote_ip: "203.0.113.5", national_standard: false, master_key: &key };
        TunnelSpec {
            role: "master".into(),
            customer_gateway_id: cgw.into(),
            enable_dpd: true,
            enable_nat_traversal: true,
            remote_ca_certificate: String::new(),
            ike: IkeConfig::parse(ike, &d).unwrap(),
            ipsec: IpsecConfig::parse(None, &d).unwrap(),
            bgp: BgpConfig::parse(bgp).unwrap(),
        }
    }

    fn connection(id: &str, spec: TunnelSpec, local: &str, remote: &str) -> VpnConnection {
        VpnConnection {
            id: id.into(),
            account_id: 1,
            region_id: "cn-hangzhou".into(),
            vpn_gateway_id: "vpn-1".into(),
            name: String::new(),
            local_subnet: local.into(),
            remote_subnet: remote.into(),
            effect_immediately: false,
            auto_config_route: false,
            health_check: HealthCheckConfig::default(),
            health_status: HealthStatus::Unknown,
            dataplane_error: String::new(),
            enable_tunnels_bgp: false,
            dual_tunnel: false,
            tunnels: vec![Tunnel {
                id: format!("tun-{id}"),
                internet_ip: "198.18.0.1".into(),
                spec,
                status: TunnelStatus::IkeSaNotEstablished,
                bgp_status: BgpStatus::None,
                status_seq: 0,
            }],
            state: "updating".into(),
            renegotiate: false,
            created_ms: 0,
        }
    }

    /// A store holding gateway vpn-1 (198.18.0.1) and customer gateways cgw-1 (203.0.113.5,
    /// ASN 65001), cgw-2 (203.0.113.6, no ASN) and cgw-gw (the gateway's own address).
    async fn world() -> (Arc<dyn Store>, VpnGateway, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("gh-vco-{}", uuid::Uuid::new_v4()));
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
        let gw: VpnGateway = serde_json::from_value(json!({
            "id": "vpn-1", "account_id": 1, "region_id": "cn-hangzhou", "vpc_id": "vpc-1", "vswitch_id": "",
            "name": "g", "description": "", "status": "active", "charge_type": "PREPAY", "order_id": 1,
            "bandwidth": 10, "enable_ipsec": true, "enable_ssl": false, "ssl_connections": 0, "vpn_type": "Normal",
            "network_type": "public", "resource_group_id": "", "internet_ip": "198.18.0.1", "intranet_ip": "172.16.0.1",
            "disaster_recovery_vswitch_id": "", "disaster_recovery_internet_ip": "", "auto_propagate": true,
            "enable_bgp": false, "created_ms": 0, "end_ms": 0
        }))
        .unwrap();
        let g = gw.clone();
        store
            .write(move |tx| {
                tx.insert_as(&g)?;
                for (id, ip, asn) in [
                    ("cgw-1", "203.0.113.5", Some(65001)),
                    ("cgw-2", "203.0.113.6", None),
                    ("cgw-gw", "198.18.0.1", None),
                ] {
                    tx.insert_as(&CustomerGateway {
                        id: id.into(),
                        account_id: 1,
                        region_id: "cn-hangzhou".into(),
                        ip_address: ip.into(),
                        name: String::new(),
                        description: String::new(),
                        asn,
                        auth_key: None,
                        created_ms: 0,
                    })?;
                }
                Ok(())
            })
            .await
            .unwrap();
        (store, gw, dir)
    }

    fn check(store: &Arc<dyn Store>, gw: &VpnGateway, c: &VpnConnection) -> Result<(), String> {
        store.read(|tx| check_against_gateway(tx, gw, c, &key())).map_err(|e| e.code)
    }

    #[tokio::test]
    async fn cross_resource_rules() {
        let (store, gw, dir) = world().await;
        let bgp = |cidr: &str| format!(r#"{{"EnableBgp": true, "TunnelCidr": "{cidr}"}}"#);
        let first = connection(
            "a",
            spec("cgw-1", Some(r#"{"Psk": "one"}"#), Some(&bgp("169.254.10.0/30"))),
            "10.0.0.0/16",
            "192.168.0.0/24",
        );
        assert_eq!(check(&store, &gw, &first), Ok(()));
        let stored = first.clone();
        store.write(move |tx| tx.insert_as(&stored)).await.unwrap();

        let c = connection("b", spec("cgw-gw", None, None), "10.0.0.0/16", "192.168.0.0/24");
        assert_eq!(check(&store, &gw, &c).unwrap_err(), "CustomerGateway.ConflictVpnIp");
        let c = connection("b", spec("cgw-2", None, Some(&bgp("169.254.11.0/30"))), "10.0.0.0/16", "192.168.9.0/24");
        assert_eq!(check(&store, &gw, &c).unwrap_err(), "MissingParam.CustomerGatewayAsn");
        let c = connection(
            "b",
            spec("cgw-1", Some(r#"{"Psk": "one"}"#), Some(&bgp("169.254.10.0/30"))),
            "10.0.0.0/16",
            "192.168.9.0/24",
        );
        assert_eq!(check(&store, &gw, &c).unwrap_err(), "IllegalParam.TunnelCidr");
        let c = connection("b", spec("cgw-1", Some(r#"{"Psk": "two"}"#), None), "10.0.0.0/16", "192.168.9.0/24");
        assert_eq!(check(&store, &gw, &c).unwrap_err(), "VpnConnectionParamInvalid.SameVpnAndCgwDifferentIkeConfigs");
        let c = connection("b", spec("cgw-1", Some(r#"{"Psk": "one"}"#), None), "10.0.1.0/24", "192.168.0.128/25");
        assert_eq!(
            check(&store, &gw, &c).unwrap_err(),
            "VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap"
        );
        // Overlap found through the selector index either way round, and for a wide subnet.
        for remote in ["192.168.0.0/16", "192.168.0.0/20", "192.168.0.7/32", "0.0.0.0/0", "128.0.0.0/1"] {
            let c = connection("b", spec("cgw-1", Some(r#"{"Psk": "one"}"#), None), "10.0.0.0/24", remote);
            assert_eq!(
                check(&store, &gw, &c).unwrap_err(),
                "VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap",
                "{remote}"
            );
        }
        // A candidate found through a coarse supernet is checked exactly.
        let c = connection("b", spec("cgw-1", Some(r#"{"Psk": "one"}"#), None), "10.0.0.0/24", "192.168.64.0/20");
        assert_eq!(check(&store, &gw, &c), Ok(()));
        // Same peer, same IKE, selectors apart: fine. A different peer may overlap freely.
        let c = connection("b", spec("cgw-1", Some(r#"{"Psk": "one"}"#), None), "10.0.0.0/16", "192.168.1.0/24");
        assert_eq!(check(&store, &gw, &c), Ok(()));
        let c = connection("b", spec("cgw-2", None, None), "10.0.0.0/16", "192.168.0.0/24");
        assert_eq!(check(&store, &gw, &c), Ok(()));
        // A connection is not compared with itself when it is modified.
        assert_eq!(check(&store, &gw, &first), Ok(()));

        let mut with_cert = connection("b", spec("cgw-2", None, None), "10.0.0.0/16", "192.168.0.0/24");
        with_cert.tunnels[0].spec.remote_ca_certificate = "-----BEGIN CERTIFICATE-----".into();
        assert_eq!(check(&store, &gw, &with_cert).unwrap_err(), "InvalidParameter");
        let national = VpnGateway { vpn_type: "NationalStandard".into(), ..gw.clone() };
        let c = connection("b", spec("cgw-2", None, None), "10.0.0.0/16", "192.168.0.0/24");
        assert_eq!(check(&store, &national, &c).unwrap_err(), "MissingRemoteCaCertificate");
        assert_eq!(check(&store, &national, &with_cert), Ok(()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_and_subnets() {
        assert!(check_connection_name("x").is_ok());
        assert!(check_connection_name(&"x".repeat(100)).is_ok());
        assert_eq!(check_connection_name(&"x".repeat(101)).unwrap_err().code, "InvalidParameter.VpnConnectionName");
        assert!(check_connection_name("http://x").is_err());
        assert_eq!(normalize_subnets(" 10.0.0.0/24 , 10.1.0.0/24,"), "10.0.0.0/24,10.1.0.0/24");
    }
}
