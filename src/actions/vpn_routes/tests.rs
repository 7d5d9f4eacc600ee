use super::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn scope() -> Scope {
    Scope { account_id: 1, region_id: "cn-hangzhou".into(), gateway_id: "vpn-a".into() }
}

fn pbr(source: &str, dest: &str, hop: &str, weight: u32, priority: u32) -> VpnPbrRouteEntry {
    let kind = Policy { route_source: source.into(), priority };
    Route { weight, ..Route::new(&scope(), kind, Origin::Custom, dest.into(), hop.into(), 0) }
}

#[test]
fn weights_are_0_or_100() {
    assert_eq!(check_weight(0).unwrap(), 0);
    assert_eq!(check_weight(100).unwrap(), 100);
    for bad in [-1, 1, 50, 99, 101, i64::MAX] {
        assert_eq!(check_weight(bad).unwrap_err().code, "VpnRouteEntry.InvalidWeight", "{bad}");
    }
}

#[test]
fn one_active_and_one_standby_per_destination() {
    assert!(check_active_standby(&[], 100).is_ok());
    assert!(check_active_standby(&[], 0).is_ok());
    assert!(check_active_standby(&[100], 0).is_ok());
    assert!(check_active_standby(&[0], 100).is_ok());
    assert_eq!(check_active_standby(&[100], 100).unwrap_err().code, "VpnRouteEntry.Conflict");
    assert_eq!(check_active_standby(&[0], 0).unwrap_err().code, "VpnRouteEntry.Conflict");
    assert_eq!(check_active_standby(&[100, 0], 0).unwrap_err().code, "VpnRouteEntry.BackupRoute");
    assert_eq!(check_active_standby(&[100, 0], 100).unwrap_err().code, "VpnRouteEntry.BackupRoute");
}

#[test]
fn ids_follow_identity() {
    let a = dbr_id("vpn-a", Origin::Custom, "10.0.0.0/24", "vco-1");
    assert_eq!(a, dbr_id("vpn-a", Origin::Custom, "10.0.0.0/24", "vco-1"));
    assert_ne!(a, dbr_id("vpn-a", Origin::Custom, "10.0.0.0/24", "vco-2"));
    assert_ne!(a, dbr_id("vpn-b", Origin::Custom, "10.0.0.0/24", "vco-1"));
    assert_ne!(a, dbr_id("vpn-a", Origin::Custom, "10.0.1.0/24", "vco-1"));
    // A BGP-learned route to the same place is another route; an auto one is not.
    assert_ne!(a, dbr_id("vpn-a", Origin::Bgp, "10.0.0.0/24", "vco-1"));
    assert_eq!(a, dbr_id("vpn-a", Origin::Auto, "10.0.0.0/24", "vco-1"));
    let p = pbr_id("vpn-a", "192.168.0.0/24", "10.0.0.0/24", "vco-1");
    assert_ne!(p, pbr_id("vpn-a", "192.168.1.0/24", "10.0.0.0/24", "vco-1"));
    assert_ne!(p, pbr_id("vpn-a", "10.0.0.0/24", "192.168.0.0/24", "vco-1"));
    assert_ne!(p, a);
}

#[test]
fn cidrs_and_descriptions() {
    assert_eq!(parse_cidr("RouteDest", " 10.0.0.0/24").unwrap().to_string(), "10.0.0.0/24");
    for bad in ["10.0.0.1/24", "10.0.0.0", "10.0.0.0/33", "a.b.c.d/8", "::/0", ""] {
        assert_eq!(parse_cidr("RouteDest", bad).unwrap_err().code, "InvalidParameter", "{bad}");
    }
    assert!(check_destination(net("0.0.0.0/0")).is_err());
    assert!(check_destination(net("10.0.0.0/8")).is_ok());
    assert!(check_route_description("a").is_ok());
    assert!(check_route_description("路由 1, with spaces").is_ok());
    assert!(check_route_description(&"d".repeat(101)).is_err());
    assert_eq!(check_route_description("https://x").unwrap_err().code, "InvalidDescription");
}

