"""BGP over the tunnels end to end: the gateway's BIRD (one per gateway namespace, run by
`gatehouse serve --dataplane netns`) peers over the IPsec tunnel with a stock FRR on the customer
side, and the hosts behind both reach each other through the routes BGP taught them.

    customer LAN host ── lanbr ── customer gateway: charon + FRR  ── uplink ── gateway namespace:
                                  (169.254.x.2 on its ipsec0)                  charon + BIRD
                                                                               (169.254.x.1)
                                                     VPC host ── VPC bridge ── vpc0

The connection is route-based (LocalSubnet and RemoteSubnet 0.0.0.0/0) with BgpConfig; the
customer gateway has an ASN and an AuthKey. The customer side is configured only from what
Gatehouse hands out: `peer-config` (swanctl.conf) and `peer-config --bgp frr` (bgpd.conf, whose
header says which address goes on the tunnel interface). Two things a customer whose strongSwan
runs kernel-libipsec must do, as research/dataplane.md measured, are done here too: the tunnel
address goes on `ipsec0`, and the main table is looked up before charon's table 220 (which holds
a default route into the tunnel for 0.0.0.0/0 selectors).

The site (Gatehouse, bridges, address plan) and the per-test Env come from test_gateway_ipsec.py.
Like those tests these need root, namespaces, strongSwan and FRR: elsewhere they are skipped
loudly, and with GATEHOUSE_REQUIRE_DATAPLANE=1 they fail instead.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
from pathlib import Path

import pytest

from lab import frr_problem, machine_problem, run
from support import items, wait_status
from test_gateway_ipsec import APPLY, Env, env, running_site, tail, until  # noqa: F401  (env: fixture)

ESTABLISHED_WITHIN = 60.0  # tunnel up → BGP established and reported (BIRD and FRR retry every 5 s)
FALLS_WITHIN = 45.0        # a silent peer is down after the hold time (30 s), reported within 2 s more
ASN, AUTH_KEY = 65001, "Bgp-Key-1"
TUNNEL_CIDR, GATEWAY_BGP_IP, CUSTOMER_BGP_IP = "169.254.10.0/30", "169.254.10.1", "169.254.10.2"


def bgp_problem() -> str | None:
    problem = machine_problem()
    if problem is None and shutil.which("bird") is None:
        problem = "BIRD 2 (bird) is not installed"
    return problem or frr_problem()


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    yield from running_site(request, tmp_path_factory, "gateway BGP end-to-end tests",
                            "root, network namespaces, strongSwan, BIRD 2 and FRR", bgp_problem())


def kernel_routes(ns: str, proto: str) -> dict[str, str]:
    """The namespace's main-table routes of `proto`: destination → gateway (or device)."""
    out = json.loads(run(["ip", "-n", ns, "-j", "route", "show", "proto", proto]).stdout or "[]")
    return {r["dst"]: r.get("gateway", r.get("dev", "")) for r in out}


def learned(env: Env, vco: str) -> list[str]:
    """The gateway's BGP-learned routes via `vco`, as DescribeVpnRouteEntries shows them."""
    gw = env.describe(vco)["VpnGatewayId"]
    routes = env.api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "RouteEntryType": "Bgp", "PageSize": 50})
    return sorted(r["RouteDest"] for r in items(routes, "VpnRouteEntries", "VpnRouteEntry")
                  if r["NextHop"] == vco and r["Source"] == "BGP")


def bgp_state(env: Env, vco: str) -> tuple[str, list[str]]:
    """What the API shows of a single-tunnel connection: VpnBgpConfig.Status and what it learned."""
    return env.describe(vco)["VpnBgpConfig"]["Status"], learned(env, vco)


