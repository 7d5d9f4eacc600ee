"""The gateway face end to end: `gatehouse serve --dataplane netns` with real strongSwan on both sides.

Gatehouse runs one network namespace and one charon per VPN gateway (`<prefix><VpnGatewayId>`:
pub0/pub1 on the uplink bridge, vpc0 on the VPC's bridge). The tests build the rest with lab.py,
all inside namespaces and bridges of their own:

    customer LAN host ── lanbr ── customer gateway (its own charon) ── uplink bridge ── gateway ns
                                                                                           │ vpc0
                                                       VPC host ── VPC bridge (a or b) ────┘

The customer's charon is configured only from `gatehouse peer-config` (as a customer would); the
tests drive Gatehouse through the official classic Python SDK and watch what a user sees
(DescribeVpnConnection's Status), what the customer's charon sees (swanctl --list-sas) and what
the hosts see (ping).

Addresses: gateways take the public pool 198.19.X.0/24 from the bottom, customer gateways sit at
.200 and up; the private pool 10.Y.0.0/24 is also every connection's LocalSubnet (VPC hosts at
.250 and down); customer LANs are 10.(Y+100).N.0/24. Nothing leaves the lab's namespaces.

These tests need root, network namespaces and strongSwan (scripts/test.sh installs it when it
runs as root). Elsewhere they are skipped, loudly; with GATEHOUSE_REQUIRE_DATAPLANE=1 (set by
scripts/test.sh after it installed the packages) a machine that cannot run them fails instead.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import support
from lab import (Capture, Charon, Lab, machine_problem, netns_list, parse_pretty, pid_alive, pid_namespaces, run,
                 skip_loudly)
from support import Creds, GatehouseServer, describe_gateway, items, make_api, vpc_id, vsw_id, wait_status

KIND = "classic"  # one SDK is enough here: these tests are about the data plane, and slow

GATEWAY_READY = 30.0    # CreateVpnGateway → active, namespace and charon up
APPLY = 30.0            # a connection change → gateway active again
UP = 20.0               # configuration loaded → tunnel up
STATUS_WITHIN = 1.5     # the contract's "about a second", plus polling and API latency
DPD_DEADLINE = 45.0     # a dead peer is declared within ~30 s (DPD delay + retransmissions), plus slack
RESTART_DEADLINE = 30.0
POLL = 0.05

ESTABLISHED = "ipsec_sa_established"
NOT_ESTABLISHED = "ike_sa_not_established"


# ----------------------------------------------------------------------------- helpers


def until(fn: Callable[[], Any], timeout: float, what: str, diag: Callable[[], str] | None = None,
          interval: float = POLL) -> Any:
    """Poll ``fn`` until it returns something truthy; AssertionError (with diagnostics) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {what}; last value: {last!r}"
            if diag is not None:
                msg += "\n" + diag()
            raise AssertionError(msg)
        time.sleep(interval)


def holds(fn: Callable[[], Any], seconds: float, interval: float = 0.1) -> bool:
    """True if ``fn`` stays truthy for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not fn():
            return False
        time.sleep(interval)
    return True


def tail(path: Path, n: int = 2500) -> str:
    try:
        return path.read_text("utf-8", "replace")[-n:]
    except OSError:
        return "<none>"


@dataclass
class PeerTunnel:
    """One `connections` entry of a peer-config: its IKE name, child names and addresses."""

    name: str
    children: list[str]
    local_addrs: str
    remote_addrs: str


def peer_tunnels(conf: str) -> list[PeerTunnel]:
    out = []
    for msg, tree in parse_pretty(conf):
        if msg != "connections":
            continue
        for name, c in tree.items():
            if isinstance(c, dict):
                out.append(PeerTunnel(name, list((c.get("children") or {}).keys()), c.get("local_addrs", ""),
                                      c.get("remote_addrs", "")))
    assert out, f"peer-config has no connections:\n{conf}"
    return out


class LiveApi:
    """The classic SDK client of one account, following the server across restarts (new port)."""

    kind = KIND

    def __init__(self, server: GatehouseServer, creds: Creds):
        self.server, self.creds = server, creds
        self._endpoint: str | None = None
        self._api: Any = None

    def call(self, action: str, params: dict | None = None) -> dict:
        if self._endpoint != self.server.endpoint:
            self._api = make_api(KIND, self.server.endpoint, self.creds)
            self._endpoint = self.server.endpoint
        return self._api.call(action, params)


# ----------------------------------------------------------------------------- the site (module)




class Site:
    """Gatehouse with --dataplane netns, its bridges and address plan (one per test module)."""

    def __init__(self, lab: Lab, logs: Path):
        self.lab = lab
        self.logs = logs
        x = int(lab.hex, 16) % 250 + 2
        y = random.randint(10, 99)
        self.public_pool = f"198.19.{x}.0/24"
        self.private_pool = f"10.{y}.0.0/24"
        self.local_subnet = self.private_pool     # the VPC side of every connection
        self.plen = 24
        self._customer_ip = iter(range(200, 255))
        self._vpc_host = iter(range(249, 200, -1))
        self.shared_vpc_host_ip = f"10.{y}.0.250"  # used only by the two-account test, in both VPCs
        self._lan = iter(range(1, 250))
        self._lan_prefix = f"10.{y + 100}"
        self.uplink = lab.bridge("u")
        self.vpcs = {"a": (vpc_id(), lab.bridge("a")), "b": (vpc_id(), lab.bridge("b"))}
        self.data_dir = lab.dir / "d"              # short: charon.vici lives below it
        args = ["--dataplane", "netns", "--uplink-bridge", self.uplink, "--netns-prefix", lab.prefix,
                "--public-pool", self.public_pool, "--private-pool", self.private_pool,
                "--transition-delay-ms", "0"]
        for vid, br in self.vpcs.values():
            args += ["--vpc-bridge", f"{vid}={br}"]
        self.server = GatehouseServer(self.data_dir, args, name="netns")
        self.root = Creds(support.ROOT_AK, support.ROOT_SECRET, "root")

    # -- addresses -----------------------------------------------------------------

    def customer_ip(self) -> str:
        return self.public_pool.rsplit(".", 1)[0] + f".{next(self._customer_ip)}"

    def vpc_host_ip(self) -> str:
        return self.private_pool.rsplit(".", 1)[0] + f".{next(self._vpc_host)}"

    def customer_lan(self) -> str:
        return f"{self._lan_prefix}.{next(self._lan)}.0/24"

    # -- Gatehouse's side ------------------------------------------------------------

    def api(self, creds: Creds | None = None) -> LiveApi:
        return LiveApi(self.server, creds or self.root)

    def netns_of(self, gw_id: str) -> str:
        return f"{self.lab.prefix}{gw_id}"

    def dataplane_dir(self, gw_id: str) -> Path:
        return self.data_dir / "dataplane" / gw_id

    def charon_pid(self, gw_id: str) -> int | None:
        try:
            return int((self.dataplane_dir(gw_id) / "charon.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def live_charon_pid(self, gw_id: str) -> int | None:
        """charon.pid's PID if it is alive inside the gateway's namespace."""
        pid = self.charon_pid(gw_id)
        if pid and pid_alive(pid) and self.netns_of(gw_id) in pid_namespaces(pid):
            return pid
        return None

    def peer_config(self, vco: str, account: str = "root") -> str:
        return self.server.cli("peer-config", vco, "--account", account).stdout

    def keep_gateway_log(self, gw_id: str) -> None:
        """Copy the gateway's charon.log aside (Gatehouse may remove its directory with the gateway)."""
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.dataplane_dir(gw_id) / "charon.log", self.logs / f"{gw_id}.charon.log")
        except OSError:
            pass

    def save_logs(self) -> None:
        """Copy logs and configurations (no sockets) out of the lab's /tmp directory."""
        def ignore(d, names):
            return [n for n in names if not (Path(d, n).is_dir() or n.endswith((".log", ".out", ".conf", ".pid")))]
        try:
            shutil.copytree(self.lab.dir, self.logs, ignore=ignore, dirs_exist_ok=True)
        except Exception:
            pass