#[test]
fn pairs_cover_every_local_remote_combination_once() {
    let local = [net("10.0.0.0/24"), net("10.0.1.0/24"), net("10.0.0.0/24")];
    let remote = [net("192.168.0.1/24")];
    assert_eq!(
        subnet_pairs(&local, &remote),
        vec![(net("10.0.0.0/24"), net("192.168.0.0/24")), (net("10.0.1.0/24"), net("192.168.0.0/24"))]
    );
    assert!(subnet_pairs(&[], &remote).is_empty());
}

#[test]
fn auto_routes_are_active_published_priority_10() {
    let pairs = subnet_pairs(&[net("10.0.0.0/24")], &[net("192.168.0.0/24"), net("192.168.1.0/24")]);
    let planned = plan_connection_routes(&scope(), &[], "vco-1", &pairs, 100, 7).unwrap();
    assert_eq!(planned.len(), 2);
    let r = &planned[0];
    assert_eq!(
        (r.kind.route_source.as_str(), r.route_dest.as_str(), r.next_hop.as_str()),
        ("10.0.0.0/24", "192.168.0.0/24", "vco-1")
    );
    assert_eq!((r.weight, r.kind.priority, r.published, r.origin, r.created_ms), (100, 10, true, Origin::Auto, 7));
    assert_eq!(r.id, pbr_id("vpn-a", "10.0.0.0/24", "192.168.0.0/24", "vco-1"));
}

#[test]
fn auto_routes_respect_the_policy_quota() {
    let existing = vec![pbr("1.0.0.0/24", "2.0.0.0/24", "vco-9", 100, 10); 3];
    let pairs = subnet_pairs(&[net("10.0.0.0/24")], &[net("192.168.0.0/24"), net("192.168.1.0/24")]);
    let e = plan_connection_routes(&scope(), &existing, "vco-1", &pairs, 4, 0).unwrap_err();
    assert_eq!(e.code, "QuotaExceeded.PolicyBasedRoute");
    assert!(e.message.contains("Existing routes: 3. Routes to be created: 2. Maximum routes: 4."), "{}", e.message);
    let e = plan_connection_routes(&scope(), &[], "vco-1", &pairs, 1, 0).unwrap_err();
    assert_eq!(e.code, "CreatePbrRoutesQuotaFull.QuotaFull");
    assert_eq!(plan_connection_routes(&scope(), &existing, "vco-1", &pairs, 5, 0).unwrap().len(), 2);
    // Nothing to add never trips the quota.
    assert!(plan_connection_routes(&scope(), &existing, "vco-1", &[], 1, 0).unwrap().is_empty());
}

#[test]
fn auto_routes_clash_with_other_connections_routes() {
    let pairs = subnet_pairs(&[net("10.0.0.0/24")], &[net("192.168.0.0/24")]);
    // Another connection already carries this traffic actively.
    let active = pbr("10.0.0.0/24", "192.168.0.0/24", "vco-2", 100, 10);
    let e = plan_connection_routes(&scope(), std::slice::from_ref(&active), "vco-1", &pairs, 100, 0).unwrap_err();
    assert_eq!(e.code, "VpnRouteEntry.Conflict");
    // ... as standby: this connection becomes the active one.
    let standby = pbr("10.0.0.0/24", "192.168.0.0/24", "vco-3", 0, 10);
    assert_eq!(
        plan_connection_routes(&scope(), std::slice::from_ref(&standby), "vco-1", &pairs, 100, 0).unwrap().len(),
        1
    );
    // ... both: no room.
    let e = plan_connection_routes(&scope(), &[active, standby], "vco-1", &pairs, 100, 0).unwrap_err();
    assert_eq!(e.code, "VpnRouteEntry.BackupRoute");
    // Another priority is another policy.
    let other_priority = pbr("10.0.0.0/24", "192.168.0.0/24", "vco-2", 100, 20);
    assert_eq!(plan_connection_routes(&scope(), &[other_priority], "vco-1", &pairs, 100, 0).unwrap().len(), 1);
    // A route this connection already has (the user's) is kept, not duplicated.
    let own = pbr("10.0.0.0/24", "192.168.0.0/24", "vco-1", 0, 10);
    assert!(plan_connection_routes(&scope(), &[own], "vco-1", &pairs, 100, 0).unwrap().is_empty());
}

