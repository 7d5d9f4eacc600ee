"""IPsec connections over time, through the official Python SDKs: the gateway's `updating` cycle
that every connection change starts, what the simulated data plane reports, the rules between
connections and the resources they use, the customer-side configuration the CLI prints, and the
whole lifecycle from an empty account back to the NotFound codes.

Spec: shared/spec/actions/CreateVpnConnection.yaml (000: ASYNCHRONOUS, NO CONCURRENCY),
ModifyVpnConnectionAttribute.yaml, DeleteVpnConnection.yaml, DescribeVpnConnection(s).yaml
(Status values), DeleteVpnGateway.yaml, DeleteCustomerGateway.yaml,
ModifyVpnGatewayAttribute.yaml, ModifyCustomerGatewayAttribute.yaml; the route actions for the
lifecycle. The data plane is simulated by the rules in src/dataplane.rs (its module doc):
EffectImmediately or an enabled health check makes a tunnel negotiate (ipsec_sa_established),
otherwise a new tunnel stays ike_sa_not_established; BGP comes up when the customer gateway has an
ASN, and the peer then advertises the connection's RemoteSubnet.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

import support
from support import (
    GatehouseServer,
    KINDS,
    active_gateway,
    create_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    public_ip,
    vpc_id,
    vsw_id,
    wait_for,
    wait_gone,
    wait_status,
)

DELAY_MS = 300
UNKNOWN_CONN = "vco-" + "z" * 21


@pytest.fixture(scope="module")
def lc_server(tmp_path_factory):
    """Changes take ~300 ms to apply: long enough to observe `updating`, short enough to wait for."""
    srv = GatehouseServer(tmp_path_factory.mktemp("gh-lifecycle") / "data",
                          ["--transition-delay-ms", str(DELAY_MS), "--quota-vpn-gateways", "1000",
                           "--quota-customer-gateways", "1000"], name="lifecycle")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=KINDS)
def lapi(request, lc_server, root):
    return make_api(request.param, lc_server.endpoint, root)


# ---------------------------------------------------------------- helpers


def net24(first: int = 192) -> str:
    return f"{first}.{random.randint(0, 255)}.{random.randint(0, 255)}.0/24"


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=10)


def new_cgw(api, asn: int | None = None) -> str:
    p = {"IpAddress": public_ip()}
    if asn is not None:
        p["Asn"] = asn
    return api.call("CreateCustomerGateway", p)["CustomerGatewayId"]


def describe(api, vco: str) -> dict:
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})


def create_conn(api, gw: str, cgw: str | None, wait: bool = True, **p) -> str:
    params = {"VpnGatewayId": gw, "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": net24(), **p}
    if cgw is not None:
        params["CustomerGatewayId"] = cgw
    vco = api.call("CreateVpnConnection", params)["VpnConnectionId"]
    if wait:
        wait_active(api, gw)
    return vco


def bgp(cidr: str, **extra) -> str:
    return json.dumps({"EnableBgp": "true", "LocalAsn": "65001", "TunnelCidr": cidr, **extra})


def learned(api, gw: str) -> set:
    body = api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "RouteEntryType": "System", "PageSize": 50})
    return {(e["RouteDest"], e["NextHop"]) for e in items(body, "VpnRouteEntries", "VpnRouteEntry")}


def by_role(conn: dict) -> dict[str, dict]:
    opts = conn["TunnelOptionsSpecification"]["TunnelOptions"]
    assert isinstance(opts, list) and len(opts) == 2, conn
    return {t["Role"]: t for t in opts}


def connections(api, **f) -> set:
    body = api.call("DescribeVpnConnections", {"PageSize": 50, **f})
    return {x["VpnConnectionId"] for x in items(body, "VpnConnections", "VpnConnection")}


def settled(api, gw: str, vcos: list[str]):
    """The gateway is active and every connection has been applied (bounded poll)."""
    def check():
        if describe_gateway(api, gw)["Status"] != "active":
            return None
        states = [describe(api, v)["State"] for v in vcos]
        return states if all(st == "active" for st in states) else None

    return wait_for(check, timeout=10, what=f"{gw} and {vcos} active")


# ---------------------------------------------------------------- the updating cycle


def test_create_updates_the_gateway(lapi):
    api = lapi
    gw = active_gateway(api)["VpnGatewayId"]
    cgw, other = new_cgw(api), new_cgw(api)
    vco = create_conn(api, gw, cgw, wait=False)
    # Asynchronous: the gateway is `updating` while the connection is being created.
    assert describe_gateway(api, gw)["Status"] == "updating"
    # No concurrent change on that gateway meanwhile.
    e = expect_error(lambda: create_conn(api, gw, other, wait=False, LocalSubnet="10.9.0.0/24"), 400,
                     "VpnGateway.Configuring")
    assert e.message == "The specified service is configuring.", e.message
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "x1"}), 400,
                 "VpnGateway.Configuring")
    expect_error(lambda: api.call("DeleteVpnConnection", {"VpnConnectionId": vco}), 400, "VpnGateway.Configuring")
    # Reading is fine, and the connection is there, `updating` until the gateway has applied it.
    d = describe(api, vco)
    assert (d["State"], describe_gateway(api, gw)["Status"]) == ("updating", "updating"), d
    assert connections(api, VpnGatewayId=gw) == {vco}
    settled(api, gw, [vco])
    # Nothing of the refused requests happened.
    assert describe(api, vco)["Name"] == ""
    assert connections(api, VpnGatewayId=gw) == {vco}


def test_modify_and_delete_update_the_gateway(lapi):
    api = lapi
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create_conn(api, gw, new_cgw(api))
    keep = create_conn(api, gw, new_cgw(api), LocalSubnet="10.1.0.0/24")
    settled(api, gw, [vco, keep])
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "renamed"})
    assert out["Name"] == "renamed", out
    assert (describe(api, vco)["State"], describe_gateway(api, gw)["Status"]) == ("updating", "updating")
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": keep, "Name": "x2"}), 400,
                 "VpnGateway.Configuring")
    expect_error(lambda: api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": "172.16.1.0/24",
                                                          "NextHop": vco, "Weight": 100, "PublishVpc": False}),
                 400, "VpnGateway.Configuring")
    settled(api, gw, [vco, keep])
    assert describe(api, vco)["Name"] == "renamed" and describe(api, keep)["Name"] == ""

    api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    assert describe_gateway(api, gw)["Status"] == "updating"
    expect_error(lambda: api.call("DeleteVpnConnection", {"VpnConnectionId": keep}), 400, "VpnGateway.Configuring")
    wait_active(api, gw)
    wait_for(lambda: connections(api, VpnGatewayId=gw) == {keep}, timeout=10, what="the connection to go")
    expect_error(lambda: describe(api, vco), 404, "InvalidVpnConnectionInstanceId.NotFound")
    assert describe(api, keep)["State"] == "active"


# ---------------------------------------------------------------- the simulated data plane


def test_negotiation_status(lapi):
    api = lapi
    gw = active_gateway(api)["VpnGatewayId"]
    idle = create_conn(api, gw, new_cgw(api), LocalSubnet="10.1.0.0/24")
    now = create_conn(api, gw, new_cgw(api), LocalSubnet="10.2.0.0/24", EffectImmediately=True)
    hc = create_conn(api, gw, new_cgw(api), LocalSubnet="10.3.0.0/24", HealthCheckConfig=json.dumps(
        {"enable": "true", "dip": "192.168.3.1", "sip": "10.3.0.1", "interval": "3", "retry": "3"}))
    settled(api, gw, [idle, now, hc])

    d = describe(api, idle)
    # No reason to negotiate: phase 1 is not up; a disabled health check reports success.
    assert d["Status"] == "ike_sa_not_established", d
    assert (d["VcoHealthCheck"]["Enable"], d["VcoHealthCheck"]["Status"]) == ("false", "success"), d
    assert describe(api, now)["Status"] == "ipsec_sa_established"
    d = describe(api, hc)
    # The health check's probes are traffic: the tunnel comes up, and the check succeeds.
    assert d["Status"] == "ipsec_sa_established", d
    assert (d["VcoHealthCheck"]["Enable"], d["VcoHealthCheck"]["Status"]) == ("true", "success"), d
    # A change made with EffectImmediately renegotiates.
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": idle, "EffectImmediately": True})
    settled(api, gw, [idle])
    assert describe(api, idle)["Status"] == "ipsec_sa_established"
    # The list says the same.
    body = api.call("DescribeVpnConnections", {"VpnGatewayId": gw})
    assert {x["VpnConnectionId"]: x["Status"] for x in items(body, "VpnConnections", "VpnConnection")} == {
        idle: "ipsec_sa_established", now: "ipsec_sa_established", hc: "ipsec_sa_established"}


def test_bgp_status_and_learned_routes(lapi):
    api = lapi
    gw = active_gateway(api)["VpnGatewayId"]
    remote = f"{net24()},{net24(172)}"
    up = create_conn(api, gw, new_cgw(api, asn=65010), RemoteSubnet=remote, EffectImmediately=True,
                     BgpConfig=bgp("169.254.70.0/30"))
    down = create_conn(api, gw, new_cgw(api, asn=65020), LocalSubnet="10.1.0.0/24",
                       BgpConfig=bgp("169.254.71.0/30"))
    settled(api, gw, [up, down])
    d = describe(api, up)
    assert d["Status"] == "ipsec_sa_established", d
    b = d["VpnBgpConfig"]
    assert (b["EnableBgp"], b["Status"], b["PeerAsn"]) == ("true", "success", 65010), b
    # The simulated peer advertises the connection's RemoteSubnet: the gateway learns it over BGP.
    assert learned(api, gw) == {(n, up) for n in remote.split(",")}
    # A tunnel that is not up has no BGP session.
    d = describe(api, down)
    assert (d["Status"], d["VpnBgpConfig"]["Status"]) == ("ike_sa_not_established", "failed"), d
    # Once it negotiates, BGP comes up and its prefixes are learned too.
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": down, "EffectImmediately": True})
    settled(api, gw, [down])
    d = describe(api, down)
    assert (d["Status"], d["VpnBgpConfig"]["Status"]) == ("ipsec_sa_established", "success"), d
    assert (d["RemoteSubnet"], down) in learned(api, gw)
    # A connection's learned routes go with it.
    api.call("DeleteVpnConnection", {"VpnConnectionId": up})
    wait_active(api, gw)
    assert learned(api, gw) == {(describe(api, down)["RemoteSubnet"], down)}


def test_dual_tunnel_status_per_tunnel(lapi):
    api = lapi
    gw = active_gateway(api, DisasterRecoveryVSwitchId=vsw_id())["VpnGatewayId"]
    g = describe_gateway(api, gw)
    c1, c2 = new_cgw(api, asn=65010), new_cgw(api, asn=65020)
    vco = create_conn(api, gw, None, EnableTunnelsBgp=True, TunnelOptionsSpecification=[
        {"Role": "master", "CustomerGatewayId": c1, "TunnelBgpConfig": {"TunnelCidr": "169.254.80.0/30"}},
        {"Role": "slave", "CustomerGatewayId": c2, "TunnelBgpConfig": {"TunnelCidr": "169.254.80.4/30"}}])
    settled(api, gw, [vco])
    t = by_role(describe(api, vco))
    assert (t["master"]["InternetIp"], t["slave"]["InternetIp"]) == (g["InternetIp"], g["DisasterRecoveryInternetIp"])
    assert (t["master"]["Status"], t["slave"]["Status"]) == ("ike_sa_not_established", "ike_sa_not_established"), t
    assert (t["master"]["TunnelBgpConfig"]["BgpStatus"], t["slave"]["TunnelBgpConfig"]["BgpStatus"]) == \
        ("failed", "failed"), t
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "EffectImmediately": True})
    settled(api, gw, [vco])
    d = describe(api, vco)
    t = by_role(d)
    assert (t["master"]["Status"], t["slave"]["Status"]) == ("ipsec_sa_established", "ipsec_sa_established"), t
    assert (t["master"]["TunnelBgpConfig"]["BgpStatus"], t["slave"]["TunnelBgpConfig"]["BgpStatus"]) == \
        ("success", "success"), t
    assert learned(api, gw) == {(d["RemoteSubnet"], vco)}


# ---------------------------------------------------------------- rules across resources


def test_dependencies(lapi):
    api = lapi
    gw = active_gateway(api)["VpnGatewayId"]
    dual = active_gateway(api, DisasterRecoveryVSwitchId=vsw_id())["VpnGatewayId"]
    plain_gw = active_gateway(api)["VpnGatewayId"]
    a, slave, spare = new_cgw(api, asn=65010), new_cgw(api), new_cgw(api)
    vco = create_conn(api, gw, a, BgpConfig=bgp("169.254.90.0/30"))
    dvco = create_conn(api, dual, None, TunnelOptionsSpecification=[
        {"Role": "master", "CustomerGatewayId": spare}, {"Role": "slave", "CustomerGatewayId": slave}])
    create_conn(api, plain_gw, new_cgw(api))

    # A gateway with connections cannot go.
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": gw}), 400, "DependencyViolation.VpnConnection")
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": dual}), 400,
                 "DependencyViolation.VpnConnection")
    # Nor a customer gateway a connection (or one tunnel of one) uses.
    expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": a}), 400,
                 "DependencyViolation.VpnConnection")
    expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": slave}), 400,
                 "DependencyViolation.VpnConnection")
    # Route propagation cannot be switched off under a BGP connection; under static ones it can.
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": False}), 400,
                 "OperationFailed.VpnConnectionExist")
    assert describe_gateway(api, gw)["AutoPropagate"] is True
    assert api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": plain_gw, "AutoPropagate": False})[
        "AutoPropagate"] is False

    # A customer gateway whose VPN gateway is being configured cannot change.
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "busy"})
    e = expect_error(lambda: api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": a,
                                                                         "Description": "during"}),
                     400, "OperationDenied.VpnConfiguring")
    assert e.message, e
    wait_active(api, gw)
    out = api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": a, "Description": "after"})
    assert out["Description"] == "after", out

    # Once the connections are gone, everything can go.
    for g, v in ((gw, vco), (dual, dvco)):
        api.call("DeleteVpnConnection", {"VpnConnectionId": v})
        wait_active(api, g)
    api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": False})
    for c in (a, slave, spare):
        api.call("DeleteCustomerGateway", {"CustomerGatewayId": c})
    for g in (gw, dual):
        api.call("DeleteVpnGateway", {"VpnGatewayId": g})
        wait_gone(api, g)


# ---------------------------------------------------------------- the customer side (CLI)


def peer_config(srv: GatehouseServer, vco: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [str(support.BIN), "peer-config", vco, *extra, "--data-dir", str(srv.data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=srv.env, stdin=subprocess.DEVNULL)


def test_peer_config_cli(lc_server, root):
    api = make_api("classic", lc_server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    gw_ip = describe_gateway(api, gw)["InternetIp"]
    customer_ip = public_ip()
    cgw = api.call("CreateCustomerGateway", {"IpAddress": customer_ip})["CustomerGatewayId"]
    remote = net24()
    vco = create_conn(api, gw, cgw, LocalSubnet="10.0.0.0/24,10.0.1.0/24", RemoteSubnet=remote,
                      IkeConfig=json.dumps({"Psk": "peer-psk-1", "IkeVersion": "ikev2"}))
    r = peer_config(lc_server, vco)
    assert r.returncode == 0, r
    conf = r.stdout
    lines = {ln.strip() for ln in conf.splitlines()}
    # Seen from the customer: local is the customer gateway, remote the VPN gateway.
    assert f"local_addrs = {customer_ip}" in lines, conf
    assert f"remote_addrs = {gw_ip}" in lines, conf
    assert 'secret = "peer-psk-1"' in lines, conf
    assert f"local_ts = {remote}" in lines, conf
    assert "remote_ts = 10.0.0.0/24,10.0.1.0/24" in lines, conf
    assert "version = 2" in lines, conf
    assert "connections {" in lines and "secrets {" in lines, conf
    # --account defaults to root.
    explicit = peer_config(lc_server, vco, "--account", "root")
    assert (explicit.returncode, explicit.stdout) == (0, conf), explicit
    # A generated PSK is printed as Describe shows it.
    vco2 = create_conn(api, gw, new_cgw(api), LocalSubnet="10.5.0.0/24")
    psk = describe(api, vco2)["IkeConfig"]["Psk"]
    assert f'secret = "{psk}"' in peer_config(lc_server, vco2).stdout
    # Unknown connection: a failure, not an empty file.
    bad = peer_config(lc_server, UNKNOWN_CONN)
    assert bad.returncode != 0 and "connections {" not in bad.stdout, bad

    # Another account's connection is found under that account only.
    other = lc_server.create_account()
    theirs = make_api("tea-acs3", lc_server.endpoint, other)
    their_gw = active_gateway(theirs)["VpnGatewayId"]
    their_vco = create_conn(theirs, their_gw, new_cgw(theirs))
    assert peer_config(lc_server, their_vco).returncode != 0
    mine = peer_config(lc_server, their_vco, "--account", other.account)
    assert mine.returncode == 0 and f"remote_addrs = {describe_gateway(theirs, their_gw)['InternetIp']}" in mine.stdout


# ---------------------------------------------------------------- the whole lifecycle


def test_full_lifecycle(lapi):
    api = lapi
    # 1. Gateways: one single-tunnel, one dual-tunnel.
    a = create_gateway(api, VpcId=vpc_id(), Name="lifecycle-a")["VpnGatewayId"]
    b = create_gateway(api, VpcId=vpc_id(), Name="lifecycle-b", DisasterRecoveryVSwitchId=vsw_id())["VpnGatewayId"]
    ga, gb = wait_active(api, a), wait_active(api, b)
    assert gb["DisasterRecoveryInternetIp"] and not ga.get("DisasterRecoveryInternetIp"), (ga, gb)

    # 2. Customer gateways.
    c1, c2, c3 = new_cgw(api, asn=65010), new_cgw(api), new_cgw(api, asn=65030)
    ip = {c: api.call("DescribeCustomerGateway", {"CustomerGatewayId": c})["IpAddress"] for c in (c1, c2, c3)}

    # 3. Connections in both modes: static and BGP on A, dual-tunnel BGP on B.
    a1 = create_conn(api, a, c2, LocalSubnet="10.10.0.0/24", RemoteSubnet="192.168.10.0/24", Name="a-static",
                     EffectImmediately=True, IkeConfig=json.dumps({"Psk": "a1-psk"}))
    a2 = create_conn(api, a, c1, LocalSubnet="10.10.0.0/24", RemoteSubnet="192.168.20.0/24", Name="a-bgp",
                     EffectImmediately=True, BgpConfig=bgp("169.254.60.0/30"))
    bv = create_conn(api, b, None, LocalSubnet="10.20.0.0/24", RemoteSubnet="192.168.30.0/24", Name="b-dual",
                     EffectImmediately=True, EnableTunnelsBgp=True, TunnelOptionsSpecification=[
                         {"Role": "master", "CustomerGatewayId": c1, "TunnelIkeConfig": {"Psk": "b-master"},
                          "TunnelBgpConfig": {"TunnelCidr": "169.254.61.0/30"}},
                         {"Role": "slave", "CustomerGatewayId": c3, "TunnelIkeConfig": {"Psk": "b-slave"},
                          "TunnelBgpConfig": {"TunnelCidr": "169.254.61.4/30"}}])
    settled(api, a, [a1, a2])
    settled(api, b, [bv])
    assert connections(api, VpnGatewayId=a) == {a1, a2}
    assert connections(api, VpnGatewayId=b) == {bv}
    assert connections(api, CustomerGatewayId=c1) == {a2, bv}
    assert describe(api, a1)["Status"] == describe(api, a2)["Status"] == "ipsec_sa_established"
    t = by_role(describe(api, bv))
    assert {r: (x["InternetIp"], x["Status"]) for r, x in t.items()} == {
        "master": (gb["InternetIp"], "ipsec_sa_established"),
        "slave": (gb["DisasterRecoveryInternetIp"], "ipsec_sa_established")}, t
    assert learned(api, a) == {("192.168.20.0/24", a2)}
    assert learned(api, b) == {("192.168.30.0/24", bv)}

    def pbr_keys(gw):
        body = api.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw, "PageSize": 50})
        return {(e["RouteSource"], e["RouteDest"], e["NextHop"], e["State"])
                for e in items(body, "VpnPbrRouteEntries", "VpnPbrRouteEntry")}

    def dbr_keys(gw):
        body = api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "RouteEntryType": "Custom", "PageSize": 50})
        return {(e["RouteDest"], e["NextHop"], e["State"]) for e in items(body, "VpnRouteEntries", "VpnRouteEntry")}

    # The static connection's automatic policy route.
    assert pbr_keys(a) == {("10.10.0.0/24", "192.168.10.0/24", a1, "published")}

    def change(gw, action, **params):
        out = api.call(action, {"VpnGatewayId": gw, **params})
        wait_active(api, gw)
        return out

    # 4. Routes, unpublished.
    change(a, "CreateVpnRouteEntry", RouteDest="172.16.50.0/24", NextHop=a1, Weight=100, PublishVpc=False)
    change(a, "CreateVpnPbrRouteEntry", RouteSource="10.10.0.0/24", RouteDest="172.16.60.0/24", NextHop=a1,
           Weight=100, PublishVpc=False)
    change(b, "CreateVpnRouteEntry", RouteDest="172.16.70.0/24", NextHop=bv, Weight=100, PublishVpc=False)
    assert dbr_keys(a) == {("172.16.50.0/24", a1, "normal")}
    assert ("10.10.0.0/24", "172.16.60.0/24", a1, "normal") in pbr_keys(a)
    assert dbr_keys(b) == {("172.16.70.0/24", bv, "normal")}

    # 5. Publish them to the VPCs.
    change(a, "PublishVpnRouteEntry", RouteDest="172.16.50.0/24", NextHop=a1, RouteType="dbr", PublishVpc=True)
    change(a, "PublishVpnRouteEntry", RouteDest="172.16.60.0/24", NextHop=a1, RouteType="pbr", PublishVpc=True)
    change(b, "PublishVpnRouteEntry", RouteDest="172.16.70.0/24", NextHop=bv, RouteType="dbr", PublishVpc=True)
    assert dbr_keys(a) == {("172.16.50.0/24", a1, "published")}
    assert pbr_keys(a) == {("10.10.0.0/24", "192.168.10.0/24", a1, "published"),
                           ("10.10.0.0/24", "172.16.60.0/24", a1, "published")}
    assert dbr_keys(b) == {("172.16.70.0/24", bv, "published")}

    # 6. Modify: a name and the on-premises side of the static connection (its automatic route
    # follows), the slave tunnel's key of the dual one; the customer gateway's description.
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": a1, "Name": "a-static-2",
                                                    "RemoteSubnet": "192.168.11.0/24"})
    assert (out["Name"], out["RemoteSubnet"], out["IkeConfig"]["Psk"]) == ("a-static-2", "192.168.11.0/24", "a1-psk")
    settled(api, a, [a1])
    assert pbr_keys(a) == {("10.10.0.0/24", "192.168.11.0/24", a1, "published"),
                           ("10.10.0.0/24", "172.16.60.0/24", a1, "published")}
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": bv, "TunnelOptionsSpecification": [
        {"Role": "slave", "TunnelIkeConfig": {"Psk": "b-slave-2"}}]})
    t = by_role(out)
    assert (t["master"]["TunnelIkeConfig"]["Psk"], t["slave"]["TunnelIkeConfig"]["Psk"]) == ("b-master", "b-slave-2")
    settled(api, b, [bv])
    api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": c2, "Description": "branch-office"})
    # What the peers are told.
    cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": a1})["VpnConnectionConfig"]
    assert (cfg["Local"], cfg["Remote"], cfg["LocalSubnet"], cfg["RemoteSubnet"], cfg["IkeConfig"]["Psk"]) == \
        (ga["InternetIp"], ip[c2], "10.10.0.0/24", "192.168.11.0/24", "a1-psk"), cfg
    cfg = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": bv})["VpnConnectionConfig"]
    got = {(tc["Local"], tc["Remote"], tc["IkeConfig"]["Psk"]) for tc in cfg["TunnelsConfig"]["TunnelConfig"]}
    assert got == {(gb["InternetIp"], ip[c1], "b-master"), (gb["DisasterRecoveryInternetIp"], ip[c3], "b-slave-2")}

    # 7. Delete in reverse: routes, connections, customer gateways, gateways.
    change(b, "DeleteVpnRouteEntry", RouteDest="172.16.70.0/24", NextHop=bv, Weight=100)
    change(a, "DeleteVpnPbrRouteEntry", RouteSource="10.10.0.0/24", RouteDest="172.16.60.0/24", NextHop=a1,
           Weight=100)
    change(a, "DeleteVpnRouteEntry", RouteDest="172.16.50.0/24", NextHop=a1, Weight=100)
    assert dbr_keys(a) == set() and dbr_keys(b) == set()
    for gw, vco in ((b, bv), (a, a2), (a, a1)):
        api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        wait_active(api, gw)
    assert connections(api, VpnGatewayId=a) == set() and connections(api, VpnGatewayId=b) == set()
    # Their routes, automatic and learned, went with them.
    assert pbr_keys(a) == set() and learned(api, a) == set() and learned(api, b) == set()
    for c in (c3, c2, c1):
        api.call("DeleteCustomerGateway", {"CustomerGatewayId": c})
    for gw in (b, a):
        api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    for gw in (b, a):
        wait_gone(api, gw)

    # 8. Everything answers with its NotFound code.
    for vco in (bv, a2, a1):
        for action in ("DescribeVpnConnection", "DownloadVpnConnectionConfig", "DeleteVpnConnection"):
            expect_error(lambda: api.call(action, {"VpnConnectionId": vco}), 404,
                         "InvalidVpnConnectionInstanceId.NotFound")
        expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "Name": "gone"}),
                     404, "InvalidVpnConnectionInstanceId.NotFound")
    for c in (c3, c2, c1):
        expect_error(lambda: api.call("DescribeCustomerGateway", {"CustomerGatewayId": c}), 404,
                     "InvalidCustomerGatewayInstanceId.NotFound")
        expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": c}), 404,
                     "InvalidCustomerGatewayInstanceId.NotFound")
    for gw in (b, a):
        for action in ("DescribeVpnGateway", "DeleteVpnGateway", "DescribeVpnRouteEntries",
                       "DescribeVpnPbrRouteEntries"):
            expect_error(lambda: api.call(action, {"VpnGatewayId": gw}), 404, "InvalidVpnGatewayInstanceId.NotFound")
        expect_error(lambda: create_conn(api, gw, None, wait=False), 404, "InvalidVpnGatewayInstanceId.NotFound")
        assert connections(api, VpnGatewayId=gw) == set()
