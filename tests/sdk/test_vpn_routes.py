"""VPN gateway routes through both Python SDKs: destination-based (dbr) and policy-based (pbr)
routes, publishing, weights, and the routes connections add (AutoConfigRoute) or drop.

Spec: shared/spec/actions/{CreateVpnRouteEntry,CreateVpnPbrRouteEntry,PublishVpnRouteEntry,
DescribeVpnRouteEntries,DescribeVpnPbrRouteEntries,ModifyVpnRouteEntryWeight,
ModifyVpnPbrRouteEntryWeight,DeleteVpnRouteEntry,DeleteVpnPbrRouteEntry}.yaml, and the
AutoConfigRoute / route error rows of CreateVpnConnection.yaml.

Where the documents are silent, the tests pin the server's documented choices
(src/actions/vpn_routes.rs): a route the request names but that does not exist is
404 VpnRouteEntry.NotFound; a destination (or a source+destination+priority) has at most one
active (100) and one standby (0) route.
"""

from __future__ import annotations

import itertools
import json
import random

import support
from support import (
    active_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    now_ms,
    public_ip,
    vpc_id,
    wait_status,
)

UNKNOWN_GW = "vpn-" + "z" * 21
UNKNOWN_CONN = "vco-" + "z" * 21
_octets = itertools.count(1)


def unique_net(prefix: str = "172") -> str:
    """A /24 no other test uses (connections' traffic selectors stay apart)."""
    n = next(_octets) + random.randint(0, 40) * 250
    return f"{prefix}.{16 + (n // 250) % 16}.{n % 250}.0/24"


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=15)


def new_cgw(api, asn: int | None = None) -> str:
    params = {"IpAddress": public_ip()}
    if asn:
        params["Asn"] = asn
    return api.call("CreateCustomerGateway", params)["CustomerGatewayId"]


def new_conn(api, gw: str, local: str | None = None, remote: str | None = None, auto: bool = False,
             **extra) -> str:
    params = {"VpnGatewayId": gw, "CustomerGatewayId": new_cgw(api), "LocalSubnet": local or "10.0.0.0/24",
              "RemoteSubnet": remote or unique_net(), "AutoConfigRoute": auto}
    params.update(extra)
    out = api.call("CreateVpnConnection", params)
    wait_active(api, gw)
    return out["VpnConnectionId"]


def setup(api, conns: int = 2, **gw_over) -> tuple[str, list[str]]:
    gw = active_gateway(api, **gw_over)["VpnGatewayId"]
    return gw, [new_conn(api, gw) for _ in range(conns)]


# -- the calls, each waiting for the gateway to settle after a change


def dbr(api, gw, dest, hop, weight=100, publish=False, **extra) -> dict:
    out = api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": dest, "NextHop": hop,
                                           "Weight": weight, "PublishVpc": publish, **extra})
    wait_active(api, gw)
    return out


def pbr(api, gw, source, dest, hop, weight=100, publish=False, **extra) -> dict:
    out = api.call("CreateVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": source, "RouteDest": dest,
                                              "NextHop": hop, "Weight": weight, "PublishVpc": publish, **extra})
    wait_active(api, gw)
    return out


def change(api, gw, action, **params) -> dict:
    out = api.call(action, {"VpnGatewayId": gw, **params})
    wait_active(api, gw)
    return out


def conn_change(api, gw, action, **params) -> dict:
    """A connection action (it names no gateway), then wait for the gateway to settle."""
    out = api.call(action, params)
    wait_active(api, gw)
    return out


def dbr_list(api, gw, **f) -> dict:
    return api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, **f})


def dbr_entries(api, gw, **f) -> list[dict]:
    return items(dbr_list(api, gw, PageSize=50, **f), "VpnRouteEntries", "VpnRouteEntry")


def pbr_list(api, gw, **f) -> dict:
    return api.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw, **f})


def pbr_entries(api, gw, **f) -> list[dict]:
    return items(pbr_list(api, gw, PageSize=50, **f), "VpnPbrRouteEntries", "VpnPbrRouteEntry")


def dbr_keys(api, gw, **f) -> set:
    return {(e["RouteDest"], e["NextHop"], e["Weight"], e["State"]) for e in dbr_entries(api, gw, **f)}


def pbr_keys(api, gw) -> set:
    return {(e["RouteSource"], e["RouteDest"], e["NextHop"], e["Weight"], e["Priority"], e["State"])
            for e in pbr_entries(api, gw)}


# ---------------------------------------------------------------- destination-based routes