def running_site(request, tmp_path_factory, what: str, needs: str, problem: str | None):
    """A gateway-mode Site for a module's tests (a generator for a fixture to `yield from`):
    skipped loudly when the machine has a `problem` (see `lab.skip_loudly`), its lab removed and
    its logs kept at the end."""
    if problem is not None:
        skip_loudly(request, what, problem, needs)
    logs = tmp_path_factory.mktemp(what.replace(" ", "-"))
    lab = Lab()
    s = None
    try:
        s = Site(lab, logs)
        s.server.start()
        yield s
    finally:
        if s is not None:
            s.server.stop()
            s.save_logs()
        problems = lab.cleanup()
        if problems:
            warnings.warn(f"lab cleanup: {problems}")


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    yield from running_site(request, tmp_path_factory, "gateway end-to-end tests",
                            "root, network namespaces and strongSwan (charon-systemd, swanctl)", machine_problem())


class Customer:
    """A customer site: a gateway namespace (one address per customer gateway on the uplink,
    ``lan0`` on its LAN bridge, its own charon) and a LAN host behind it."""

    def __init__(self, env: "Env", n_ips: int, lan: str | None, start: bool):
        site, scope = env.site, env.scope
        self.ips = [site.customer_ip() for _ in range(n_ips)]
        self.lan = lan or site.customer_lan()
        prefix = self.lan.split("/")[0].rsplit(".", 1)[0]
        self.lan_gw, self.host_ip = f"{prefix}.1", f"{prefix}.2"
        self.ns = scope.host("cu", forward=True)
        self.veths = [scope.attach(self.ns, site.uplink, f"{ip}/{site.plen}", f"eth{i}")
                      for i, ip in enumerate(self.ips)]
        if n_ips > 1:
            # Each customer gateway address answers ARP only on its own link and sends from it,
            # so that cutting one link cuts exactly that customer gateway.
            scope.sysctl(self.ns, {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2})
            for i, ip in enumerate(self.ips):
                scope.route(self.ns, site.public_pool, dev=f"eth{i}", src=ip, table=100 + i)
                scope.rule(self.ns, "from", ip, "lookup", 100 + i, "pref", 100)
        lanbr = scope.bridge()
        scope.attach(self.ns, lanbr, f"{self.lan_gw}/24", "lan0")
        self.host = scope.host("ch", lanbr, f"{self.host_ip}/24")
        scope.route(self.host, site.local_subnet, via=self.lan_gw)
        self.scope = scope
        self.charon: Charon | None = None
        if start:
            self.start()

    def start(self) -> Charon:
        self.charon = self.scope.charon(self.ns)
        return self.charon


@dataclass
class VpcHost:
    ns: str
    ip: str


