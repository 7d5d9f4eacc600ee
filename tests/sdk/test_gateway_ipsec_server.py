"""The IPsec server end to end: `gatehouse serve --dataplane netns` runs it in the gateway's charon,
and stock strongSwan roadwarrior clients connect to it, get virtual IPs and send real packets.

    roadwarrior client(s) ── uplink bridge ── pub0 (InternetIp)   gateway namespace, charon:
    (own namespace, own charon,                                    connection `ipsec-server`,
     vips = 0.0.0.0)                         vpc0 (IntranetIp) ─── VPC bridge ── VPC host
                                                                   (route ClientIpPool via IntranetIp)

Each client is configured only from what the API hands out: ListIpsecServers' InternetIp, Psk,
IkeConfig (IkeVersion, algorithms, LocalId), IpsecConfig and LocalSubnet. The one local choice is
UDP encapsulation where the kernel has no ESP (kernel-libipsec: ESP-in-UDP only), as lab.py
arranges for every charon it starts.

The site (Gatehouse, bridges, address plan) and the per-test Env come from test_gateway_ipsec.py;
this module runs its own site. Like those tests these need root, namespaces and strongSwan:
elsewhere they are skipped loudly, and with GATEHOUSE_REQUIRE_DATAPLANE=1 they fail instead.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import time
import warnings
from dataclasses import dataclass

import pytest

import support
from lab import Capture, Charon, netns_list, run
from support import describe_gateway, wait_status
from test_gateway_ipsec import APPLY, GATEWAY_READY, Env, holds, site, tail, until  # noqa: F401  (site: fixture)

CLIENT_POOL = "10.250.0.0/24"
COUNT_WITHIN = 5.0        # OnlineClientCount follows charon's events: "within a few seconds"
UP = 15.0                 # a client's configuration loaded → CHILD_SA installed
REFUSED = 12.0            # a refused negotiation is answered at once; bounded anyway

# The API's algorithm names → strongSwan's (aes is AES-128-CBC; the DH groups are MODP groups).
ENC = {"aes": "aes128", "aes192": "aes192", "aes256": "aes256", "3des": "3des", "des": "des"}
INTEG = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
DH = {"group1": "modp768", "group2": "modp1024", "group5": "modp1536", "group14": "modp2048"}


def proposal(enc: str, auth: str, pfs: str) -> str:
    return f"{ENC[enc]}-{INTEG[auth]}-{DH[pfs]}"


# ----------------------------------------------------------------------------- clients


@dataclass
class Client:
    """A roadwarrior: its own namespace on the uplink (address ``ip``) and its own charon."""

    ns: str
    ip: str
    ident: str
    charon: Charon
    veth: str
    name: str = "rw"

    def conf(self, server: dict, *, psk: str | None = None, ike: str | None = None, esp: str | None = None,
             start: bool = True, encap: bool = True) -> str:
        """swanctl.conf from a ListIpsecServers entry (``psk``/``ike``/``esp`` override what it says)."""
        ikec, espc = server["IkeConfig"], server["IpsecConfig"]
        version = 1 if ikec.get("IkeVersion") == "ikev1" else 2
        ike = ike or proposal(ikec["IkeEncAlg"], ikec["IkeAuthAlg"], ikec["IkePfs"])
        esp = esp or proposal(espc["IpsecEncAlg"], espc["IpsecAuthAlg"], espc["IpsecPfs"])
        local_id = ikec.get("LocalId") or server["InternetIp"]
        # As hex: strongSwan would decode a secret that begins with 0x or 0s (any case).
        secret = server["Psk"] if psk is None else psk
        remote_ts = ",".join(s.strip() for s in server["LocalSubnet"].split(","))
        return f"""connections {{
  {self.name} {{
    version = {version}
    local_addrs = {self.ip}
    remote_addrs = {server["InternetIp"]}
    vips = 0.0.0.0
    proposals = {ike}
    encap = {"yes" if encap else "no"}
    local {{
      auth = psk
      id = {self.ident}
    }}
    remote {{
      auth = psk
      id = {local_id}
    }}
    children {{
      {self.name} {{
        remote_ts = {remote_ts}
        esp_proposals = {esp}
        start_action = {"start" if start else "none"}
      }}
    }}
  }}
}}
secrets {{
  ike-server {{
    id-1 = {local_id}
    secret = 0x{secret.encode().hex()}
  }}
}}
"""

    # -- state --------------------------------------------------------------------

    def sas(self) -> list[dict]:
        return self.charon.sas()

    def ike(self) -> dict | None:
        up = self.charon.ike_sas(self.name)
        return up[0] if up else None

    def vip(self) -> str | None:
        sa = self.ike()
        vips = (sa or {}).get("local-vips") or []
        return vips[0] if vips else None

    def installed(self) -> list[dict]:
        return self.charon.installed(self.name)

    def log_size(self) -> int:
        try:
            return self.charon.log.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.charon.log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class ServerEnv(Env):
    """Env plus a gateway with SSL-VPN enabled, its IPsec server and roadwarrior clients."""

    def __init__(self, site):
        super().__init__(site)
        self.clients: list[Client] = []
        self.encap = not site.lab.kernel_esp()

    # -- building --------------------------------------------------------------------

    def ssl_gateway(self, vpc: str = "a") -> dict:
        """An active gateway with EnableSsl=true in ``vpc`` (whose bridge the site configured)."""
        gw = self.api.call("CreateVpnGateway", {"VpcId": self.site.vpcs[vpc][0], "Bandwidth": 10,
                                                "EnableSsl": True})["VpnGatewayId"]
        ns = self.site.netns_of(gw)
        self.gateways.append((self.api, gw))
        self.site.lab.adopt_gateway(ns, self.site.dataplane_dir(gw) / "charon.pid")
        wait_status(self.api, gw, "active", timeout=GATEWAY_READY)
        until(lambda: ns in netns_list(), 10, f"namespace {ns}", self.diag)
        until(lambda: self.site.live_charon_pid(gw), 10, f"the charon of {gw}", self.diag)
        d = describe_gateway(self.api, gw)
        assert d["InternetIp"] and d["IntranetIp"], d
        return d

    def create_server(self, gw: dict, pool: str = CLIENT_POOL, **extra) -> dict:
        params = {"VpnGatewayId": gw["VpnGatewayId"], "LocalSubnet": self.site.local_subnet,
                  "ClientIpPool": pool, "EffectImmediately": False, **extra}
        self.api.call("CreateIpsecServer", params)
        wait_status(self.api, gw["VpnGatewayId"], "active", timeout=APPLY)
        return self.server(gw)

    def server(self, gw: dict) -> dict:
        body = self.api.call("ListIpsecServers", {"VpnGatewayId": gw["VpnGatewayId"]})
        servers = body.get("IpsecServers")
        assert isinstance(servers, list) and len(servers) == 1, body
        return servers[0]

    def servers(self, gw: dict) -> list[dict]:
        return self.api.call("ListIpsecServers", {"VpnGatewayId": gw["VpnGatewayId"]})["IpsecServers"]

    def update_server(self, gw: dict, iss: str, **params) -> dict:
        self.api.call("UpdateIpsecServer", {"IpsecServerId": iss, **params})
        wait_status(self.api, gw["VpnGatewayId"], "active", timeout=APPLY)
        return self.server(gw)

    def delete_server(self, gw: dict, iss: str) -> None:
        self.api.call("DeleteIpsecServer", {"IpsecServerId": iss})
        wait_status(self.api, gw["VpnGatewayId"], "active", timeout=APPLY)

    def client(self, ident: str) -> Client:
        ip = self.site.customer_ip()
        ns = self.scope.host("rw")
        veth = self.scope.attach(ns, self.site.uplink, f"{ip}/{self.site.plen}")
        c = Client(ns, ip, ident, self.scope.charon(ns), veth)
        self.clients.append(c)
        return c

    # -- acting ----------------------------------------------------------------------

    def load(self, c: Client, server: dict, **kw) -> str:
        conf = c.conf(server, encap=self.encap, **kw)
        c.charon.load(conf)
        return conf

    def connect(self, c: Client, server: dict, **kw) -> dict:
        """Loads the client's configuration (start_action = start) and waits for its CHILD_SA and
        virtual IP. A configuration whose connection did not change (a new secret only) does not
        start by itself: then the client initiates."""
        self.load(c, server, **kw)
        if holds(lambda: not c.installed(), 1.0):
            c.charon.initiate(c.name, timeout=10)
        try:
            c.charon.wait_installed(c.name, timeout=UP)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diag()}") from None
        until(c.vip, 5, f"a virtual IP on {c.ns}", self.diag)
        return c.ike()

    def refused(self, c: Client, server: dict, expect: str, **kw) -> str:
        """Loads a configuration that must not connect and initiates it; asserts the failure and
        that the client's log names ``expect`` (the notify the gateway answered). Returns the log."""
        self.load(c, server, start=False, **kw)
        mark = c.log_size()
        r = c.charon.initiate(c.name, timeout=REFUSED)
        log = c.log_since(mark)
        assert r.returncode != 0, f"{c.ns} connected though it must not:\n{r.stdout}\n{self.diag()}"
        assert not c.installed(), c.sas()
        assert expect in log, f"expected {expect} in {c.ns}'s log:\n{log[-3000:]}\n{r.stdout}{r.stderr}\n{self.diag()}"
        return log

    def wait_count(self, gw: dict, n: int, timeout: float = COUNT_WITHIN) -> float:
        t0 = time.monotonic()
        until(lambda: self.server(gw)["OnlineClientCount"] == n, timeout, f"OnlineClientCount {n}", self.diag,
              interval=0.1)
        return time.monotonic() - t0

    def gateway_swanctl(self, gw: dict, *args: str) -> str:
        sock = self.site.dataplane_dir(gw["VpnGatewayId"]) / "charon.vici"
        return run(["swanctl", *args, "--uri", f"unix://{sock}"], check=False, timeout=10).stdout

    def gateway_log(self, gw: dict) -> str:
        return tail(self.site.dataplane_dir(gw["VpnGatewayId"]) / "charon.log", 200000)

    # -- observing -------------------------------------------------------------------

    def diag(self) -> str:
        parts = [super().diag()]
        for _, gw in self.gateways:
            sas = self.gateway_swanctl({"VpnGatewayId": gw}, "--list-sas")
            parts.append(f"--- {gw} swanctl --list-sas:\n{sas[-4000:]}")
        for c in self.clients:
            parts.append(f"--- client {c.ns} ({c.ip}, {c.ident}) SAs: {c.sas()}\n{c.charon.tail(2500)}")
        return "\n".join(parts)

    def close(self) -> list[str]:
        problems = []
        for api, gw in self.gateways:
            try:
                if self.site.server.alive() and support.gateway_status(api, gw) is not None:
                    for s in api.call("ListIpsecServers", {"VpnGatewayId": gw})["IpsecServers"]:
                        wait_status(api, gw, "active", timeout=APPLY)
                        api.call("DeleteIpsecServer", {"IpsecServerId": s["IpsecServerId"]})
            except Exception as e:
                problems.append(f"{gw}: deleting its IPsec server: {e}")
        return problems + super().close()