def test_create_and_describe_dbr(api, kind):
    gw, (c1, c2) = setup(api)
    t0 = now_ms()
    out = api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24", "NextHop": c1,
                                           "Weight": 100, "PublishVpc": True, "Description": "to the lab",
                                           "OverlayMode": "Ipsec"})
    assert out["RequestId"] and "Code" not in out
    assert (out["NextHop"], out["Weight"], out["RouteDest"]) == (c1, 100, "10.1.0.0/24"), out
    assert (out["State"], out["Description"], out["OverlayMode"], out["VpnInstanceId"]) == \
        ("published", "to the lab", "Ipsec", gw), out
    assert isinstance(out["CreateTime"], int) and t0 - 5000 <= out["CreateTime"] <= now_ms() + 5000, out
    # Asynchronous: the gateway applies the route, then is active again.
    assert describe_gateway(api, gw)["Status"] in ("updating", "active")
    wait_active(api, gw)
    out2 = dbr(api, gw, "10.2.0.0/16", c2, weight=0, publish=False)
    assert (out2["State"], out2["Weight"], out2["OverlayMode"]) == ("normal", 0, "Ipsec"), out2

    body = dbr_list(api, gw)
    assert (body["TotalCount"], body["PageNumber"], body["PageSize"]) == (2, 1, 10), body
    entries = {e["RouteDest"]: e for e in items(body, "VpnRouteEntries", "VpnRouteEntry")}
    e = entries["10.1.0.0/24"]
    assert (e["NextHop"], e["Weight"], e["State"], e["VpnInstanceId"]) == (c1, 100, "published", gw), e
    assert e["CreateTime"] == out["CreateTime"]
    assert e["RouteEntryType"] == "Custom", e
    e = entries["10.2.0.0/16"]
    assert (e["NextHop"], e["Weight"], e["State"], e["RouteEntryType"]) == (c2, 0, "normal", "Custom"), e
    # Policy-based routes are listed apart.
    assert pbr_entries(api, gw) == []


def test_dbr_active_standby(api):
    gw, (c1, c2, c3) = setup(api, conns=3)
    dbr(api, gw, "10.1.0.0/24", c1, weight=100)
    # A second active route to the same destination.
    expect_error(lambda: dbr(api, gw, "10.1.0.0/24", c2, weight=100), 400, "VpnRouteEntry.Conflict")
    dbr(api, gw, "10.1.0.0/24", c2, weight=0)
    # Active and standby taken: no third route.
    expect_error(lambda: dbr(api, gw, "10.1.0.0/24", c3, weight=0), 400, "VpnRouteEntry.BackupRoute")
    expect_error(lambda: dbr(api, gw, "10.1.0.0/24", c3, weight=100), 400, "VpnRouteEntry.BackupRoute")
    # The same destination and next hop twice, whatever the weight.
    expect_error(lambda: dbr(api, gw, "10.1.0.0/24", c1, weight=100), 400, "VpnRouteEntry.AlreadyExists")
    expect_error(lambda: dbr(api, gw, "10.1.0.0/24", c2, weight=100), 400, "VpnRouteEntry.AlreadyExists")
    # Other destinations are independent.
    dbr(api, gw, "10.1.1.0/24", c3, weight=0)
    dbr(api, gw, "10.1.0.0/16", c3, weight=100)
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c1, 100, "normal"), ("10.1.0.0/24", c2, 0, "normal"),
                                 ("10.1.1.0/24", c3, 0, "normal"), ("10.1.0.0/16", c3, 100, "normal")}


def test_dbr_parameter_errors(api):
    gw, (c1,) = setup(api, conns=1)
    base = {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24", "NextHop": c1, "Weight": 100, "PublishVpc": False}

    def create(**over):
        p = {k: v for k, v in dict(base, **over).items() if v is not None}
        return api.call("CreateVpnRouteEntry", p)

    for w in (1, 50, 99, 101):
        expect_error(lambda: create(Weight=w), 400, "VpnRouteEntry.InvalidWeight")
    for missing in ("VpnGatewayId", "RouteDest", "NextHop", "Weight", "PublishVpc"):
        expect_error(lambda: create(**{missing: None}), 400, f"Missing{missing}")
    for bad in ("10.1.0.1/24", "10.1.0.0", "10.1.0.0/33", "not-a-cidr"):
        expect_error(lambda: create(RouteDest=bad), 400, "InvalidParameter")
    expect_error(lambda: create(RouteDest="0.0.0.0/0"), 400, "InvalidParameter")
    expect_error(lambda: create(OverlayMode="Gre"), 400, "InvalidParameter")
    expect_error(lambda: create(Description="http://example.com"), 400, "InvalidDescription")
    expect_error(lambda: create(Description="d" * 101), 400, "InvalidDescription")
    expect_error(lambda: create(VpnGatewayId=UNKNOWN_GW), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: create(NextHop=UNKNOWN_CONN), 404, "InvalidVpnConnectionInstanceId.NotFound")
    # A connection of another gateway is no next hop here.
    other_gw, (other_conn,) = setup(api, conns=1)
    expect_error(lambda: create(NextHop=other_conn), 404, "InvalidVpnConnectionInstanceId.NotFound")
    # Nothing was created by any of that, and the gateway never left `active`.
    assert dbr_entries(api, gw) == []
    assert describe_gateway(api, gw)["Status"] == "active"


def test_dbr_dry_run(server, root):
    api = make_api("classic", server.endpoint, root)
    gw, (c1,) = setup(api, conns=1)
    expect_error(lambda: api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24",
                                                          "NextHop": c1, "Weight": 100, "PublishVpc": True,
                                                          "DryRun": True}), 400, "DryRunOperation")
    assert dbr_entries(api, gw) == []
    assert describe_gateway(api, gw)["Status"] == "active"


