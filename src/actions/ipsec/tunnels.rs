//! The two tunnels of a dual-tunnel connection (`TunnelSpec`): both wire forms read into one.

use super::bgp::illegal_tunnel_cidr;
use super::*;

// ---------------------------------------------------------------------------------------------
// Dual-tunnel connections.

pub(super) fn missing_tunnel() -> ApiError {
    ApiError::bad_request(
        "MissingParameter.TunnelOptionsSpecification",
        "The required parameters are missing when creating a tunnel for dual-tunnel VPN.",
    )
}

impl TunnelSpec {
    /// The `TunnelOptionsSpecification` of a dual-tunnel CreateVpnConnection. There must be exactly
    /// two tunnels, one `master` and one `slave`, and they come back in that order.
    /// `cgw_ip` looks up a customer gateway's IP (and fails with the caller's not-found error).
    /// `gateway_ips` holds the VPN gateway's IPs in role order (InternetIp,
    /// DisasterRecoveryInternetIp); each tunnel's LocalId defaults to its own IP. BGP is switched
    /// on for both tunnels by `EnableTunnelsBgp`.
    pub fn parse_all(
        p: &Params,
        cgw_ip: &dyn Fn(&str) -> ApiResult<String>,
        gateway_ips: (&str, &str),
        national_standard: bool,
        master_key: &MasterKey,
    ) -> ApiResult<Vec<TunnelSpec>> {
        let enable_bgp = p.bool("EnableTunnelsBgp")?.unwrap_or(false);
        let parse_one = |(n, obj): (usize, Map<String, Value>)| -> ApiResult<TunnelSpec> {
            let create_keys = &TUNNEL_KEYS[1..]; // no TunnelId
            let o = Section::new(format!("{TUNNELS}.{n}"), obj, create_keys, invalid)?;
            let role = o.choice("Role", ROLES)?.ok_or_else(missing_tunnel)?;
            let customer_gateway_id = o.text("CustomerGatewayId")?.ok_or_else(missing_tunnel)?;
            let remote_ip = cgw_ip(&customer_gateway_id)?;
            let local_ip = if role == "master" { gateway_ips.0 } else { gateway_ips.1 };
            let d = Defaults { local_ip, remote_ip: &remote_ip, national_standard, master_key };
            let fresh = TunnelSpec {
                role: role.into(),
                customer_gateway_id,
                enable_dpd: true,
                enable_nat_traversal: true,
                remote_ca_certificate: String::new(),
                ike: IkeConfig::defaults(&d),
                ipsec: IpsecConfig::defaults(&d),
                bgp: BgpConfig::default(),
            };
            fresh.apply(&o, &d, Scope(Some(n)), enable_bgp, true)
        };
        let mut tunnels = tunnel_objects(p)?.into_iter().map(parse_one).collect::<ApiResult<Vec<_>>>()?;
        tunnels.sort_by_key(|t| t.role != "master");
        match tunnels.as_slice() {
            [m, s] if m.role == "master" && s.role == "slave" => {
                // The tunnel CIDR is unique per VPN gateway; the caller checks the other connections.
                if enable_bgp && m.bgp.tunnel_cidr == s.bgp.tunnel_cidr {
                    return Err(illegal_tunnel_cidr());
                }
                Ok(tunnels)
            }
            [_, _] => Err(invalid(&format!("{TUNNELS}.N.Role"), "one tunnel must be master and the other slave")),
            _ => Err(missing_tunnel()),
        }
    }

    /// This tunnel after a dual-tunnel ModifyVpnConnectionAttribute. The
    /// `TunnelOptionsSpecification` element with this tunnel's `Role` (every element must name
    /// one) applies over the current values; without one, only `EnableTunnelsBgp` (when given)
    /// changes anything. A new `CustomerGatewayId` is looked up with `cgw_ip`, and a RemoteId that
    /// was the old customer gateway's IP follows it. `local_ip` is this tunnel's IP.
    pub fn merge(
        &self,
        p: &Params,
        cgw_ip: &dyn Fn(&str) -> ApiResult<String>,
        local_ip: &str,
        national_standard: bool,
        master_key: &MasterKey,
    ) -> ApiResult<TunnelSpec> {
        let enable_bgp = p.bool("EnableTunnelsBgp")?.unwrap_or(self.bgp.enable_bgp);
        let mut mine = (0, Section::new(String::new(), Map::new(), &[], invalid)?);
        for (n, obj) in tunnel_objects(p)? {
            let o = Section::new(format!("{TUNNELS}.{n}"), obj, TUNNEL_KEYS, invalid)?;
            if o.choice("Role", ROLES)?.ok_or_else(missing_tunnel)? == self.role {
                mine = (n, o);
            }
        }
        let (n, o) = mine;
        let mut next = self.clone();
        if let Some(id) = o.text("CustomerGatewayId")?.filter(|id| *id != self.customer_gateway_id) {
            let ip = cgw_ip(&id)?;
            if cgw_ip(&self.customer_gateway_id).is_ok_and(|old| old == next.ike.remote_id) {
                next.ike.remote_id = ip;
            }
            next.customer_gateway_id = id;
        }
        let d = Defaults { local_ip, remote_ip: &next.ike.remote_id, national_standard, master_key };
        next.apply(&o, &d, Scope(Some(n)), enable_bgp, false)
    }