def test_bgp_over_the_tunnel_with_frr(env):
    site = env.site
    gw = env.gateway()
    gw_id, gw_ns = gw["VpnGatewayId"], site.netns_of(gw["VpnGatewayId"])
    cust = env.customer()
    vpc = env.vpc_host(gw, cust.lan)
    cgw = env.api.call("CreateCustomerGateway", {"IpAddress": cust.ips[0], "Asn": ASN,
                                                 "AuthKey": AUTH_KEY})["CustomerGatewayId"]
    bgp = {"EnableBgp": "true", "LocalAsn": 45104, "TunnelCidr": TUNNEL_CIDR, "LocalBgpIp": GATEWAY_BGP_IP}
    vco = env.connect(gw, cgw, "0.0.0.0/0", ike={"IkeVersion": "ikev2"}, LocalSubnet="0.0.0.0/0",
                      BgpConfig=json.dumps(bgp))

    # The tunnel, from the swanctl.conf as it is.
    env.bring_up(cust, vco)
    # The gateway's side of the tunnel: LocalBgpIp on its ESP device, BIRD running.
    addrs = run(["ip", "-n", gw_ns, "-4", "-o", "addr", "show"]).stdout
    assert f"{GATEWAY_BGP_IP}/30" in addrs, addrs
    bird_dir = site.dataplane_dir(gw_id) / "bird"
    assert (bird_dir / "bird.conf").exists() and (bird_dir / "bird.pid").exists(), list(site.dataplane_dir(gw_id).iterdir())
    assert oct((bird_dir / "bird.conf").stat().st_mode & 0o777) == "0o600", "bird.conf holds the AuthKey"

    # The customer's BGP side, from `peer-config --bgp frr` as it is.
    bgpd_conf = site.server.cli("peer-config", vco, "--bgp", "frr").stdout
    assert f"! Put {CUSTOMER_BGP_IP}/30 on the interface of tunnel {vco} (toward {gw['InternetIp']}) before starting." \
        in bgpd_conf, bgpd_conf
    assert f"router bgp {ASN}" in bgpd_conf and f"neighbor {GATEWAY_BGP_IP} password {AUTH_KEY}" in bgpd_conf
    env.scope.exec(cust.ns, "ip", "addr", "add", f"{CUSTOMER_BGP_IP}/30", "dev", "ipsec0")
    env.scope.rule(cust.ns, "priority", 219, "lookup", "main", "suppress_prefixlength", 0)
    # The customer's LAN is its own knowledge: it announces it.
    bgpd_conf = site.server.cli("peer-config", vco, "--bgp", "frr", "--announce", cust.lan).stdout
    assert f"  network {cust.lan}" in bgpd_conf, bgpd_conf
    frr = env.scope.frr(cust.ns, bgpd_conf)

    def diag() -> str:
        return "\n".join([env.diag(), frr.logs(), f"--- bird.log:\n{tail(bird_dir / 'bird.log')}",
                          f"--- FRR: {frr.vtysh('show bgp summary')}", f"--- API: {bgp_state(env, vco)}"])

    # The session comes up and each side learns the other's networks, in the API and in the kernels.
    until(lambda: bgp_state(env, vco) == ("success", [cust.lan]), ESTABLISHED_WITHIN,
          "VpnBgpConfig.Status success and the customer's LAN learned", diag, interval=0.5)
    until(lambda: kernel_routes(gw_ns, "bird").get(cust.lan) == CUSTOMER_BGP_IP, 10,
          "the learned route in the gateway's namespace", diag)
    vpc_net = str(ipaddress.ip_interface(f"{gw['IntranetIp']}/{site.plen}").network)
    until(lambda: kernel_routes(cust.ns, "bgp").get(vpc_net) == GATEWAY_BGP_IP, 10,
          "the VPC's subnet learned by the customer", diag)
    d = env.describe(vco)
    assert d["VpnBgpConfig"]["PeerAsn"] == ASN and d["VpnBgpConfig"]["PeerBgpIp"] == CUSTOMER_BGP_IP, d
    route = next(r for r in items(env.api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw_id, "PageSize": 50}),
                                  "VpnRouteEntries", "VpnRouteEntry") if r["RouteDest"] == cust.lan)
    assert (route["RouteEntryType"], route["Source"], route["AsPath"]) == ("System", "BGP", str(ASN)), route

    # Hosts on both sides reach each other, and their packets follow the learned routes.
    env.ping_both_ways(cust, vpc)
    via = run(["ip", "-n", gw_ns, "-o", "route", "get", cust.host_ip]).stdout
    assert f"via {CUSTOMER_BGP_IP} dev ipsec0" in via or f"via {CUSTOMER_BGP_IP} dev pub0" in via, via

    # BIRD killed: the gateway starts it again from its files, and the session comes back.
    bird_pid = int((bird_dir / "bird.pid").read_text())
    env.scope.signal_pid(bird_pid, signal.SIGKILL, allowed=[gw_ns])
    until(lambda: int((bird_dir / "bird.pid").read_text() or 0) not in (0, bird_pid), 20, "a new bird", diag)
    until(lambda: bgp_state(env, vco) == ("success", [cust.lan]), ESTABLISHED_WITHIN,
          "the session back after bird was killed", diag, interval=0.5)
    env.wait_ping(vpc.ns, cust.host_ip)

    # Gatehouse killed and started again: it adopts the running BIRD, whose session never fell.
    bird_pid = int((bird_dir / "bird.pid").read_text())
    site.server.kill9()
    site.server.start()
    until(lambda: bgp_state(env, vco) == ("success", [cust.lan]), 10, "BGP as it was after the restart", diag)
    assert int((bird_dir / "bird.pid").read_text()) == bird_pid, "the running bird is adopted, not restarted"
    env.wait_ping(vpc.ns, cust.host_ip)

    # Cut the peer: the session falls, what it taught goes, from the API and from the namespace.
    frr.stop_bgpd()
    until(lambda: bgp_state(env, vco) == ("failed", []), FALLS_WITHIN,
          "VpnBgpConfig.Status failed and the learned route withdrawn", diag, interval=0.5)
    until(lambda: cust.lan not in kernel_routes(gw_ns, "bird"), 10, "the learned route gone from the namespace",
          diag)

    # Deleting the connection stops BIRD (no BGP tunnel is left) and takes the tunnel address away.
    bird_pid = int((bird_dir / "bird.pid").read_text())
    env.api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    until(lambda: not bird_dir.exists(), 30, "bird's directory removed", diag)
    until(lambda: not Path(f"/proc/{bird_pid}").exists(), 10, "bird stopped", diag)
    assert f"{GATEWAY_BGP_IP}/30" not in run(["ip", "-n", gw_ns, "-4", "-o", "addr", "show"]).stdout