def test_modify_dbr_weight(api):
    gw, (c1, c2) = setup(api)
    dbr(api, gw, "10.1.0.0/24", c1, weight=100)
    dbr(api, gw, "10.1.0.0/24", c2, weight=0)
    modify = lambda hop, w, nw, dest="10.1.0.0/24": change(  # noqa: E731
        api, gw, "ModifyVpnRouteEntryWeight", RouteDest=dest, NextHop=hop, Weight=w, NewWeight=nw)
    # Promoting the standby while the active one is there: two active routes.
    expect_error(lambda: modify(c2, 0, 100), 400, "VpnRouteEntry.Conflict")
    # The route is named with its current weight.
    expect_error(lambda: modify(c2, 100, 0), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: modify(c1, 100, 0, dest="10.9.0.0/24"), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: modify(c1, 100, 7), 400, "VpnRouteEntry.InvalidWeight")
    expect_error(lambda: modify(c1, 7, 100), 400, "VpnRouteEntry.InvalidWeight")
    out = modify(c1, 100, 100)  # the same weight: nothing to change
    assert out["RequestId"] and "Code" not in out
    # Swap: free the active slot first.
    change(api, gw, "DeleteVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=c1, Weight=100)
    modify(c2, 0, 100)
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c2, 100, "normal")}
    dbr(api, gw, "10.1.0.0/24", c1, weight=0)
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c2, 100, "normal"), ("10.1.0.0/24", c1, 0, "normal")}