fn learned(dest: &str, hop: &str, origin: Origin) -> VpnRouteEntry {
    Route { published: true, ..Route::new(&scope(), Destination::default(), origin, dest.into(), hop.into(), 0) }
}

#[test]
fn learned_routes_become_what_the_peer_advertises() {
    let current = vec![
        learned("10.1.0.0/24", "vco-1", Origin::Bgp),
        learned("10.2.0.0/24", "vco-1", Origin::Bgp),
        // Not this connection's, or not learned: untouched.
        learned("10.3.0.0/24", "vco-2", Origin::Bgp),
        learned("10.3.0.0/24", "vco-1", Origin::Custom),
    ];
    let wanted: BTreeSet<String> = ["10.2.0.0/24", "10.3.0.0/24"].iter().map(|s| s.to_string()).collect();
    let (stale, new) = diff_learned(&current, "vco-1", &wanted);
    assert_eq!(stale, vec![dbr_id("vpn-a", Origin::Bgp, "10.1.0.0/24", "vco-1")]);
    assert_eq!(new, vec!["10.3.0.0/24".to_string()]);
    let (stale, new) = diff_learned(&current, "vco-1", &BTreeSet::new());
    assert_eq!(stale.len(), 2);
    assert!(new.is_empty());
    let (stale, new) = diff_learned(&[], "vco-9", &wanted);
    assert!(stale.is_empty());
    assert_eq!(new.len(), 2);
}

#[test]
fn views_carry_the_documented_fields() {
    let mut r = VpnRouteEntry {
        weight: 0,
        published: true,
        description: "d1".into(),
        ..Route::new(&scope(), Destination::default(), Origin::Custom, "10.0.0.0/24".into(), "vco-1".into(), 5)
    };
    assert_eq!(r.id, dbr_id("vpn-a", Origin::Custom, "10.0.0.0/24", "vco-1"));
    let v = r.describe();
    assert_eq!(v["RouteEntryType"], "Custom");
    assert_eq!(v["State"], "published");
    assert_eq!(v["VpnInstanceId"], "vpn-a");
    assert!(v.get("AsPath").is_none());
    let c = r.created();
    for f in ["NextHop", "Weight", "RouteDest", "Description", "State", "CreateTime", "OverlayMode", "VpnInstanceId"] {
        assert!(c.contains_key(f), "{f}");
    }
    r.origin = Origin::Bgp;
    r.kind.as_path = "65001".into();
    let v = r.describe();
    assert_eq!(v["RouteEntryType"], "System");
    assert_eq!(v["AsPath"], "65001");
    assert_eq!(v["Source"], "BGP");
    assert_eq!(r.status(), "bgp");
    let p = pbr("192.168.0.0/24", "10.0.0.0/24", "vco-1", 100, 10).describe();
    for f in ["NextHop", "Weight", "RouteDest", "RouteSource", "Priority", "State", "CreateTime", "VpnInstanceId"] {
        assert!(p.get(f).is_some(), "{f}");
    }
    assert_eq!(p["State"], "normal");
}

#[test]
fn stored_documents_keep_the_kind_fields_flat() {
    let r = pbr("192.168.0.0/24", "10.0.0.0/24", "vco-1", 100, 20);
    let doc = serde_json::to_value(&r).unwrap();
    assert_eq!(
        (&doc["route_source"], &doc["priority"], &doc["route_dest"]),
        (&json!("192.168.0.0/24"), &json!(20), &json!("10.0.0.0/24"))
    );
    assert_eq!(serde_json::from_value::<VpnPbrRouteEntry>(doc).unwrap(), r);
    let l = learned("10.1.0.0/24", "vco-1", Origin::Bgp);
    let doc = serde_json::to_value(&l).unwrap();
    assert_eq!((&doc["as_path"], &doc["community"]), (&json!(""), &json!("")));
    assert_eq!(serde_json::from_value::<VpnRouteEntry>(doc).unwrap(), l);
}