def test_dual_tunnel_bgp_both_sessions_up(env):
    """EnableTunnelsBgp: each tunnel of a dual-tunnel connection has its own session (its own
    TunnelCidr, from its own public address), both reported per tunnel; FRR peers with both."""
    site = env.site
    gw = env.gateway(dual=True)
    gw_ns = site.netns_of(gw["VpnGatewayId"])
    cust = env.customer(n_ips=2)
    vpc = env.vpc_host(gw, cust.lan)
    cidrs = {"master": ("169.254.11.0/30", "169.254.11.1", "169.254.11.2"),
             "slave": ("169.254.12.0/30", "169.254.12.1", "169.254.12.2")}
    tunnels = []
    for (role, (cidr, local, _)), ip, psk in zip(cidrs.items(), cust.ips, ("master-Psk-1", "slave-Psk-2")):
        cgw = env.api.call("CreateCustomerGateway", {"IpAddress": ip, "Asn": ASN})["CustomerGatewayId"]
        tunnels.append({"Role": role, "CustomerGatewayId": cgw, "TunnelIkeConfig": {"IkeVersion": "ikev2", "Psk": psk},
                        "TunnelBgpConfig": {"LocalAsn": 45104, "TunnelCidr": cidr, "LocalBgpIp": local}})
    vco = env.api.call("CreateVpnConnection", {
        "VpnGatewayId": gw["VpnGatewayId"], "LocalSubnet": "0.0.0.0/0", "RemoteSubnet": "0.0.0.0/0",
        "EffectImmediately": True, "EnableTunnelsBgp": True, "TunnelOptionsSpecification": tunnels})["VpnConnectionId"]
    wait_status(env.api, gw["VpnGatewayId"], "active", timeout=APPLY)
    env.bring_up(cust, vco)
    for _, _, peer in cidrs.values():
        env.scope.exec(cust.ns, "ip", "addr", "add", f"{peer}/30", "dev", "ipsec0")
    env.scope.rule(cust.ns, "priority", 219, "lookup", "main", "suppress_prefixlength", 0)
    bgpd_conf = site.server.cli("peer-config", vco, "--bgp", "frr", "--announce", cust.lan).stdout
    for role, (_, local, peer) in cidrs.items():
        assert f"! Put {peer}/30 on the interface of tunnel {role}" in bgpd_conf, bgpd_conf
        assert f" neighbor {local} update-source {peer}" in bgpd_conf, bgpd_conf
    frr = env.scope.frr(cust.ns, bgpd_conf)

    def bgp_statuses() -> dict[str, str]:
        d = env.describe(vco)
        return {t["Role"]: t["TunnelBgpConfig"]["BgpStatus"] for t in d["TunnelOptionsSpecification"]["TunnelOptions"]}

    def diag() -> str:
        return "\n".join([env.diag(), frr.logs(), f"--- FRR: {frr.vtysh('show bgp summary')}",
                          f"--- API: {bgp_statuses()}"])

    until(lambda: bgp_statuses() == {"master": "success", "slave": "success"}, ESTABLISHED_WITHIN,
          "both tunnels' BgpStatus success", diag, interval=0.5)
    until(lambda: learned(env, vco) == [cust.lan], 10, "the customer's LAN learned", diag)
    until(lambda: cust.lan in kernel_routes(gw_ns, "bird"), 10, "the learned route in the namespace", diag)
    env.ping_both_ways(cust, vpc)
    summary = frr.vtysh("show bgp summary")
    for _, local, _ in cidrs.values():
        assert local in summary, summary