    /// The element's settings over `self`: the defaults when `creating`, the stored tunnel when
    /// modifying. The callers handle the role and the customer gateway.
    pub(super) fn apply(
        &self,
        o: &Section,
        d: &Defaults,
        scope: Scope,
        enable_bgp: bool,
        creating: bool,
    ) -> ApiResult<TunnelSpec> {
        let ike = o.sub("TunnelIkeConfig", IkeConfig::KEYS, invalid)?;
        if creating {
            IkeConfig::require_remote_id(&ike, d)?;
        }
        Ok(TunnelSpec {
            enable_dpd: o.flag("EnableDpd")?.unwrap_or(self.enable_dpd),
            enable_nat_traversal: o.flag("EnableNatTraversal")?.unwrap_or(self.enable_nat_traversal),
            remote_ca_certificate: o.text("RemoteCaCertificate")?.unwrap_or_else(|| self.remote_ca_certificate.clone()),
            ike: self.ike.apply(&ike, d, scope)?,
            ipsec: self.ipsec.apply(&o.sub("TunnelIpsecConfig", IpsecConfig::KEYS, invalid)?, d, scope)?,
            bgp: BgpConfig { enable_bgp, ..self.bgp.clone() }.apply(&o.sub(
                "TunnelBgpConfig",
                BgpConfig::TUNNEL_KEYS,
                illegal_bgp,
            )?)?,
            ..self.clone()
        })
    }

    /// One element of DescribeVpnConnection's `TunnelOptionsSpecification.TunnelOptions`. The
    /// SDK models give every scalar here the type string. The caller adds what lives outside this
    /// spec: TunnelId, InternetIp, State, Status, ZoneNo, TunnelIndex.
    pub fn wire(&self, key: &MasterKey, bgp_status: &str, peer_asn: Option<u32>) -> ApiResult<Map<String, Value>> {
        let bgp = json!({
            "BgpStatus": bgp_status,
            "LocalAsn": self.bgp.local_asn,
            "LocalBgpIp": self.bgp.local_bgp_ip,
            "PeerAsn": peer_asn.map(|a| a.to_string()).unwrap_or_default(),
            "PeerBgpIp": self.bgp.peer_bgp_ip(),
            "TunnelCidr": self.bgp.tunnel_cidr,
        });
        let v = json!({
            "Role": self.role,
            "CustomerGatewayId": self.customer_gateway_id,
            "EnableDpd": self.enable_dpd,
            "EnableNatTraversal": self.enable_nat_traversal,
            "RemoteCaCertificate": self.remote_ca_certificate,
            "TunnelIkeConfig": strings(self.ike.wire(key)?),
            "TunnelIpsecConfig": strings(self.ipsec.wire()),
            "TunnelBgpConfig": strings(bgp),
        });
        let Value::Object(map) = strings(v) else { unreachable!("json! of an object") };
        Ok(map)
    }
}

/// An object whose number and boolean values are turned into strings.
pub(super) fn strings(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    Value::Number(_) | Value::Bool(_) => (k, Value::String(v.to_string())),
                    other => (k, other),
                })
                .collect(),
        ),
        other => other,
    }
}

/// The tunnels as JSON objects keyed like `TUNNEL_KEYS`, each with its index N. They come from
/// the flat form (`TunnelOptionsSpecification.1.TunnelIkeConfig.Psk=...`) or from a JSON array
/// in `TunnelOptionsSpecification`.
pub(super) fn tunnel_objects(p: &Params) -> ApiResult<Vec<(usize, Map<String, Value>)>> {
    if let Some(text) = p.get(TUNNELS) {
        let bad = || invalid(TUNNELS, "it must be a JSON array of at most 2 objects");
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else { return Err(bad()) };
        if items.len() > 2 {
            return Err(bad());
        }
        return items
            .into_iter()
            .zip(1..)
            .map(|(v, n)| match v {
                Value::Object(map) => Ok((n, map)),
                _ => Err(bad()),
            })
            .collect();
    }
    // `Params` cannot list its keys, but `tags` walks every `TunnelOptionsSpecification.N.*` key.
    // It rejects an N outside 1..=2 with InvalidParameter; its other complaint (no `.Key`) does
    // not apply here and is ignored.
    if let Err(e) = p.tags(TUNNELS, 2) {
        if e.code == "InvalidParameter" {
            return Err(e);
        }
    }
    let mut out = Vec::new();
    for n in 1..=2 {
        if let Some(obj) = flat_tunnel(p, n)? {
            out.push((n, obj));
        }
    }
    Ok(out)
}

/// Tunnel N from flat parameters. A sub-object comes from its flat fields
/// (`…TunnelIkeConfig.Psk`) or from one JSON-text parameter (`…TunnelIkeConfig`), not both.
pub(super) fn flat_tunnel(p: &Params, n: usize) -> ApiResult<Option<Map<String, Value>>> {
    let at = |key: &str| p.get(&format!("{TUNNELS}.{n}.{key}")).map(|v| Value::String(v.to_string()));
    let mut obj = Map::new();
    for key in TUNNEL_KEYS {
        let fields = match *key {
            "TunnelIkeConfig" => IkeConfig::KEYS,
            "TunnelIpsecConfig" => IpsecConfig::KEYS,
            "TunnelBgpConfig" => BgpConfig::TUNNEL_KEYS,
            _ => &[],
        };
        let sub: Map<String, Value> =
            fields.iter().filter_map(|f| at(&format!("{key}.{f}")).map(|v| (f.to_string(), v))).collect();
        match (at(key), sub.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(&format!("{TUNNELS}.{n}.{key}"), "give either the object or its fields"))
            }
            (Some(whole), true) => {
                obj.insert(key.to_string(), whole);
            }
            (None, false) => {
                obj.insert(key.to_string(), Value::Object(sub));
            }
            (None, true) => {}
        }
    }
    Ok((!obj.is_empty()).then_some(obj))
}