class Env:
    """One test's share of the site: its gateways (deleted through the API at the end, reaped
    if Gatehouse left anything), customers and VPC hosts (removed with the test's lab scope)."""

    def __init__(self, site: Site):
        self.site = site
        self.scope = site.lab.scope()
        self.api = site.api()
        self.gateways: list[tuple[LiveApi, str]] = []
        self.customers: list[Customer] = []

    # -- building --------------------------------------------------------------------

    def gateway(self, api: LiveApi | None = None, vpc: str = "a", dual: bool = False) -> dict:
        api = api or self.api
        params: dict = {"VpcId": self.site.vpcs[vpc][0], "Bandwidth": 10}
        if dual:
            params["DisasterRecoveryVSwitchId"] = vsw_id()
        gw = api.call("CreateVpnGateway", params)["VpnGatewayId"]
        ns = self.site.netns_of(gw)
        self.gateways.append((api, gw))
        self.site.lab.adopt_gateway(ns, self.site.dataplane_dir(gw) / "charon.pid")
        wait_status(api, gw, "active", timeout=GATEWAY_READY)
        until(lambda: ns in netns_list(), 10, f"namespace {ns}", self.diag)
        until(lambda: self.site.live_charon_pid(gw), 10, f"the charon of {gw} (charon.pid, alive in {ns})",
              self.diag)
        d = describe_gateway(api, gw)
        assert d["InternetIp"] and d["IntranetIp"], d
        return d

    def customer(self, n_ips: int = 1, lan: str | None = None, start: bool = True) -> Customer:
        c = Customer(self, n_ips, lan, start)
        self.customers.append(c)
        return c

    def customer_gateway(self, ip: str, api: LiveApi | None = None) -> str:
        return (api or self.api).call("CreateCustomerGateway", {"IpAddress": ip})["CustomerGatewayId"]

    def vpc_host(self, gw: dict, remote: str, vpc: str = "a", ip: str | None = None) -> VpcHost:
        """A host in ``vpc`` whose route to ``remote`` (the customer's subnet) is the gateway's IntranetIp."""
        ip = ip or self.site.vpc_host_ip()
        ns = self.scope.host("vh", self.site.vpcs[vpc][1], f"{ip}/{self.site.plen}")
        self.scope.route(ns, remote, via=gw["IntranetIp"])
        return VpcHost(ns, ip)

    def connect(self, gw: dict, cgw: str, remote: str, *, api: LiveApi | None = None, effect: bool = True,
                ike: dict | None = None, ipsec: dict | None = None, **extra) -> str:
        api = api or self.api
        params: dict = {"VpnGatewayId": gw["VpnGatewayId"], "CustomerGatewayId": cgw,
                        "LocalSubnet": self.site.local_subnet, "RemoteSubnet": remote, "EffectImmediately": effect}
        if ike is not None:
            params["IkeConfig"] = json.dumps(ike)
        if ipsec is not None:
            params["IpsecConfig"] = json.dumps(ipsec)
        params.update(extra)
        vco = api.call("CreateVpnConnection", params)["VpnConnectionId"]
        wait_status(api, gw["VpnGatewayId"], "active", timeout=APPLY)
        return vco

    def connect_dual(self, gw: dict, cust: "Customer", *, effect: bool = True, ike: dict | None = None,
                     ipsec: dict | None = None, psks: tuple[str, str] = ("master-Psk-1", "slave-Psk-2")) -> str:
        """A dual-tunnel connection: master to the customer's first address, slave to its second."""
        tunnels = []
        for role, ip, psk in zip(("master", "slave"), cust.ips, psks):
            t: dict = {"Role": role, "CustomerGatewayId": self.customer_gateway(ip),
                       "TunnelIkeConfig": {**(ike or {}), "Psk": psk}}
            if ipsec:
                t["TunnelIpsecConfig"] = dict(ipsec)
            tunnels.append(t)
        vco = self.api.call("CreateVpnConnection", {
            "VpnGatewayId": gw["VpnGatewayId"], "LocalSubnet": self.site.local_subnet, "RemoteSubnet": cust.lan,
            "EffectImmediately": effect, "TunnelOptionsSpecification": tunnels})["VpnConnectionId"]
        wait_status(self.api, gw["VpnGatewayId"], "active", timeout=APPLY)
        return vco

    def site_pair(self, effect: bool = True, ike: dict | None = None, ipsec: dict | None = None,
                  start: bool = True, **extra):
        """The common shape: gateway in VPC a, one customer, a VPC host, a single-tunnel connection."""
        gw = self.gateway()
        cust = self.customer(start=start)
        vpc = self.vpc_host(gw, cust.lan)
        cgw = self.customer_gateway(cust.ips[0])
        vco = self.connect(gw, cgw, cust.lan, effect=effect, ike=ike, ipsec=ipsec, **extra)
        return gw, cust, vpc, vco

    # -- observing -------------------------------------------------------------------

    def describe(self, vco: str, api: LiveApi | None = None) -> dict:
        return (api or self.api).call("DescribeVpnConnection", {"VpnConnectionId": vco})

    def status(self, vco: str, api: LiveApi | None = None) -> str:
        return self.describe(vco, api)["Status"]

    def tunnel_status(self, vco: str, api: LiveApi | None = None) -> dict[str, str]:
        d = self.describe(vco, api)
        tunnels = (d.get("TunnelOptionsSpecification") or {}).get("TunnelOptions") or []
        assert len(tunnels) == 2, d
        return {t["Role"]: t["Status"] for t in tunnels}

    def wait_status(self, vco: str, want: str, timeout: float = UP, api: LiveApi | None = None) -> float:
        t0 = time.monotonic()
        until(lambda: self.status(vco, api) == want, timeout, f"{vco} Status {want}", self.diag)
        return time.monotonic() - t0

    def wait_ping(self, ns: str, dst: str, timeout: float = UP) -> float:
        t0 = time.monotonic()
        until(lambda: self.scope.ping(ns, dst, count=1, timeout=1.0), timeout, f"ping {ns} -> {dst}", self.diag,
              interval=0)
        return time.monotonic() - t0

    def ping_both_ways(self, cust: Customer, vpc: VpcHost, timeout: float = UP) -> None:
        self.wait_ping(cust.host, vpc.ip, timeout)
        self.wait_ping(vpc.ns, cust.host_ip, timeout)
        assert self.scope.ping(cust.host, vpc.ip, count=3, timeout=3), self.diag()
        assert self.scope.ping(vpc.ns, cust.host_ip, count=3, timeout=3), self.diag()

    def bring_up(self, cust: Customer, vco: str, account: str = "root", api: LiveApi | None = None) -> str:
        """Load the connection's peer-config, unchanged, into the customer's charon; wait for
        Status ipsec_sa_established. Returns the configuration."""
        conf = self.site.peer_config(vco, account)
        assert cust.charon is not None
        cust.charon.load(conf)
        tunnels = peer_tunnels(conf)
        for t in tunnels:
            try:
                cust.charon.wait_installed(t.name, timeout=UP)
            except AssertionError as e:
                raise AssertionError(f"{e}\n{self.diag()}") from None
        if len(tunnels) == 2:
            until(lambda: self.tunnel_status(vco, api) == {"master": ESTABLISHED, "slave": ESTABLISHED}, UP,
                  "both tunnels ipsec_sa_established", self.diag)
        else:
            self.wait_status(vco, ESTABLISHED, api=api)
        return conf

    def diag(self) -> str:
        parts = [f"--- gatehouse log ({self.site.server.log_path}):\n{self.site.server.log_tail(3000)}"]
        for _, gw in self.gateways:
            d = self.site.dataplane_dir(gw)
            parts.append(f"--- {gw} charon.log:\n{tail(d / 'charon.log')}")
        for c in self.customers:
            if c.charon is not None:
                parts.append(f"--- customer {c.ns} SAs: {c.charon.sas()}\n{c.charon.tail(2500)}")
        parts.append(f"(logs are copied to {self.site.logs} at the end of the module)")
        return "\n".join(parts)

    # -- teardown --------------------------------------------------------------------

    def delete_gateway(self, api: LiveApi, gw: str) -> None:
        body = api.call("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 50})
        for c in items(body, "VpnConnections", "VpnConnection"):
            wait_status(api, gw, "active", timeout=APPLY)
            api.call("DeleteVpnConnection", {"VpnConnectionId": c["VpnConnectionId"]})
        wait_status(api, gw, "active", timeout=APPLY)
        api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
        support.wait_gone(api, gw, timeout=GATEWAY_READY)

    def close(self) -> list[str]:
        problems = []
        for api, gw in reversed(self.gateways):
            ns = self.site.netns_of(gw)
            self.site.keep_gateway_log(gw)
            try:
                if self.site.server.alive() and support.gateway_status(api, gw) is not None:
                    self.delete_gateway(api, gw)
                    until(lambda: ns not in netns_list(), 10, f"{ns} to be removed by Gatehouse")
            except Exception as e:
                problems.append(f"{gw}: {e}")
            done = self.site.lab.reap_gateway(ns, self.site.dataplane_dir(gw) / "charon.pid")
            if done:
                problems.append(f"Gatehouse left {ns} behind: {done}")
        problems += self.scope.cleanup()
        return problems


@pytest.fixture
def env(site):
    e = Env(site)
    try:
        yield e
    finally:
        problems = e.close()
        if problems:
            warnings.warn(f"gateway test teardown: {problems}")


# ----------------------------------------------------------------------------- a. single tunnel IKEv2


def test_single_tunnel_ikev2_up_and_ping(env):
    """EffectImmediately=true, IKEv2, everything else default; the customer runs peer-config as is."""
    gw, cust, vpc, vco = env.site_pair(effect=True, ike={"IkeVersion": "ikev2"})
    gw_id, ns = gw["VpnGatewayId"], env.site.netns_of(gw["VpnGatewayId"])

    # The gateway's namespace as the contract describes it.
    addrs = {i["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in i.get("addr_info", []) if a["family"] == "inet"]
             for i in json.loads(run(["ip", "-n", ns, "-j", "addr", "show"]).stdout)}
    assert f"{gw['InternetIp']}/24" in addrs.get("pub0", []), addrs
    assert f"{gw['IntranetIp']}/24" in addrs.get("vpc0", []), addrs
    assert "pub1" not in addrs, addrs
    assert run(["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    d = env.site.dataplane_dir(gw_id)
    for f in ("strongswan.conf", "charon.vici", "charon.log", "charon.pid"):
        assert (d / f).exists(), f"{d / f} missing"

    conf = env.site.peer_config(vco)
    (t,) = peer_tunnels(conf)
    assert (t.name, t.local_addrs, t.remote_addrs) == (vco, cust.ips[0], gw["InternetIp"]), conf
    assert "start_action = start" in conf and "version = 2" in conf, conf

    env.bring_up(cust, vco)
    env.ping_both_ways(cust, vpc)
    sa = cust.charon.ike_sas(vco)[0]
    assert (sa["version"], sa["local-host"], sa["remote-host"]) == ("2", cust.ips[0], gw["InternetIp"]), sa

    # On the wire between the customer and the gateway: ESP (in UDP), never the plaintext ping.
    if shutil.which("tcpdump"):
        with Capture(cust.veths[0], "icmp or udp port 4500") as cap:
            assert env.scope.ping(cust.host, vpc.ip, count=3, timeout=3)
        icmp = [line for line in cap.lines if "ICMP" in line]
        esp = [line for line in cap.lines if "ESP" in line]
        assert not icmp, f"plaintext ICMP on the customer's uplink: {icmp}"
        assert len(esp) >= 6, f"no ESP-in-UDP for 3 pings: {cap.lines}"


# ----------------------------------------------------------------------------- b. IKEv1 and algorithms

ALG_NAMES = {"aes": ("AES_CBC", "128"), "aes192": ("AES_CBC", "192"), "aes256": ("AES_CBC", "256"),
             "3des": ("3DES_CBC", None), "md5": "HMAC_MD5_96", "sha1": "HMAC_SHA1_96",
             "sha256": "HMAC_SHA2_256_128", "sha512": "HMAC_SHA2_512_256", "group2": "MODP_1024",
             "group5": "MODP_1536", "group14": "MODP_2048", "des": ("DES_CBC", None), "group1": "MODP_768",
             "sha384": "HMAC_SHA2_384_192"}


def _v1(enc, auth, pfs, mode="main"):
    return {"IkeVersion": "ikev1", "IkeMode": mode, "IkeEncAlg": enc, "IkeAuthAlg": auth, "IkePfs": pfs}


def _esp(enc, auth, pfs):
    return {"IpsecEncAlg": enc, "IpsecAuthAlg": auth, "IpsecPfs": pfs}


ALGORITHM_CASES = [
    pytest.param(_v1("aes", "sha1", "group2"), _esp("aes", "sha1", "group2"), {}, id="aes-sha1-group2"),
    # sha256 and sha512 (as the newest seed lists them) in a single-tunnel IkeConfig and IpsecConfig.
    pytest.param(_v1("aes256", "sha256", "group14"), _esp("aes256", "sha256", "group14"), {}, id="aes256-sha256-group14"),
    pytest.param(_v1("3des", "md5", "group5"), _esp("3des", "md5", "group5"), {}, id="3des-md5-group5"),
    pytest.param(_v1("aes192", "sha512", "group14"), _esp("aes192", "sha512", "group14"), {}, id="aes192-sha512-group14"),
    pytest.param(_v1("des", "md5", "group1"), _esp("des", "sha1", "group1"), {}, id="des-md5-group1"),
    # IpsecPfs=disabled exists only in the tunnels of a dual-tunnel connection (a single-tunnel
    # one gets NotSupportVpnConnectionParameter.IpsecPfs), so this case runs dual-tunnel.
    pytest.param(_v1("aes", "sha1", "group2"), _esp("aes", "sha256", "disabled"), {"dual": True},
                 id="ipsec-pfs-disabled-dual-tunnel"),
    pytest.param(_v1("aes", "sha1", "group2", mode="aggressive"), _esp("aes", "sha1", "group2"), {},
                 id="aggressive-mode"),
    # Without NAT traversal the customer's config has no `encap = yes`; a libipsec gateway must
    # still get ESP into UDP (it forces encapsulation on its side).
    pytest.param(_v1("aes", "md5", "group2"), _esp("aes", "md5", "group2"), {"EnableNatTraversal": False},
                 id="nat-traversal-off"),
]


def check_negotiated(sa: dict, ike: dict, ipsec: dict) -> None:
    """The customer's IKE SA and its CHILD_SA use exactly the configured algorithms."""
    assert sa["version"] == ("1" if ike["IkeVersion"] == "ikev1" else "2"), sa
    enc, keysize = ALG_NAMES[ike["IkeEncAlg"]]
    assert sa["encr-alg"] == enc and (keysize is None or sa.get("encr-keysize") == keysize), sa
    assert sa["integ-alg"] == ALG_NAMES[ike["IkeAuthAlg"]], sa
    assert sa["dh-group"] == ALG_NAMES[ike["IkePfs"]], sa
    child = next(c for c in sa["children"] if c.get("state") == "INSTALLED")
    enc, keysize = ALG_NAMES[ipsec["IpsecEncAlg"]]
    assert child["encr-alg"] == enc and (keysize is None or child.get("encr-keysize") == keysize), child
    assert child["integ-alg"] == ALG_NAMES[ipsec["IpsecAuthAlg"]], child
    if ipsec["IpsecPfs"] == "disabled":
        assert "dh-group" not in child, child
    elif ike["IkeVersion"] == "ikev2":
        pass  # IKEv2's first CHILD_SA comes with IKE_AUTH, without a DH exchange (PFS shows at a rekey)
    else:  # IKEv1 negotiates PFS in quick mode, so the group shows at once
        assert child.get("dh-group") == ALG_NAMES[ipsec["IpsecPfs"]], child
    assert child.get("encap") == "yes", child  # libipsec: ESP in UDP


@pytest.mark.parametrize("ike,ipsec,extra", ALGORITHM_CASES)
def test_ikev1_algorithms(env, ike, ipsec, extra):
    extra = dict(extra)
    if extra.pop("dual", False):
        gw = env.gateway(dual=True)
        cust = env.customer(n_ips=2)
        vpc = env.vpc_host(gw, cust.lan)
        vco = env.connect_dual(gw, cust, ike=ike, ipsec=ipsec)
    else:
        gw, cust, vpc, vco = env.site_pair(effect=True, ike=ike, ipsec=ipsec, **extra)
    conf = env.bring_up(cust, vco)
    assert "version = 1" in conf, conf
    env.ping_both_ways(cust, vpc)
    for t in peer_tunnels(conf):
        sa = next(s for s in cust.charon.ike_sas(t.name) if any(c.get("state") == "INSTALLED" for c in s["children"]))
        check_negotiated(sa, ike, ipsec)


def test_ikev2_fqdn_identities_and_sha384(env):
    """IKEv2 with LocalId/RemoteId as FQDNs (the customer's config names them the other way round)."""
    ike = {"IkeVersion": "ikev2", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha384", "IkePfs": "group14",
           "LocalId": "gw.gatehouse.example", "RemoteId": "branch.customer.example"}
    ipsec = _esp("aes", "sha384", "group14")
    gw, cust, vpc, vco = env.site_pair(effect=True, ike=ike, ipsec=ipsec)
    conf = env.bring_up(cust, vco)
    assert "version = 2" in conf and "branch.customer.example" in conf, conf
    env.ping_both_ways(cust, vpc)
    (t,) = peer_tunnels(conf)
    sa = next(s for s in cust.charon.ike_sas(t.name) if s.get("state") == "ESTABLISHED")
    assert (sa["local-id"], sa["remote-id"]) == ("branch.customer.example", "gw.gatehouse.example"), sa
    check_negotiated(sa, ike, ipsec)


# ----------------------------------------------------------------------------- c. EffectImmediately=false


def test_effect_immediately_false_waits_for_traffic(env):
    """Negotiation on traffic. NB: with kernel-libipsec strongSwan 5.9 raises no acquire for a trap
    policy (it logs "could not find an outbound IPsec SA for reqid {N}, dropping packet"), so a
    libipsec gateway has to notice such traffic itself and initiate."""
    gw, cust, vpc, vco = env.site_pair(effect=False, ike={"IkeVersion": "ikev2"}, start=False)
    # Nothing negotiates: the gateway waits for traffic, and the customer's side is not running yet.
    assert holds(lambda: env.status(vco) == NOT_ESTABLISHED, 1.5), env.describe(vco)

    # peer-config says start_action = start, so the customer initiates as soon as it loads the
    # configuration (used unchanged, as a customer would): that brings the tunnel up.
    cust.start()
    env.bring_up(cust, vco)
    env.ping_both_ways(cust, vpc)

    # The customer hangs up; the gateway does not call back on its own ...
    cust.charon.terminate(vco)
    env.wait_status(vco, NOT_ESTABLISHED, timeout=5)
    assert holds(lambda: not cust.charon.installed(), 2.0), cust.charon.sas()
    # ... but traffic from the VPC makes it negotiate (trap policy).
    took = env.wait_ping(vpc.ns, cust.host_ip, timeout=UP)
    env.wait_status(vco, ESTABLISHED, timeout=5)
    assert cust.charon.installed(vco), cust.charon.sas()
    assert env.scope.ping(cust.host, vpc.ip, count=3, timeout=3), env.diag()
    print(f"traffic-triggered negotiation: first reply after {took:.2f}s")


# ----------------------------------------------------------------------------- d. status follows charon


def test_status_follows_the_tunnel_within_a_second(env):
    # EffectImmediately=false: the gateway never calls back by itself, so each change below is
    # the customer's doing and the reported status must follow it.
    gw, cust, vpc, vco = env.site_pair(effect=False, ike={"IkeVersion": "ikev2"})
    conf = env.site.peer_config(vco)
    (t,) = peer_tunnels(conf)
    assert env.status(vco) == NOT_ESTABLISHED

    def up_lag() -> float:
        until(lambda: cust.charon.installed(t.name), UP, "the customer's CHILD_SA", env.diag, interval=0.02)
        t0 = time.monotonic()
        until(lambda: env.status(vco) == ESTABLISHED, STATUS_WITHIN + 5, "Status up", env.diag, interval=0.02)
        return time.monotonic() - t0

    def down_lag() -> float:
        r = cust.charon.terminate(t.name)
        assert r.returncode == 0, r.stdout + r.stderr
        t0 = time.monotonic()
        until(lambda: env.status(vco) == NOT_ESTABLISHED, STATUS_WITHIN + 5, "Status down", env.diag, interval=0.02)
        return time.monotonic() - t0

    cust.charon.load(conf)                 # start_action = start: the customer initiates
    lags = [("up", up_lag()), ("down", down_lag())]
    r = cust.charon.initiate(t.children[0])
    assert r.returncode == 0, r.stdout + r.stderr
    lags += [("up again", up_lag()), ("down again", down_lag())]
    slow = [(what, round(lag, 2)) for what, lag in lags if lag > STATUS_WITHIN]
    assert not slow, f"Status lagged behind the tunnel by more than {STATUS_WITHIN}s: {lags}"


# ----------------------------------------------------------------------------- e. PSK change


def test_psk_change(env):
    gw, cust, vpc, vco = env.site_pair(effect=True, ike={"IkeVersion": "ikev2", "Psk": "first-Psk-1"})
    old_conf = env.bring_up(cust, vco)
    assert '"first-Psk-1"' in old_conf
    env.ping_both_ways(cust, vpc)
    (t,) = peer_tunnels(old_conf)

    env.api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "EffectImmediately": True,
                                                  "IkeConfig": json.dumps({"Psk": "second-Psk-2"})})
    wait_status(env.api, gw["VpnGatewayId"], "active", timeout=APPLY)
    new_conf = env.site.peer_config(vco)
    assert '"second-Psk-2"' in new_conf and "first-Psk-1" not in new_conf, new_conf

    # With the old key a fresh negotiation fails.
    cust.charon.terminate(t.name)
    r = cust.charon.initiate(t.children[0], timeout=10)
    assert r.returncode != 0, f"negotiation with the old PSK succeeded:\n{r.stdout}"
    assert not cust.charon.installed(t.name), cust.charon.sas()
    env.wait_status(vco, NOT_ESTABLISHED, timeout=5)
    assert not env.scope.ping(cust.host, vpc.ip, timeout=1)

    # The customer installs the new peer-config (only its secret changed, so loading it does not
    # initiate by itself): the tunnel comes back, by the customer's or the gateway's initiative.
    cust.charon.load(new_conf)
    if not cust.charon.installed(t.name):
        cust.charon.initiate(t.children[0], timeout=10)  # may lose a race with the gateway's own
    cust.charon.wait_installed(t.name, timeout=UP)
    env.wait_status(vco, ESTABLISHED)
    env.ping_both_ways(cust, vpc)


# ----------------------------------------------------------------------------- f. deletes


def test_delete_connection_then_gateway(env):
    gw, cust, vpc, vco = env.site_pair(effect=True, ike={"IkeVersion": "ikev2"})
    gw_id, ns = gw["VpnGatewayId"], env.site.netns_of(gw["VpnGatewayId"])
    env.bring_up(cust, vco)
    env.ping_both_ways(cust, vpc)

    env.api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    wait_status(env.api, gw_id, "active", timeout=APPLY)
    until(lambda: not cust.charon.sas(), 10, "the customer's SAs to be deleted by the gateway", env.diag)
    assert not env.scope.ping(cust.host, vpc.ip, timeout=1)
    assert not env.scope.ping(vpc.ns, cust.host_ip, timeout=1)

    pid = env.site.live_charon_pid(gw_id)
    assert pid, "the gateway's charon should still run (the gateway is still there)"
    env.api.call("DeleteVpnGateway", {"VpnGatewayId": gw_id})
    support.wait_gone(env.api, gw_id, timeout=GATEWAY_READY)
    until(lambda: ns not in netns_list(), 10, f"{ns} to disappear from `ip netns list`", env.diag)
    until(lambda: not pid_alive(pid), 10, f"the gateway's charon (pid {pid}) to stop", env.diag)


# ----------------------------------------------------------------------------- g. two accounts


def test_two_accounts_with_the_same_subnets(env):
    site = env.site
    other = site.server.create_account()
    api2 = site.api(other)
    lan = site.customer_lan()                  # the same customer subnet on both sides, too
    gw1 = env.gateway(vpc="a")
    gw2 = env.gateway(api2, vpc="b")
    c1, c2 = env.customer(lan=lan), env.customer(lan=lan)
    ip = site.shared_vpc_host_ip
    h1 = env.vpc_host(gw1, lan, vpc="a", ip=ip)
    h2 = env.vpc_host(gw2, lan, vpc="b", ip=ip)
    vco1 = env.connect(gw1, env.customer_gateway(c1.ips[0]), lan, ike={"IkeVersion": "ikev2"})
    vco2 = env.connect(gw2, env.customer_gateway(c2.ips[0], api2), lan, api=api2, ike={"IkeVersion": "ikev2"})
    assert env.describe(vco1)["LocalSubnet"] == env.describe(vco2, api2)["LocalSubnet"] == site.local_subnet

    env.bring_up(c1, vco1)
    env.bring_up(c2, vco2, account=other.account, api=api2)
    for cust, mine, theirs in ((c1, h1, h2), (c2, h2, h1)):
        env.wait_ping(cust.host, ip)
        before = (env.scope.icmp_echos_in(mine.ns), env.scope.icmp_echos_in(theirs.ns))
        assert env.scope.ping(cust.host, ip, count=4, timeout=4), env.diag()
        after = (env.scope.icmp_echos_in(mine.ns), env.scope.icmp_echos_in(theirs.ns))
        assert after[0] - before[0] >= 4 and after[1] == before[1], \
            f"{cust.ns}'s pings must reach its own VPC host only: echo requests mine/theirs {before} -> {after}"
        env.wait_ping(mine.ns, cust.host_ip)
    assert env.status(vco1) == ESTABLISHED and env.status(vco2, api2) == ESTABLISHED


# ----------------------------------------------------------------------------- h. dual tunnel


@pytest.mark.timeout(240)
def test_dual_tunnel_master_path_cut(env):
    gw = env.gateway(dual=True)
    gw_id, ns = gw["VpnGatewayId"], env.site.netns_of(gw["VpnGatewayId"])
    dr_ip = gw.get("DisasterRecoveryInternetIp")
    assert dr_ip and dr_ip != gw["InternetIp"], gw
    cust = env.customer(n_ips=2)               # eth0: the master's customer gateway, eth1: the slave's
    vpc = env.vpc_host(gw, cust.lan)

    addrs = {i["ifname"]: [a["local"] for a in i.get("addr_info", []) if a["family"] == "inet"]
             for i in json.loads(run(["ip", "-n", ns, "-j", "addr", "show"]).stdout)}
    assert addrs.get("pub0") == [gw["InternetIp"]] and addrs.get("pub1") == [dr_ip], addrs

    vco = env.connect_dual(gw, cust, ike={"IkeVersion": "ikev2"})
    conf = env.site.peer_config(vco)
    by_addr = {t.local_addrs: t for t in peer_tunnels(conf)}
    master, slave = by_addr[cust.ips[0]], by_addr[cust.ips[1]]
    assert (master.remote_addrs, slave.remote_addrs) == (gw["InternetIp"], dr_ip), conf
    env.bring_up(cust, vco)
    env.ping_both_ways(cust, vpc)

    # Cut the master's customer gateway off the uplink. Dead peer detection ends the master's
    # SAs on both sides; traffic then flows through the slave (both tunnels carry the same
    # selectors, so whichever SA is left carries it).
    env.scope.link_down(cust.veths[0])
    t0 = time.monotonic()
    seen = []

    def failed_over():
        st = env.tunnel_status(vco)
        if not seen or seen[-1][1] != st:
            seen.append((round(time.monotonic() - t0, 1), st))
        return st["master"] != ESTABLISHED and st["slave"] == ESTABLISHED

    until(failed_over, DPD_DEADLINE, "the master tunnel to fall (DPD) while the slave stays up", env.diag,
          interval=0.2)
    env.wait_ping(cust.host, vpc.ip, timeout=DPD_DEADLINE)
    before = {c["ike"]: int(c.get("packets-in", 0)) for c in cust.charon.installed()}
    assert env.scope.ping(cust.host, vpc.ip, count=4, timeout=4), env.diag()
    assert env.scope.ping(vpc.ns, cust.host_ip, count=4, timeout=4), env.diag()
    after = {c["ike"]: int(c.get("packets-in", 0)) for c in cust.charon.installed()}
    assert slave.name in after and after[slave.name] - before.get(slave.name, 0) >= 8, (before, after)
    # The customer's own DPD (peer-config's dpd_delay) ends its side of the master too.
    until(lambda: not cust.charon.installed(master.name), DPD_DEADLINE, "the customer's master CHILD_SA to go",
          env.diag, interval=0.2)
    print(f"status changes after the cut: {seen}")


# ----------------------------------------------------------------------------- i. charon killed


@pytest.mark.timeout(180)
def test_gateway_charon_killed_is_restarted(env):
    gw, cust, vpc, vco = env.site_pair(effect=True, ike={"IkeVersion": "ikev2"})
    gw_id, ns = gw["VpnGatewayId"], env.site.netns_of(gw["VpnGatewayId"])
    conf = env.bring_up(cust, vco)
    (t,) = peer_tunnels(conf)
    env.ping_both_ways(cust, vpc)
    old_ids = {s["uniqueid"] for s in cust.charon.ike_sas(t.name)}
    pid = env.site.live_charon_pid(gw_id)
    assert pid, "no live charon.pid"

    # Cut the customer off first, so that no renegotiation can succeed until the link is back:
    # the fall of the status then stays observable however fast Gatehouse restarts charon.
    env.scope.link_down(cust.veths[0])
    assert env.scope.signal_pid(pid, signal.SIGKILL, {ns}), f"pid {pid} not in {ns}"
    until(lambda: not pid_alive(pid), 5, f"pid {pid} to die")
    until(lambda: env.status(vco) != ESTABLISHED, 10, "Status to fall after charon died", env.diag)

    def restarted():
        p = env.site.live_charon_pid(gw_id)
        return p if p and p != pid else None

    new_pid = until(restarted, RESTART_DEADLINE, "Gatehouse to restart the gateway's charon", env.diag)
    # The new charon must have the connection and its PSK again: with the link back, the
    # customer's negotiation (or the gateway's own) succeeds.
    env.scope.link_up(cust.veths[0])

    def new_sas():
        return {s["uniqueid"] for s in cust.charon.ike_sas(t.name)} - old_ids

    if holds(lambda: not new_sas(), 1.0):  # the gateway has not called back (yet): the customer calls
        cust.charon.initiate(t.children[0], timeout=10)
    until(lambda: new_sas() and cust.charon.installed(t.name), RESTART_DEADLINE,
          "a new IKE SA with the restarted charon", env.diag)
    env.wait_status(vco, ESTABLISHED, timeout=RESTART_DEADLINE)
    env.ping_both_ways(cust, vpc, timeout=RESTART_DEADLINE)
    assert env.site.live_charon_pid(gw_id) == new_pid


# ----------------------------------------------------------------------------- j. Gatehouse kill -9


@pytest.mark.timeout(180)
def test_health_check_probes_and_routes_in_the_namespace(env):
    """HealthCheckConfig sends real probes through the tunnel; routes are programmed in the
    gateway's namespace with their weight as the metric."""
    sip = env.site.vpc_host_ip()  # an unused address of the VPC side
    gw, cust, vpc, vco = env.site_pair(effect=True, start=True)
    gw_id = gw["VpnGatewayId"]
    env.bring_up(cust, vco)
    echos = env.scope.icmp_echos_in(cust.host)
    check = {"enable": True, "sip": sip, "dip": cust.host_ip, "interval": 1, "retry": 2}
    env.api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "HealthCheckConfig": json.dumps(check)})
    wait_status(env.api, gw_id, "active", timeout=APPLY)
    health = lambda: env.describe(vco)["VcoHealthCheck"]["Status"]  # noqa: E731
    until(lambda: health() == "success", 15, "health check success", env.diag)
    # The probes really cross the tunnel: the customer's host sees them.
    assert env.scope.icmp_echos_in(cust.host) > echos, env.diag()

    for dest, weight in (("10.251.0.0/24", 100), ("10.252.0.0/24", 0)):
        env.api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw_id, "RouteDest": dest, "NextHop": vco,
                                             "Weight": weight, "PublishVpc": False})
        wait_status(env.api, gw_id, "active", timeout=APPLY)
    routes = env.scope.exec(env.site.netns_of(gw_id), "ip", "route", "show", "proto", "static").stdout
    assert re.search(r"10\.251\.0\.0/24 dev \S+ .*metric 1\b", routes), routes
    assert re.search(r"10\.252\.0\.0/24 dev \S+ .*metric 101\b", routes), routes

    # The customer's side goes away: probes are lost and the check fails after `retry` of them;
    # once DPD declares the peer dead, the routes through the connection are withdrawn.
    ns = env.site.netns_of(gw_id)
    static = lambda: env.scope.exec(ns, "ip", "route", "show", "proto", "static").stdout  # noqa: E731
    env.scope.link_down(cust.veths[0])
    try:
        until(lambda: health() == "failed", 20, "health check failed", env.diag)
        until(lambda: env.status(vco) != ESTABLISHED, 30, "the tunnel down (DPD)", env.diag)
        until(lambda: "10.251.0.0/24" not in static(), 5, "routes through the dead tunnel withdrawn", env.diag)
    finally:
        env.scope.link_up(cust.veths[0])
    until(lambda: health() == "success", UP, "health check success again", env.diag)
    env.wait_status(vco, ESTABLISHED)
    until(lambda: "10.251.0.0/24" in static() and "10.252.0.0/24" in static(), 5, "routes back", env.diag)


