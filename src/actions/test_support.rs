//! Fixtures for the resource families' unit tests: a store holding one gateway and its
//! customer gateways, and connections to check or record against it.

use std::sync::Arc;

use serde_json::json;

use crate::actions::customer_gateways::CustomerGateway;
use crate::actions::ipsec::{BgpConfig, Defaults, HealthCheckConfig, IkeConfig, IpsecConfig, TunnelSpec};
use crate::actions::vpn_connections::{ConnectionState, Tunnel, VpnConnection};
use crate::actions::vpn_gateways::VpnGateway;
use crate::dataplane::{BgpStatus, HealthStatus, TunnelStatus};
use crate::secret::MasterKey;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, TxExt};

pub(crate) fn key() -> MasterKey {
    MasterKey::from_hex(&"11".repeat(32)).unwrap()
}

pub(crate) fn spec(cgw: &str, ike: Option<&str>, bgp: Option<&str>) -> TunnelSpec {
    let key = key();
    let d = Defaults { local_ip: "198.18.0.1", remote_ip: "203.0.113.5", national_standard: false, master_key: &key };
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

pub(crate) fn connection(id: &str, spec: TunnelSpec, local: &str, remote: &str) -> VpnConnection {
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
            forced: None,
        }],
        state: ConnectionState::Updating,
        renegotiate: false,
        created_ms: 0,
    }
}

/// Gateway vpn-1 (198.18.0.1), active, single-tunnel, SSL-VPN off.
pub(crate) fn gateway() -> VpnGateway {
    serde_json::from_value(json!({
        "id": "vpn-1", "account_id": 1, "region_id": "cn-hangzhou", "vpc_id": "vpc-1", "vswitch_id": "",
        "name": "g", "description": "", "status": "active", "charge_type": "PREPAY", "order_id": 1,
        "bandwidth": 10, "enable_ipsec": true, "enable_ssl": false, "ssl_connections": 0, "vpn_type": "Normal",
        "network_type": "public", "resource_group_id": "", "internet_ip": "198.18.0.1", "intranet_ip": "172.16.0.1",
        "disaster_recovery_vswitch_id": "", "disaster_recovery_internet_ip": "", "auto_propagate": true,
        "enable_bgp": false, "created_ms": 0, "end_ms": 0
    }))
    .unwrap()
}

/// A store holding `gateway()` and customer gateways cgw-1 (203.0.113.5,
/// ASN 65001), cgw-2 (203.0.113.6, no ASN) and cgw-gw (the gateway's own address).
pub(crate) async fn world() -> (Arc<dyn Store>, VpnGateway, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("gh-vco-{}", uuid::Uuid::new_v4()));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir).unwrap());
    let gw = gateway();
    let g = gw.clone();
    store
        .write(move |tx| {
            tx.insert_as(&g)?;
            for (id, ip, asn) in
                [("cgw-1", "203.0.113.5", Some(65001)), ("cgw-2", "203.0.113.6", None), ("cgw-gw", "198.18.0.1", None)]
            {
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