def test_delete_dbr(api):
    gw, (c1, c2) = setup(api)
    dbr(api, gw, "10.1.0.0/24", c1, weight=100, publish=True)
    dbr(api, gw, "10.2.0.0/24", c2, weight=0)
    delete = lambda dest, hop, w: change(  # noqa: E731
        api, gw, "DeleteVpnRouteEntry", RouteDest=dest, NextHop=hop, Weight=w)
    expect_error(lambda: delete("10.1.0.0/24", c1, 0), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: delete("10.1.0.0/24", c2, 100), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: delete("10.1.0.0/24", c1, 5), 400, "VpnRouteEntry.InvalidWeight")
    out = delete("10.1.0.0/24", c1, 100)
    assert out["RequestId"] and "Code" not in out
    assert dbr_keys(api, gw) == {("10.2.0.0/24", c2, 0, "normal")}
    expect_error(lambda: delete("10.1.0.0/24", c1, 100), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: api.call("DeleteVpnRouteEntry", {"VpnGatewayId": UNKNOWN_GW, "RouteDest": "10.2.0.0/24",
                                                          "NextHop": c2, "Weight": 0}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")
    delete("10.2.0.0/24", c2, 0)
    assert dbr_entries(api, gw) == []


def test_describe_dbr_pagination_and_type_filter(fresh_api):
    api = fresh_api
    gw, (c1,) = setup(api, conns=1)
    dests = [f"10.{i}.0.0/24" for i in range(12)]
    for d in dests:
        dbr(api, gw, d, c1)
    first = dbr_list(api, gw)
    assert (first["TotalCount"], first["PageNumber"], first["PageSize"]) == (12, 1, 10), first
    second = dbr_list(api, gw, PageNumber=2)
    got = [e["RouteDest"] for b in (first, second) for e in items(b, "VpnRouteEntries", "VpnRouteEntry")]
    assert sorted(got) == sorted(dests) and len(got) == 12
    pages = [dbr_list(api, gw, PageSize=5, PageNumber=n) for n in (1, 2, 3, 4)]
    assert [len(items(p, "VpnRouteEntries", "VpnRouteEntry")) for p in pages] == [5, 5, 2, 0]
    assert all(p["PageSize"] == 5 and p["TotalCount"] == 12 for p in pages)
    # RouteEntryType: Custom (user routes), System (BGP-learned); documented capitalised, the
    # current service sends lower case (custom/bgp).
    for t in ("Custom", "custom"):
        assert dbr_list(api, gw, RouteEntryType=t)["TotalCount"] == 12
    for t in ("System", "bgp"):
        assert dbr_list(api, gw, RouteEntryType=t)["TotalCount"] == 0
    expect_error(lambda: dbr_list(api, gw, RouteEntryType="static"), 400, "InvalidParameter")
    expect_error(lambda: dbr_list(api, gw, PageSize=51), 400, "InvalidParameter")
    expect_error(lambda: dbr_list(api, gw, PageNumber=0), 400, "InvalidParameter")
    expect_error(lambda: dbr_list(api, UNKNOWN_GW), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: api.call("DescribeVpnRouteEntries", {}), 400, "MissingVpnGatewayId")


# ---------------------------------------------------------------- policy-based routes


def test_create_and_describe_pbr(api, kind):
    gw, (c1, c2) = setup(api)
    t0 = now_ms()
    out = pbr(api, gw, "192.168.1.0/24", "10.0.0.0/24", c1, weight=100, publish=True, Description="p1")
    assert (out["RouteSource"], out["RouteDest"], out["NextHop"], out["Weight"]) == \
        ("192.168.1.0/24", "10.0.0.0/24", c1, 100), out
    assert (out["State"], out["Description"], out["OverlayMode"], out["VpnInstanceId"], out["Priority"]) == \
        ("published", "p1", "Ipsec", gw, 10), out
    assert t0 - 5000 <= out["CreateTime"] <= now_ms() + 5000
    out = pbr(api, gw, "192.168.1.0/24", "10.0.0.0/24", c2, weight=0, Priority=10)
    assert (out["State"], out["Priority"]) == ("normal", 10)
    pbr(api, gw, "192.168.2.0/24", "10.0.0.0/24", c2, weight=100, Priority=1)
    assert pbr_keys(api, gw) == {("192.168.1.0/24", "10.0.0.0/24", c1, 100, 10, "published"),
                                 ("192.168.1.0/24", "10.0.0.0/24", c2, 0, 10, "normal"),
                                 ("192.168.2.0/24", "10.0.0.0/24", c2, 100, 1, "normal")}
    body = pbr_list(api, gw)
    assert (body["TotalCount"], body["PageNumber"], body["PageSize"]) == (3, 1, 10), body
    e = next(x for x in pbr_entries(api, gw) if x["NextHop"] == c1)
    assert e["VpnInstanceId"] == gw and isinstance(e["CreateTime"], int), e
    # Destination routes are listed apart.
    assert dbr_entries(api, gw) == []


def test_pbr_rules(api):
    gw, (c1, c2, c3) = setup(api, conns=3)
    src, dst = "192.168.1.0/24", "10.0.0.0/24"
    pbr(api, gw, src, dst, c1, weight=100)
    expect_error(lambda: pbr(api, gw, src, dst, c2, weight=100), 400, "VpnRouteEntry.Conflict")
    pbr(api, gw, src, dst, c2, weight=0)
    expect_error(lambda: pbr(api, gw, src, dst, c3, weight=0), 400, "VpnRouteEntry.BackupRoute")
    expect_error(lambda: pbr(api, gw, src, dst, c1, weight=0), 400, "VpnRouteEntry.AlreadyExists")
    # Another priority is another policy; another source too.
    pbr(api, gw, src, dst, c3, weight=100, Priority=20)
    pbr(api, gw, "192.168.9.0/24", dst, c3, weight=100)
    for bad in (0, 101):
        expect_error(lambda: pbr(api, gw, src, "10.9.0.0/24", c1, Priority=bad), 400, "InvalidParameter")
    expect_error(lambda: pbr(api, gw, src, dst, c1, weight=30), 400, "VpnRouteEntry.InvalidWeight")
    expect_error(lambda: pbr(api, gw, "192.168.1.7/24", dst, c1), 400, "InvalidParameter")
    expect_error(lambda: pbr(api, gw, src, dst, UNKNOWN_CONN), 404, "InvalidVpnConnectionInstanceId.NotFound")
    expect_error(lambda: pbr(api, UNKNOWN_GW, src, dst, c1), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: api.call("CreateVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteDest": dst, "NextHop": c1,
                                                             "Weight": 100, "PublishVpc": False}),
                 400, "MissingRouteSource")
    assert len(pbr_entries(api, gw)) == 4


def test_modify_and_delete_pbr(api):
    gw, (c1, c2) = setup(api)
    src, dst = "192.168.1.0/24", "10.0.0.0/24"
    pbr(api, gw, src, dst, c1, weight=100)
    pbr(api, gw, src, dst, c2, weight=0)

    def modify(hop, w, nw, **extra):
        return change(api, gw, "ModifyVpnPbrRouteEntryWeight", RouteSource=src, RouteDest=dst, NextHop=hop,
                      Weight=w, NewWeight=nw, **extra)

    def delete(hop, w, **extra):
        return change(api, gw, "DeleteVpnPbrRouteEntry", RouteSource=src, RouteDest=dst, NextHop=hop, Weight=w,
                      **extra)

    expect_error(lambda: modify(c2, 0, 100), 400, "VpnRouteEntry.Conflict")
    expect_error(lambda: modify(c2, 100, 0), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: modify(c2, 0, 100, Priority=20), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: modify(c2, 0, 42), 400, "VpnRouteEntry.InvalidWeight")
    modify(c1, 100, 100, Priority=10)
    # Deleting names the route's weight (and priority): a mismatch is a conflict.
    expect_error(lambda: delete(c1, 0), 400, "VpnRouteEntry.Conflict")
    expect_error(lambda: delete(c1, 100, Priority=3), 400, "VpnRouteEntry.Conflict")
    expect_error(lambda: delete(UNKNOWN_CONN, 100), 404, "VpnRouteEntry.NotFound")
    delete(c1, 100, OverlayMode="Ipsec")
    modify(c2, 0, 100)
    assert pbr_keys(api, gw) == {(src, dst, c2, 100, 10, "normal")}
    delete(c2, 100, Priority=10)
    assert pbr_entries(api, gw) == []
    expect_error(lambda: delete(c2, 100), 404, "VpnRouteEntry.NotFound")


def test_describe_pbr_pagination(fresh_api):
    api = fresh_api
    gw, (c1,) = setup(api, conns=1)
    for i in range(11):
        pbr(api, gw, f"192.168.{i}.0/24", "10.0.0.0/16", c1)
    first, second = pbr_list(api, gw), pbr_list(api, gw, PageNumber=2)
    assert (first["TotalCount"], len(items(first, "VpnPbrRouteEntries", "VpnPbrRouteEntry"))) == (11, 10)
    assert (second["PageNumber"], len(items(second, "VpnPbrRouteEntries", "VpnPbrRouteEntry"))) == (2, 1)
    assert len(items(pbr_list(api, gw, PageSize=50), "VpnPbrRouteEntries", "VpnPbrRouteEntry")) == 11
    expect_error(lambda: pbr_list(api, gw, PageSize=51), 400, "InvalidParameter")
    expect_error(lambda: pbr_list(api, UNKNOWN_GW), 404, "InvalidVpnGatewayInstanceId.NotFound")


# ---------------------------------------------------------------- publishing


def test_publish(api):
    gw, (c1, c2) = setup(api)
    dbr(api, gw, "10.1.0.0/24", c1)
    pbr(api, gw, "192.168.1.0/24", "10.2.0.0/24", c1)
    pbr(api, gw, "192.168.2.0/24", "10.2.0.0/24", c1)
    pbr(api, gw, "192.168.3.0/24", "10.2.0.0/24", c2)

    def publish(dest, hop, route_type, on):
        return change(api, gw, "PublishVpnRouteEntry", RouteDest=dest, NextHop=hop, RouteType=route_type,
                      PublishVpc=on)

    out = publish("10.1.0.0/24", c1, "dbr", True)
    assert out["RequestId"] and "Code" not in out
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c1, 100, "published")}
    publish("10.1.0.0/24", c1, "dbr", True)  # already published: fine
    publish("10.1.0.0/24", c1, "dbr", False)
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c1, 100, "normal")}
    # A policy route is named without its source: every match changes.
    publish("10.2.0.0/24", c1, "pbr", True)
    states = {(e["RouteSource"], e["State"]) for e in pbr_entries(api, gw)}
    assert states == {("192.168.1.0/24", "published"), ("192.168.2.0/24", "published"),
                      ("192.168.3.0/24", "normal")}
    expect_error(lambda: publish("10.1.0.0/24", c1, "pbr", True), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: publish("10.2.0.0/24", c1, "dbr", True), 404, "VpnRouteEntry.NotFound")
    expect_error(lambda: publish("10.1.0.0/24", c1, "static", True), 400, "InvalidParameter")
    expect_error(lambda: api.call("PublishVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24",
                                                           "NextHop": c1, "PublishVpc": True}),
                 400, "MissingRouteType")
    expect_error(lambda: api.call("PublishVpnRouteEntry", {"VpnGatewayId": UNKNOWN_GW, "RouteDest": "10.1.0.0/24",
                                                           "NextHop": c1, "RouteType": "dbr", "PublishVpc": True}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")


def test_publish_route_type_is_case_insensitive(server, root):
    """The documented example sends RouteType=PBR."""
    api = support.RawApi(server.endpoint, root.ak, root.secret)
    gw, (c1,) = setup(api, conns=1)
    pbr(api, gw, "192.168.1.0/24", "10.2.0.0/24", c1)
    change(api, gw, "PublishVpnRouteEntry", RouteDest="10.2.0.0/24", NextHop=c1, RouteType="PBR", PublishVpc=True)
    assert pbr_entries(api, gw)[0]["State"] == "published"


def test_vpc_route_table_conflict_and_quota(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0", "--quota-destination-routes", "3"])
    api = make_api("classic", srv.endpoint, root)
    vpc = vpc_id()
    gw1, (a,) = setup(api, conns=1, VpcId=vpc)
    gw2, (b,) = setup(api, conns=1, VpcId=vpc)
    gw3, (c,) = setup(api, conns=1)  # another VPC
    dbr(api, gw1, "10.1.0.0/24", a, publish=True)
    # The VPC already routes 10.1.0.0/24 to gw1.
    expect_error(lambda: dbr(api, gw2, "10.1.0.0/24", b, publish=True), 400, "OperationFailed.RouteConflict")
    expect_error(lambda: pbr(api, gw2, "192.168.0.0/24", "10.1.0.0/24", b, publish=True), 400,
                 "OperationFailed.RouteConflict")
    dbr(api, gw2, "10.1.0.0/24", b, publish=False)
    expect_error(lambda: change(api, gw2, "PublishVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=b,
                                RouteType="dbr", PublishVpc=True), 400, "OperationFailed.RouteConflict")
    dbr(api, gw3, "10.1.0.0/24", c, publish=True)  # another VPC's route table
    # Once gw1 withdraws it, gw2 may publish it.
    change(api, gw1, "PublishVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=a, RouteType="dbr", PublishVpc=False)
    change(api, gw2, "PublishVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=b, RouteType="dbr", PublishVpc=True)
    # The VPC route table holds at most 3 blocks toward one gateway (the destination-route quota).
    dbr(api, gw2, "10.2.0.0/24", b, publish=True)
    pbr(api, gw2, "192.168.0.0/24", "10.3.0.0/24", b, publish=True)
    pbr(api, gw2, "192.168.1.0/24", "10.3.0.0/24", b, publish=True)  # same block: no new entry
    expect_error(lambda: pbr(api, gw2, "192.168.0.0/24", "10.4.0.0/24", b, publish=True), 400,
                 "QuotaExceeded.VpnRouteEntry")
    expect_error(lambda: dbr(api, gw2, "10.4.0.0/24", b, publish=True), 400, "QuotaExceeded.VpnRouteEntry")


def test_route_quotas(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0", "--quota-destination-routes", "2",
                          "--quota-policy-routes", "2"])
    api = make_api("tea-acs3", srv.endpoint, root)
    gw, (c1,) = setup(api, conns=1)
    dbr(api, gw, "10.1.0.0/24", c1)
    dbr(api, gw, "10.2.0.0/24", c1)
    expect_error(lambda: dbr(api, gw, "10.3.0.0/24", c1), 400, "Resource.QuotaFull")
    pbr(api, gw, "192.168.0.0/24", "10.1.0.0/24", c1)
    pbr(api, gw, "192.168.0.0/24", "10.2.0.0/24", c1)
    expect_error(lambda: pbr(api, gw, "192.168.0.0/24", "10.3.0.0/24", c1), 400, "Resource.QuotaFull")
    # Quotas are per gateway.
    gw2, (c2,) = setup(api, conns=1)
    dbr(api, gw2, "10.3.0.0/24", c2)
    # Deleting frees a slot.
    change(api, gw, "DeleteVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=c1, Weight=100)
    dbr(api, gw, "10.3.0.0/24", c1)


# ---------------------------------------------------------------- gateway state, idempotency, isolation


def test_changes_wait_for_the_gateway(slow_server, root, kind):
    """Each route change puts the gateway in `updating`; meanwhile changes are refused."""
    api = make_api(kind, slow_server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    wait_status(api, gw, "active", timeout=15)
    conn = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": new_cgw(api),
                                            "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": "192.168.0.0/24",
                                            "AutoConfigRoute": False})["VpnConnectionId"]
    wait_status(api, gw, "active", timeout=15)
    api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24", "NextHop": conn,
                                     "Weight": 100, "PublishVpc": False})
    assert describe_gateway(api, gw)["Status"] == "updating"
    for action, params in [
        ("CreateVpnRouteEntry", {"RouteDest": "10.2.0.0/24", "NextHop": conn, "Weight": 100, "PublishVpc": False}),
        ("CreateVpnPbrRouteEntry", {"RouteSource": "192.168.0.0/24", "RouteDest": "10.2.0.0/24", "NextHop": conn,
                                    "Weight": 100, "PublishVpc": False}),
        ("ModifyVpnRouteEntryWeight", {"RouteDest": "10.1.0.0/24", "NextHop": conn, "Weight": 100,
                                       "NewWeight": 0}),
        ("PublishVpnRouteEntry", {"RouteDest": "10.1.0.0/24", "NextHop": conn, "RouteType": "dbr",
                                  "PublishVpc": True}),
        ("DeleteVpnRouteEntry", {"RouteDest": "10.1.0.0/24", "NextHop": conn, "Weight": 100}),
    ]:
        expect_error(lambda: api.call(action, {"VpnGatewayId": gw, **params}), 400, "VpnGateway.Configuring")
    # Reading is fine meanwhile, and the route is there.
    assert [e["RouteDest"] for e in dbr_entries(api, gw)] == ["10.1.0.0/24"]
    wait_status(api, gw, "active", timeout=15)
    change(api, gw, "DeleteVpnRouteEntry", RouteDest="10.1.0.0/24", NextHop=conn, Weight=100)


def test_client_token(server, root):
    api = make_api("classic", server.endpoint, root)
    gw, (c1,) = setup(api, conns=1)
    params = {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24", "NextHop": c1, "Weight": 100, "PublishVpc": True,
              "ClientToken": "route-" + support.rand_suffix(12)}
    first = api.call("CreateVpnRouteEntry", params)
    # A retry is the same request, even while the gateway is still updating.
    again = api.call("CreateVpnRouteEntry", params)
    strip = lambda d: {k: v for k, v in d.items() if k != "RequestId"}  # noqa: E731
    assert strip(first) == strip(again)
    wait_active(api, gw)
    assert len(dbr_entries(api, gw)) == 1
    expect_error(lambda: api.call("CreateVpnRouteEntry", dict(params, Weight=0)), 400,
                 "IdempotentParameterMismatch")


def test_other_account_sees_nothing(server, root, new_account):
    mine = make_api("classic", server.endpoint, root)
    theirs = make_api("tea-acs3", server.endpoint, new_account())
    gw, (c1,) = setup(mine, conns=1)
    dbr(mine, gw, "10.1.0.0/24", c1)
    expect_error(lambda: dbr_list(theirs, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: pbr_list(theirs, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: theirs.call("DeleteVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "10.1.0.0/24",
                                                             "NextHop": c1, "Weight": 100}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")
    # Through another region the gateway does not exist either.
    sh = make_api("classic", server.endpoint, root, region="cn-shanghai")
    expect_error(lambda: dbr_list(sh, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert len(dbr_entries(mine, gw)) == 1


def test_xml_describe(server, root):
    api = make_api("classic", server.endpoint, root)
    gw, (c1,) = setup(api, conns=1)
    dbr(api, gw, "10.1.0.0/24", c1)
    pbr(api, gw, "192.168.0.0/24", "10.1.0.0/24", c1)
    raw = support.RawClient(server.endpoint, root.ak, root.secret)
    r = raw.rpc("DescribeVpnRouteEntries", {"VpnGatewayId": gw}, fmt="XML")
    assert r.status == 200, r
    x = r.xml()
    assert x.tag == "DescribeVpnRouteEntriesResponse"
    assert [e.findtext("RouteDest") for e in x.findall("./VpnRouteEntries/VpnRouteEntry")] == ["10.1.0.0/24"]
    r = raw.rpc("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw}, fmt="XML")
    x = r.xml()
    assert [e.findtext("RouteSource") for e in x.findall("./VpnPbrRouteEntries/VpnPbrRouteEntry")] == \
        ["192.168.0.0/24"]


# ---------------------------------------------------------------- routes connections imply


def test_auto_config_route(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    remote = unique_net()
    conn = new_conn(api, gw, local="10.0.0.0/24,10.0.1.0/24", remote=remote, auto=True)
    assert pbr_keys(api, gw) == {("10.0.0.0/24", remote, conn, 100, 10, "published"),
                                 ("10.0.1.0/24", remote, conn, 100, 10, "published")}
    # A connection without AutoConfigRoute adds none.
    new_conn(api, gw, local="10.5.0.0/24", auto=False)
    assert len(pbr_entries(api, gw)) == 2
    # The route follows the connection's subnets ...
    conn_change(api, gw, "ModifyVpnConnectionAttribute", VpnConnectionId=conn, LocalSubnet="10.0.2.0/24")
    assert pbr_keys(api, gw) == {("10.0.2.0/24", remote, conn, 100, 10, "published")}
    # ... and goes with AutoConfigRoute, leaving the user's routes alone.
    pbr(api, gw, "10.9.0.0/24", remote, conn)
    conn_change(api, gw, "ModifyVpnConnectionAttribute", VpnConnectionId=conn, AutoConfigRoute=False)
    assert pbr_keys(api, gw) == {("10.9.0.0/24", remote, conn, 100, 10, "normal")}


def test_auto_config_route_is_the_default(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    out = api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": new_cgw(api),
                                           "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": "192.168.7.0/24"})
    wait_active(api, gw)
    assert pbr_keys(api, gw) == {("10.0.0.0/24", "192.168.7.0/24", out["VpnConnectionId"], 100, 10, "published")}


def test_bgp_connection_has_no_static_routes(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api, asn=65010)
    bgp = json.dumps({"EnableBgp": True, "LocalAsn": 65001, "TunnelCidr": "169.254.20.0/30",
                      "LocalBgpIp": "169.254.20.1"})
    api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
                                     "RemoteSubnet": "192.168.8.0/24", "AutoConfigRoute": True,
                                     "BgpConfig": bgp})
    wait_active(api, gw)
    assert pbr_entries(api, gw) == []


def test_bgp_learned_routes(api):
    """BGP-learned routes appear in DescribeVpnRouteEntries once the data plane reports them (the
    emulator's simulated peer advertises the connection's RemoteSubnet once BGP is up)."""
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api, asn=65010)
    bgp = json.dumps({"EnableBgp": True, "LocalAsn": 65001, "TunnelCidr": "169.254.21.0/30",
                      "LocalBgpIp": "169.254.21.1"})
    params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
              "RemoteSubnet": "192.168.8.0/24,192.168.9.0/24", "EffectImmediately": True, "BgpConfig": bgp}
    conn = api.call("CreateVpnConnection", params)["VpnConnectionId"]
    wait_active(api, gw)
    learned = support.wait_for(lambda: dbr_entries(api, gw, RouteEntryType="System"), timeout=10,
                               what="BGP-learned routes")
    assert {e["RouteDest"] for e in learned} == {"192.168.8.0/24", "192.168.9.0/24"}, learned
    for e in learned:
        assert (e["NextHop"], e["Weight"], e["State"], e["VpnInstanceId"]) == (conn, 100, "published", gw), e
        assert (e["RouteEntryType"], e["AsPath"]) == ("System", "65010"), e
    assert dbr_list(api, gw, RouteEntryType="Custom")["TotalCount"] == 0
    assert dbr_list(api, gw, RouteEntryType="bgp")["TotalCount"] == 2
    assert dbr_list(api, gw)["TotalCount"] == 2
    # A static route next to them; learned routes can be withdrawn from the VPC.
    dbr(api, gw, "192.168.8.0/24", conn)
    change(api, gw, "PublishVpnRouteEntry", RouteDest="192.168.9.0/24", NextHop=conn, RouteType="dbr",
           PublishVpc=False)
    assert dbr_keys(api, gw) == {("192.168.8.0/24", conn, 100, "published"), ("192.168.9.0/24", conn, 100, "normal"),
                                 ("192.168.8.0/24", conn, 100, "normal")}
    # No static policy routes for a BGP connection.
    assert pbr_entries(api, gw) == []
    # The peer stops advertising one prefix.
    conn_change(api, gw, "ModifyVpnConnectionAttribute", VpnConnectionId=conn, RemoteSubnet="192.168.9.0/24")
    assert {e["RouteDest"] for e in dbr_entries(api, gw, RouteEntryType="System")} == {"192.168.9.0/24"}
    # Gone with the connection, with the static route through it.
    conn_change(api, gw, "DeleteVpnConnection", VpnConnectionId=conn)
    assert dbr_entries(api, gw) == []


def test_deleting_a_connection_removes_its_routes(api):
    gw, (c1, c2) = setup(api)
    dbr(api, gw, "10.1.0.0/24", c1)
    dbr(api, gw, "10.1.0.0/24", c2, weight=0)
    pbr(api, gw, "192.168.0.0/24", "10.2.0.0/24", c1)
    pbr(api, gw, "192.168.0.0/24", "10.2.0.0/24", c2, weight=0)
    conn_change(api, gw, "DeleteVpnConnection", VpnConnectionId=c1)
    assert dbr_keys(api, gw) == {("10.1.0.0/24", c2, 0, "normal")}
    assert {e["NextHop"] for e in pbr_entries(api, gw)} == {c2}
    # The freed active slot can be taken again.
    dbr(api, gw, "10.1.0.0/24", new_conn(api, gw), weight=100)
    # A deleted connection is no next hop.
    expect_error(lambda: dbr(api, gw, "10.3.0.0/24", c1), 404, "InvalidVpnConnectionInstanceId.NotFound")


def test_auto_routes_clash_with_another_connection(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    remote = unique_net()
    new_conn(api, gw, local="10.0.0.0/24", remote=remote, auto=True)
    # Another customer gateway, the same traffic: a second active route for it.
    expect_error(lambda: new_conn(api, gw, local="10.0.0.0/24", remote=remote, auto=True), 400,
                 "VpnRouteEntry.Conflict")
    # Without AutoConfigRoute the connection is fine; its route can be the standby.
    standby = new_conn(api, gw, local="10.0.0.0/24", remote=remote, auto=False)
    pbr(api, gw, "10.0.0.0/24", remote, standby, weight=0)
    assert len(pbr_entries(api, gw)) == 2


def test_auto_routes_policy_quota(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0", "--quota-policy-routes", "3"])
    api = make_api("classic", srv.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    # One connection that alone needs more than the quota.
    e = expect_error(lambda: new_conn(api, gw, local="10.0.0.0/24,10.0.1.0/24", remote="1.1.0.0/24,1.1.1.0/24",
                                      auto=True), 400, "CreatePbrRoutesQuotaFull.QuotaFull")
    assert e.message
    new_conn(api, gw, local="10.0.0.0/24,10.0.1.0/24", remote="1.1.0.0/24", auto=True)
    e = expect_error(lambda: new_conn(api, gw, local="10.2.0.0/24,10.3.0.0/24", remote="1.2.0.0/24", auto=True),
                     400, "QuotaExceeded.PolicyBasedRoute")
    assert "Existing routes: 2. Routes to be created: 2. Maximum routes: 3." in e.message, e.message
    new_conn(api, gw, local="10.2.0.0/24", remote="1.2.0.0/24", auto=True)
    assert len(pbr_entries(api, gw)) == 3
    manual = new_conn(api, gw, local="10.7.0.0/24", remote="1.7.0.0/24")
    expect_error(lambda: pbr(api, gw, "10.7.0.0/24", "1.7.0.0/24", manual), 400, "Resource.QuotaFull")
