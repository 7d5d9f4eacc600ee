//! The rules that tie a connection to the rest of its gateway (checked on every create and
//! modify), and the keys (`refs`) they look other connections up by, so that no rule reads every
//! connection of a gateway.

use ipnet::Ipv4Net;

use super::{ConnectionError, ConnectionResult, Tunnel, VpnConnection};
use crate::actions::customer_gateways::CustomerGateway;
use crate::actions::ipsec::{self, TunnelSpec};
use crate::actions::vpn_gateways::VpnGateway;
use crate::actions::{certificates, ipsec_server, ssl_vpn};
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
fn check_certificate(gw: &VpnGateway, spec: &TunnelSpec) -> ConnectionResult<()> {
    let national = gw.vpn_type == "NationalStandard";
    match (national, spec.remote_ca_certificate.is_empty()) {
        (true, true) => Err(ConnectionError::MissingPeerCertificate),
        (false, false) => Err(ConnectionError::PeerCertificateNotTaken),
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
) -> ConnectionResult<()> {
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
    ipsec_server::refuse_connections(tx, gw)?;
    certificates::require_certificates(tx, gw)?;
    if conn.auto_config_route {
        for dest in conn.remote_subnets() {
            ssl_vpn::check_route_conflict(tx, gw, dest)?;
        }
    }
    for t in &conn.tunnels {
        let cgw = tx
            .get_in::<CustomerGateway>(gw.account_id, &gw.region_id, &t.spec.customer_gateway_id)?
            .ok_or(ConnectionError::CustomerGatewayNotFound)?;
        if cgw.ip_address == t.internet_ip || cgw.ip_address == gw.internet_ip {
            return Err(ConnectionError::CustomerGatewayIsGateway);
        }
        check_certificate(gw, &t.spec)?;
        if t.spec.bgp.enable_bgp {
            if cgw.asn.is_none() {
                return Err(ConnectionError::CustomerGatewayWithoutAsn);
            }
            let same_cidr = |o: &Tunnel| o.spec.bgp.enable_bgp && o.spec.bgp.tunnel_cidr == t.spec.bgp.tunnel_cidr;
            let cidr_taken = !others(vec![bgp_ref(&gw.id, &t.spec.bgp.tunnel_cidr)], Some(1))?.is_empty()
                || conn.tunnels.iter().filter(|o| o.id != t.id).any(same_cidr);
            if cidr_taken {
                return Err(ConnectionError::TunnelCidrTaken(t.spec.bgp.tunnel_cidr.clone()));
            }
        }
        // Connections of one pair share one IKE configuration, so one of them speaks for all.
        let cgw_id = &t.spec.customer_gateway_id;
        for other in &others(vec![peer_ref(&gw.id, cgw_id)], Some(1))? {
            for ot in other.tunnels.iter().filter(|ot| &ot.spec.customer_gateway_id == cgw_id) {
                if !ipsec::same_ike(&ot.spec.ike, &t.spec.ike, key)? {
                    return Err(ConnectionError::DifferentIkeConfigs);
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
                return Err(ConnectionError::SelectorsOverlap);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::{connection, key, spec, world};
    use crate::actions::vpn_connections::{alibaba, normalize_subnets};
    use crate::store::{Store, TxExt};
    use std::sync::Arc;

    fn check(store: &Arc<dyn Store>, gw: &VpnGateway, c: &VpnConnection) -> Result<(), String> {
        store.read(|tx| Ok(check_against_gateway(tx, gw, c, &key()))).unwrap().map_err(|e| alibaba::error(e).code)
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
        assert_eq!(check(&store, &national, &with_cert).unwrap_err(), "OperationFailed.MissCertificate");
        let association = certificates::VpnCertificateAssociation {
            id: format!("{}/Signature", gw.id),
            account_id: gw.account_id,
            region_id: gw.region_id.clone(),
            vpn_gateway_id: gw.id.clone(),
            certificate_type: certificates::CertificateType::Signature,
            certificate_id: "cert-1".into(),
            created_ms: 0,
        };
        store.write(move |tx| tx.insert_as(&association)).await.unwrap();
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