def test_gatehouse_kill9_keeps_tunnels_up(env):
    """Last in this module: it restarts the module's server."""
    # Left over from a gateway the store does not know: removed when Gatehouse starts.
    leftover = env.site.netns_of("vpn-leftover0000000000000")
    env.site.lab.adopt_gateway(leftover)
    subprocess.run(["ip", "netns", "add", leftover], check=True, timeout=10)
    gw, cust, vpc, vco = env.site_pair(effect=True, ike={"IkeVersion": "ikev2"})
    gw_id = gw["VpnGatewayId"]
    conf = env.bring_up(cust, vco)
    (t,) = peer_tunnels(conf)
    env.ping_both_ways(cust, vpc)
    ids = {s["uniqueid"] for s in cust.charon.ike_sas(t.name)}
    pid = env.site.live_charon_pid(gw_id)
    assert pid

    # A steady ping from the VPC host across the crash and the restart (bounded: 15 s).
    pinger = subprocess.Popen(["ip", "netns", "exec", vpc.ns, "ping", "-n", "-i", "0.2", "-w", "15", cust.host_ip],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)  # a few replies before the crash
        env.site.server.kill9()
        assert env.site.live_charon_pid(gw_id) == pid, "the gateway's charon must outlive Gatehouse"
        assert env.scope.ping(cust.host, vpc.ip, count=2, timeout=2), "tunnel down while Gatehouse is dead"
        env.site.server.start()   # same data dir, same arguments
        assert holds(lambda: env.status(vco) == ESTABLISHED, 3.0), env.describe(vco)
        out, _ = pinger.communicate(timeout=30)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait(5)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    sent, got = int(m.group(1)), int(m.group(2))
    assert sent >= 20 and sent - got <= 2, f"pings lost across the restart: {sent - got} of {sent}\n{out[-600:]}"

    assert {s["uniqueid"] for s in cust.charon.ike_sas(t.name)} == ids, cust.charon.sas()
    assert env.site.live_charon_pid(gw_id) == pid
    assert env.status(vco) == ESTABLISHED
    env.ping_both_ways(cust, vpc)
    until(lambda: leftover not in netns_list(), 10, f"the leftover namespace {leftover} to be removed", env.diag)
    assert env.site.netns_of(gw_id) in netns_list()