@pytest.fixture
def env(site):
    e = ServerEnv(site)
    try:
        yield e
    finally:
        problems = e.close()
        if problems:
            warnings.warn(f"gateway IPsec server test teardown: {problems}")


def in_pool(ip: str | None, pool: str = CLIENT_POOL) -> bool:
    return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(pool)


# ----------------------------------------------------------------------------- 1 + 2. one client


def test_roadwarrior_gets_a_virtual_ip_and_reaches_the_vpc(env):
    """CreateIpsecServer with the defaults; a roadwarrior configured from ListIpsecServers gets a
    virtual IP from ClientIpPool, pings the VPC host and is pinged back; OnlineClientCount follows."""
    gw = env.ssl_gateway()
    vpc = env.vpc_host(gw, CLIENT_POOL)         # the VPC host's route for ClientIpPool via IntranetIp
    server = env.create_server(gw)
    assert server["InternetIp"] == gw["InternetIp"], server
    assert server["LocalSubnet"] == env.site.local_subnet and server["ClientIpPool"] == CLIENT_POOL, server
    assert server["IkeConfig"]["LocalId"] == gw["InternetIp"], server
    assert server["Psk"], server
    assert server["OnlineClientCount"] == 0, server

    # The gateway's charon holds the server: its connection and its pool.
    conns = env.gateway_swanctl(gw, "--list-conns")
    assert "ipsec-server" in conns, conns
    pools = env.gateway_swanctl(gw, "--list-pools")
    assert "ipsec-server-pool" in pools and "10.250.0." in pools, pools

    c = env.client("rw1.clients.test")
    conf = c.conf(server, encap=env.encap)
    assert "aes128-sha1-modp1024" in conf, conf   # the defaults aes/sha1/group2
    sa = env.connect(c, server)
    vip = c.vip()
    assert in_pool(vip), f"virtual IP {vip} is not in {CLIENT_POOL}: {sa}"
    assert (sa["version"], sa["local-host"], sa["remote-host"]) == ("2", c.ip, gw["InternetIp"]), sa
    assert (sa.get("encr-alg"), sa.get("encr-keysize"), sa.get("integ-alg"), sa.get("dh-group")) == \
        ("AES_CBC", "128", "HMAC_SHA1_96", "MODP_1024"), sa
    (child,) = c.installed()
    assert child.get("local-ts") == [f"{vip}/32"], child
    assert child.get("remote-ts") == [env.site.local_subnet], child

    # Real packets both ways: client (from its virtual IP) → VPC host, VPC host → virtual IP.
    env.wait_ping(c.ns, vpc.ip, timeout=10)
    assert env.scope.ping(c.ns, vpc.ip, count=3, timeout=3, src=vip), env.diag()
    env.wait_ping(vpc.ns, vip, timeout=10)
    assert env.scope.ping(vpc.ns, vip, count=3, timeout=3), env.diag()
    if shutil.which("tcpdump"):
        # On the client's uplink: ESP (in UDP), never the plaintext ping.
        with Capture(c.veth, "icmp or udp port 4500") as cap:
            assert env.scope.ping(c.ns, vpc.ip, count=3, timeout=3, src=vip)
        icmp = [line for line in cap.lines if "ICMP" in line]
        esp = [line for line in cap.lines if "ESP" in line]
        assert not icmp, f"plaintext ICMP on the client's uplink: {icmp}"
        assert len(esp) >= 6, f"no ESP for 3 pings: {cap.lines}"

    # OnlineClientCount: 1 while connected, 0 once the client has hung up.
    env.wait_count(gw, 1)
    r = c.charon.terminate(c.name)
    assert r.returncode == 0, r.stdout + r.stderr
    env.wait_count(gw, 0)
    assert not env.scope.ping(vpc.ns, vip, timeout=1)

    # It comes back (a new initiation), and stopping the client's charon (DELETE) counts too.
    r = c.charon.initiate(c.name, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    c.charon.wait_installed(c.name, timeout=UP)
    env.wait_count(gw, 1)
    env.wait_ping(c.ns, vpc.ip, timeout=10)
    c.charon.stop()
    env.wait_count(gw, 0)


# ----------------------------------------------------------------------------- 3. two clients


def test_two_clients_at_once(env):
    """Two clients with the same PSK and different identities: distinct virtual IPs, both reach
    the VPC and are reached from it (each over its own SA), OnlineClientCount 2."""
    gw = env.ssl_gateway()
    vpc = env.vpc_host(gw, CLIENT_POOL)
    server = env.create_server(gw)
    a, b = env.client("rw-a.clients.test"), env.client("rw-b.clients.test")
    env.connect(a, server)
    env.connect(b, server)
    va, vb = a.vip(), b.vip()
    assert in_pool(va) and in_pool(vb) and va != vb, (va, vb)
    env.wait_count(gw, 2)
    gw_sas = env.gateway_swanctl(gw, "--list-sas")
    assert f"[{va}]" in gw_sas and f"[{vb}]" in gw_sas, gw_sas
    for c, vip in ((a, va), (b, vb)):
        env.wait_ping(c.ns, vpc.ip, timeout=10)
        env.wait_ping(vpc.ns, vip, timeout=10)
        # The replies came back through this client's own SA.
        before = int(c.installed()[0].get("packets-in", 0))
        assert env.scope.ping(vpc.ns, vip, count=3, timeout=3), env.diag()
        assert env.scope.ping(c.ns, vpc.ip, count=3, timeout=3, src=vip), env.diag()
        after = int(c.installed()[0].get("packets-in", 0))
        assert after - before >= 6, f"{c.ns} received {after - before} ESP packets for 6 pings\n{env.diag()}"

    # One hangs up: the other stays connected and counted.
    a.charon.terminate(a.name)
    env.wait_count(gw, 1)
    assert b.installed(), b.sas()
    env.wait_ping(vpc.ns, vb, timeout=5)


# ----------------------------------------------------------------------------- 4. new PSK


def test_new_psk_effective_immediately(env):
    """UpdateIpsecServer with a new Psk and EffectImmediately=true tears the clients' SAs down;
    the old PSK is refused from then on, the new one gets in."""
    gw = env.ssl_gateway()
    vpc = env.vpc_host(gw, CLIENT_POOL)
    server = env.create_server(gw)
    a, b = env.client("rw-a.clients.test"), env.client("rw-b.clients.test")
    env.connect(a, server)
    env.connect(b, server)
    env.wait_count(gw, 2)
    va = a.vip()

    old_psk, new_psk = server["Psk"], "New-Psk-2-rw"
    server = env.update_server(gw, server["IpsecServerId"], Psk=new_psk, EffectImmediately=True)
    assert server["Psk"] == new_psk and server["EffectImmediately"] is True, server
    until(lambda: not a.sas() and not b.sas(), 10, "both clients' SAs to be deleted by the gateway", env.diag)
    env.wait_count(gw, 0)
    assert not env.scope.ping(vpc.ns, va, timeout=1)

    # The old PSK no longer gets in; the new one does.
    env.refused(a, server, "AUTHENTICATION_FAILED", psk=old_psk)
    assert holds(lambda: env.server(gw)["OnlineClientCount"] == 0, 1.0)
    env.connect(b, server)
    vb = b.vip()
    assert in_pool(vb), b.sas()
    env.wait_count(gw, 1)
    env.wait_ping(b.ns, vpc.ip, timeout=10)
    env.wait_ping(vpc.ns, vb, timeout=10)


# ----------------------------------------------------------------------------- 5. refusals, algorithms


def test_wrong_psk_and_algorithms(env):
    gw = env.ssl_gateway()
    vpc = env.vpc_host(gw, CLIENT_POOL)
    server = env.create_server(gw)
    c = env.client("rw-alg.clients.test")

    gw_log = len(env.gateway_log(gw))
    env.refused(c, server, "AUTHENTICATION_FAILED", psk="not-the-Psk-0")
    assert env.server(gw)["OnlineClientCount"] == 0

    strong = "aes256-sha256-modp2048"
    env.refused(c, server, "NO_PROPOSAL_CHOSEN", ike=strong, esp=strong)
    assert "received proposals unacceptable" in env.gateway_log(gw)[gw_log:], env.diag()

    ike = {"IkeEncAlg": "aes256", "IkeAuthAlg": "sha256", "IkePfs": "group14"}
    esp = {"IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha256", "IpsecPfs": "group14"}
    server = env.update_server(gw, server["IpsecServerId"], IkeConfig=json.dumps(ike), IpsecConfig=json.dumps(esp))
    assert {k: server["IkeConfig"][k] for k in ike} == ike, server
    assert {k: server["IpsecConfig"][k] for k in esp} == esp, server
    assert server["IkeConfig"]["LocalId"] == gw["InternetIp"], server
    conf = c.conf(server, encap=env.encap)
    assert f"proposals = {strong}" in conf and f"esp_proposals = {strong}" in conf, conf
    sa = env.connect(c, server, ike=strong, esp=strong)
    assert (sa.get("encr-alg"), sa.get("encr-keysize"), sa.get("integ-alg"), sa.get("dh-group")) == \
        ("AES_CBC", "256", "HMAC_SHA2_256_128", "MODP_2048"), sa
    (child,) = c.installed()
    assert (child.get("encr-alg"), child.get("encr-keysize"), child.get("integ-alg")) == \
        ("AES_CBC", "256", "HMAC_SHA2_256_128"), child
    env.wait_count(gw, 1)
    env.wait_ping(c.ns, vpc.ip, timeout=10)
    env.wait_ping(vpc.ns, c.vip(), timeout=10)

    # The old defaults are no longer accepted.
    d = env.client("rw-old.clients.test")
    env.refused(d, server, "NO_PROPOSAL_CHOSEN", ike="aes128-sha1-modp1024", esp="aes128-sha1-modp1024")


# ----------------------------------------------------------------------------- 6. delete


def test_delete_server(env):
    gw = env.ssl_gateway()
    vpc = env.vpc_host(gw, CLIENT_POOL)
    server = env.create_server(gw)
    c = env.client("rw-del.clients.test")
    env.connect(c, server)
    env.wait_count(gw, 1)
    env.wait_ping(c.ns, vpc.ip, timeout=10)
    vip = c.vip()

    gw_log = len(env.gateway_log(gw))
    env.delete_server(gw, server["IpsecServerId"])
    assert env.servers(gw) == []
    until(lambda: not c.sas(), 10, "the client's SA to be deleted by the gateway", env.diag)
    assert not env.scope.ping(vpc.ns, vip, timeout=1)
    assert "ipsec-server" not in env.gateway_swanctl(gw, "--list-conns")
    assert "ipsec-server-pool" not in env.gateway_swanctl(gw, "--list-pools")

    # A new attempt finds no configuration on the gateway.
    env.refused(c, server, "NO_PROPOSAL_CHOSEN")
    log = env.gateway_log(gw)[gw_log:]
    assert "no IKE config found" in log, log[-3000:]
    # The gateway is still usable: it is active and its charon runs.
    assert describe_gateway(env.api, gw["VpnGatewayId"])["Status"] == "active"
    assert env.site.live_charon_pid(gw["VpnGatewayId"])
