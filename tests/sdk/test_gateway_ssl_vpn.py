"""SSL-VPN in gateway mode end to end: `gatehouse serve --dataplane netns` runs a real OpenVPN
server in the gateway's namespace, and a stock `openvpn` client, configured only from the API's
ClientConfig, connects to it and sends real packets.

    openvpn client ── uplink bridge ── pub0 (InternetIp)     gateway namespace:
    (own namespace,                                           openvpn (server.conf, crl.pem,
     address in the public pool)     vpc0 (IntranetIp) ─┐      management.sock, openvpn.log)
                                                        └── VPC bridge ── VPC host
                                                             (route ClientIpPool via IntranetIp)

One gateway (EnableSsl, SslConnections 5) serves the whole module; the tests run in order and
each one builds what it needs if an earlier one did not leave it behind:

1. CreateSslVpnServer starts openvpn inside the gateway's namespace; a client certificate's
   ClientConfig, unchanged, connects; pings both ways through the tunnel (never in plaintext).
2. DescribeSslVpnServers' Connections follows the clients (a second one joins); DescribeVpnSslServerLogs
   shows the real daemon's lines in OpenVPN's format (UTC times), and not Gatehouse's own
   management polling.
3. DeleteSslVpnClientCert revokes without a restart: same pid, new CRL, the connected client is
   dropped (the other one stays), and at its next attempt it is refused (certificate revoked).
4. ModifySslVpnServer (Port 1195, Proto TCP) restarts openvpn with the new setting; a fresh
   ClientConfig of a new certificate connects again.
5. DeleteSslVpnServer stops openvpn and removes its files; DeleteVpnGateway leaves no namespace.

The site (Gatehouse, bridges, address plan) and Env come from test_gateway_ipsec.py, the OpenVPN
helpers from test_ssl_vpn.py. These tests need root, network namespaces, /dev/net/tun,
strongSwan (every gateway runs a charon) and the `openvpn` package: elsewhere they are skipped,
loudly; with GATEHOUSE_REQUIRE_DATAPLANE=1 a machine that cannot run them fails instead.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest

import support
from lab import Capture, machine_problem, netns_list, pid_alive, pid_namespaces, run
from support import describe_gateway, items, wait_status
from test_gateway_ipsec import APPLY, GATEWAY_READY, Env, Site, holds, running_site, tail, until
from test_ssl_vpn import LOG_LINE_RE, _openvpn_problem, directives, line_time, openvpn_binary

CLIENT_POOL = "192.168.250.0/24"
TUNNEL_SERVER = str(ipaddress.ip_network(CLIENT_POOL)[1])  # the server's own address in the pool
OPENVPN_UP = 10.0         # CreateSslVpnServer → openvpn running in the namespace (after `active`)
CONNECT = 20.0            # client started → "Initialization Sequence Completed"
COUNT_WITHIN = 6.0        # the watcher polls every 2 s: "within a few seconds"
LOGS_WITHIN = 6.0
REFUSED_WITHIN = 15.0     # a reconnecting revoked client → "certificate revoked" in the server's log
STAYS_OUT = 5.0           # ... and it does not get in for this long
PING_WITHIN = 10.0
DONE = "Initialization Sequence Completed"


# ----------------------------------------------------------------------------- skipping




# ----------------------------------------------------------------------------- the client


class OpenVpnClient:
    """A stock `openvpn --config <ClientConfig file>` in its own namespace on the uplink, started
    with the lab's spawn (PID recorded: the lab stops it even if the test fails)."""

    def __init__(self, env: "SslEnv", ns: str, ip: str, veth: str, conf: Path, log: Path):
        self.env, self.ns, self.ip, self.veth, self.conf, self.log = env, ns, ip, veth, conf, log
        self.proc = env.scope.spawn(ns, [openvpn_binary(), "--config", conf], log)

    def text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except OSError:
            return ""

    def size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def since(self, mark: int) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, needle: str, timeout: float, since: int = 0) -> None:
        def seen():
            if needle in self.since(since):
                return True
            if not self.alive():
                raise AssertionError(f"the client openvpn exited rc={self.proc.returncode} before {needle!r}:\n"
                                     f"{self.text()[-3000:]}\n{self.env.diag()}")
            return False

        until(seen, timeout, f"{needle!r} in the client's log", self.env.diag, interval=0.05)

    def tunnel_ip(self) -> str | None:
        """The client's address in ClientIpPool (on its tun device), if it has one."""
        res = run(["ip", "-n", self.ns, "-j", "-4", "addr", "show"], check=False)
        for link in json.loads(res.stdout or "[]"):
            for a in link.get("addr_info", []):
                if ipaddress.ip_address(a["local"]) in ipaddress.ip_network(CLIENT_POOL):
                    return a["local"]
        return None

    def signal(self, sig: int) -> bool:
        return self.env.scope.signal_pid(self.proc.pid, sig, {self.ns})

    def stop(self) -> None:
        if self.alive():
            self.env.scope._terminate([self.proc.pid], {self.ns})
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass


# ----------------------------------------------------------------------------- the module's world


class SslEnv(Env):
    """Env (test_gateway_ipsec) for one module: an SSL-VPN gateway, its VPC host, its server,
    its certificates and the clients."""

    def __init__(self, site: Site):
        super().__init__(site)
        self.gw: dict | None = None
        self.vpc = None
        self.vss: str | None = None
        self.client_nss: dict[str, tuple[str, str, str]] = {}  # slot -> (namespace, address, host-side veth)
        self.clients: list[OpenVpnClient] = []
        self.connected: tuple[OpenVpnClient, str] | None = None  # a live client and its certificate
        self.second: tuple[OpenVpnClient, str] | None = None     # another one (test 2 on)
        self._n = 0

    # -- the gateway's side ------------------------------------------------------------

    @property
    def gw_id(self) -> str:
        assert self.gw is not None
        return self.gw["VpnGatewayId"]

    @property
    def ns(self) -> str:
        return self.site.netns_of(self.gw_id)

    @property
    def ovpn_dir(self) -> Path:
        return self.site.dataplane_dir(self.gw_id) / "openvpn"

    def ovpn_pid(self) -> int | None:
        """openvpn.pid's PID if it is alive, inside the gateway's namespace, and an openvpn."""
        try:
            pid = int((self.ovpn_dir / "openvpn.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not pid_alive(pid) or self.ns not in pid_namespaces(pid):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
        return pid if comm == "openvpn" else None

    def ovpn_log(self) -> str:
        return tail(self.ovpn_dir / "openvpn.log", 10**7)

    def server_conf(self) -> list[str]:
        """server.conf's directives (the inline certificates and key left out)."""
        try:
            return directives((self.ovpn_dir / "server.conf").read_text())
        except OSError:
            return []

    def gateway(self) -> dict:  # type: ignore[override]
        """The module's gateway: EnableSsl, SslConnections 5, in VPC a (the site's bridge)."""
        if self.gw is None:
            api = self.api
            gw = api.call("CreateVpnGateway", {"VpcId": self.site.vpcs["a"][0], "Bandwidth": 10,
                                               "EnableSsl": True, "SslConnections": 5})["VpnGatewayId"]
            ns = self.site.netns_of(gw)
            self.gateways.append((api, gw))
            self.site.lab.adopt_gateway(ns, self.site.dataplane_dir(gw) / "charon.pid")
            wait_status(api, gw, "active", timeout=GATEWAY_READY)
            until(lambda: ns in netns_list(), 10, f"namespace {ns}", self.diag)
            d = describe_gateway(api, gw)
            assert d["InternetIp"] and d["IntranetIp"], d
            assert d["SslVpn"] == "enable" and d["SslMaxConnections"] == 5, d
            self.gw = d
            # The VPC host reaches the clients through the gateway.
            self.vpc = self.vpc_host(d, CLIENT_POOL)
        return self.gw

    def server(self) -> str:
        """The gateway's SSL-VPN server (created once), with openvpn running."""
        self.gateway()
        if self.vss is None:
            body = self.api.call("CreateSslVpnServer", {"VpnGatewayId": self.gw_id, "ClientIpPool": CLIENT_POOL,
                                                        "LocalSubnet": self.site.local_subnet})
            self.vss = body["SslVpnServerId"]
            wait_status(self.api, self.gw_id, "active", timeout=APPLY)
            until(self.ovpn_pid, OPENVPN_UP, f"openvpn running in {self.ns} (openvpn.pid)", self.diag)
        return self.vss

    def describe_server(self) -> dict:
        found = items(self.api.call("DescribeSslVpnServers", {"SslVpnServerId": self.vss}),
                      "SslVpnServers", "SslVpnServer")
        assert len(found) == 1, found
        return found[0]

    def connections(self) -> int:
        return self.describe_server()["Connections"]

    def wait_connections(self, n: int, timeout: float = COUNT_WITHIN) -> float:
        t0 = time.monotonic()
        until(lambda: self.connections() == n, timeout, f"Connections = {n}", self.diag, interval=0.2)
        return time.monotonic() - t0

    def api_logs(self, **params) -> list[str]:
        """All of DescribeVpnSslServerLogs (MinutePeriod 10 unless told), page by page."""
        params = {"MinutePeriod": 10, **params}
        out: list[str] = []
        page = 1
        while True:
            body = self.api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": self.vss, "PageSize": 50,
                                                              "PageNumber": page, **params})
            logs = body["Data"]["Logs"]
            out += logs
            if not logs or len(out) >= body["Count"] or page > 200:
                return out
            page += 1

    def new_cert(self) -> str:
        vsc = self.api.call("CreateSslVpnClientCert", {"SslVpnServerId": self.server()})["SslVpnClientCertId"]
        wait_status(self.api, self.gw_id, "active", timeout=APPLY)
        return vsc

    def client_config(self, vsc: str) -> str:
        return self.api.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": vsc})["ClientConfig"]

    # -- the client's side -------------------------------------------------------------

    def client(self, vsc: str, slot: str = "a") -> OpenVpnClient:
        """Runs `openvpn --config` on vsc's ClientConfig, unchanged, in the namespace of ``slot``
        (one on the uplink per slot, with an address in the gateway's public subnet)."""
        if slot not in self.client_nss:
            ip = self.site.customer_ip()
            ns = self.scope.host(f"ov{slot}")
            veth = self.scope.attach(ns, self.site.uplink, f"{ip}/{self.site.plen}")
            self.client_nss[slot] = (ns, ip, veth)
        ns, ip, veth = self.client_nss[slot]
        self._n += 1
        conf = self.site.lab.dir / f"client{self._n}-{vsc}.ovpn"
        conf.write_text(self.client_config(vsc))
        c = OpenVpnClient(self, ns, ip, veth, conf, self.site.lab.dir / f"client{self._n}-{vsc}.log")
        self.clients.append(c)
        return c

    def rerun(self, c: OpenVpnClient) -> OpenVpnClient:
        """The same profile started again in the same namespace (a new log)."""
        c.stop()
        self._n += 1
        again = OpenVpnClient(self, c.ns, c.ip, c.veth, c.conf, self.site.lab.dir / f"client{self._n}-rerun.log")
        self.clients.append(again)
        return again

    def connect(self, vsc: str, slot: str = "a") -> OpenVpnClient:
        """A client of ``vsc`` up: Initialization Sequence Completed and a tunnel address."""
        c = self.client(vsc, slot)
        c.wait_for(DONE, CONNECT)
        until(c.tunnel_ip, 5, "the client's tunnel address", self.diag)
        return c

    def connected_client(self) -> tuple[OpenVpnClient, str]:
        """The connected client an earlier test left, or a new certificate's client."""
        if self.connected and self.connected[0].alive() and self.ovpn_pid():
            return self.connected
        vsc = self.new_cert()
        self.connected = (self.connect(vsc), vsc)
        return self.connected

    def ping(self, src_ns: str, dst: str, count: int = 3) -> None:
        until(lambda: self.scope.ping(src_ns, dst, count=1, timeout=1.0), PING_WITHIN, f"ping {src_ns} -> {dst}",
              self.diag, interval=0)
        assert self.scope.ping(src_ns, dst, count=count, timeout=count), f"lost pings {src_ns} -> {dst}\n{self.diag()}"

    # -- observing and teardown --------------------------------------------------------

    def diag(self) -> str:
        parts = [super().diag()]
        if self.gw is not None:
            parts.append(f"--- openvpn pid: {self.ovpn_pid()}; server.conf: {self.server_conf()}")
            parts.append(f"--- {self.gw_id} openvpn.log:\n{self.ovpn_log()[-4000:]}")
        for c in self.clients[-2:]:
            parts.append(f"--- client {c.conf.name} (alive={c.alive()}):\n{c.text()[-2500:]}")
        return "\n".join(parts)

    def keep_openvpn_files(self, tag: str = "") -> None:
        """Copy the gateway's openvpn log and configuration aside (they go with the server)."""
        if self.gw is None:
            return
        self.site.logs.mkdir(parents=True, exist_ok=True)
        for name in ("openvpn.log", "server.conf", "crl.pem"):
            try:
                shutil.copyfile(self.ovpn_dir / name, self.site.logs / f"{self.gw_id}{tag}.{name}")
            except OSError:
                pass

    def close(self) -> list[str]:
        for c in self.clients:
            c.stop()
        self.keep_openvpn_files(".end")
        return super().close()


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    yield from running_site(request, tmp_path_factory, "gateway SSL-VPN end-to-end tests",
                            "root, network namespaces, /dev/net/tun, strongSwan (charon-systemd, swanctl) and openvpn",
                            machine_problem() or _openvpn_problem())


@pytest.fixture(scope="module")
def env(site):
    e = SslEnv(site)
    try:
        yield e
    finally:
        problems = e.close()
        if problems:
            warnings.warn(f"gateway SSL-VPN test teardown: {problems}")


# ----------------------------------------------------------------------------- 1. connect and ping


def test_client_from_client_config_connects_and_pings(env):
    gw = env.gateway()
    ip = gw["InternetIp"]
    vss = env.server()

    # openvpn runs inside the gateway's namespace, on the gateway's InternetIp.
    pid = env.ovpn_pid()
    assert pid, env.diag()
    assert pid_namespaces(pid) == {env.ns}, pid_namespaces(pid)
    assert run(["ip", "netns", "identify", str(pid)]).stdout.strip() == env.ns
    for f in ("server.conf", "crl.pem", "openvpn.pid", "management.sock", "openvpn.log"):
        assert (env.ovpn_dir / f).exists(), f"{env.ovpn_dir / f} missing"
    conf = env.server_conf()
    for line in (f"local {ip}", "port 1194", "proto udp", "server 192.168.250.0 255.255.255.0",
                 f"push \"route {env.site.local_subnet.split('/')[0]} 255.255.255.0\"", "max-clients 5"):
        assert line in conf, f"{line!r} not in server.conf: {conf}"
    until(lambda: DONE in env.ovpn_log(), 10, "the server's Initialization Sequence Completed", env.diag)
    listening = run(["ip", "netns", "exec", env.ns, "ss", "-Hlunp"]).stdout
    assert re.search(rf"{re.escape(ip)}:1194\b.*openvpn", listening), listening

    server = env.describe_server()
    assert (server["InternetIp"], server["Port"], server["Proto"]) == (ip, 1194, "UDP"), server
    assert server["Connections"] == 0 and server["MaxConnections"] == 5, server

    vsc = env.new_cert()
    assert env.ovpn_pid() == pid, "a new client certificate must not restart openvpn"
    profile = env.client_config(vsc)
    d = directives(profile)
    assert "client" in d and "proto udp" in d and f"remote {ip} 1194" in d, d

    c = env.connect(vsc)
    env.connected = (c, vsc)
    tip = c.tunnel_ip()
    assert tip and tip != TUNNEL_SERVER, tip
    assert f"[{vsc}] Peer Connection Initiated" in env.ovpn_log(), env.diag()

    # Real packets: client → VPC host, VPC host → the client's tunnel address.
    env.ping(c.ns, env.vpc.ip)
    env.ping(env.vpc.ns, tip)
    if shutil.which("tcpdump"):
        # On the client's uplink: OpenVPN's UDP to the gateway, never the plaintext ping.
        with Capture(c.veth, "icmp or udp port 1194") as cap:
            assert env.scope.ping(c.ns, env.vpc.ip, count=3, timeout=3), env.diag()
        icmp = [line for line in cap.lines if "ICMP" in line]
        udp = [line for line in cap.lines if f"{ip}.1194" in line]
        assert not icmp, f"plaintext ICMP on the client's uplink: {icmp}"
        assert len(udp) >= 6, f"no OpenVPN packets for 3 pings: {cap.lines}"


# ----------------------------------------------------------------------------- 2. connections, logs


def test_connections_and_logs(env):
    c, vsc = env.connected_client()
    env.wait_connections(1)

    # A second client (another certificate, another namespace): Connections follows within the
    # watcher's period; it reaches the VPC too.
    vsc2 = env.new_cert()
    c2 = env.connect(vsc2, slot="b")
    env.second = (c2, vsc2)
    took = env.wait_connections(2)
    print(f"Connections 1 -> 2 {took:.1f}s after the second client's Initialization Sequence Completed")
    env.ping(c2.ns, env.vpc.ip, count=1)
    assert c2.tunnel_ip() != c.tunnel_ip()

    needles = (DONE, f"[{vsc}] Peer Connection Initiated", f"CN={vsc}", f"[{vsc2}] Peer Connection Initiated")

    def logged():
        lines = env.api_logs()
        return lines if all(any(n in line for line in lines) for n in needles) else None

    try:
        lines = until(logged, LOGS_WITHIN, f"{needles} in DescribeVpnSslServerLogs", interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}\nAPI logs:\n" + "\n".join(env.api_logs()[-40:]) + f"\n{env.diag()}") from None
    bad = [line for line in lines if not LOG_LINE_RE.match(line)]
    assert not bad, f"lines not in OpenVPN's format: {bad[:5]}"
    # Each is a line the daemon wrote, rewritten into the API's format, its time in UTC, and
    # Gatehouse's own paths shown by file name only.
    assert not any(str(env.ovpn_dir) in line for line in lines), [l for l in lines if str(env.ovpn_dir) in l]
    raw = {}
    for line in env.ovpn_log().replace(f"{env.ovpn_dir}/", "").splitlines():
        m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$", line)
        if m:
            raw.setdefault(m.group(2), []).append(m.group(1))
    for line in lines:
        msg = LOG_LINE_RE.match(line).group("msg")
        assert msg in raw, f"{msg!r} is not in the gateway's openvpn.log"
        utc = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(line_time(line)))
        assert utc in raw[msg], f"{line!r}: openvpn.log has it at {raw[msg]} (UTC), the API at {utc}"
    peer = next(line for line in lines if f"[{vsc2}] Peer Connection Initiated" in line)
    assert abs(line_time(peer) - time.time()) < 120, (peer, time.time())
    assert any(re.search(rf"VERIFY OK: depth=0, .*CN={vsc}$", line) for line in lines), lines[-30:]
    assert any(f"UDPv4 link local (bound): [AF_INET]{env.gw['InternetIp']}:1194" in line for line in lines), lines

    # One certificate's lines.
    mine = env.api_logs(SslVpnClientCertId=vsc2)
    assert mine and all(vsc2 in line for line in mine), mine
    assert any("Peer Connection Initiated" in line for line in mine), mine
    assert not any(vsc in line for line in mine)


POLL_LINE = re.compile(r"MANAGEMENT: (Client connected from |CMD '|Client disconnected)")


def test_logs_are_openvpns_not_gatehouses_polling(env):
    """The log a user reads is the VPN's: Gatehouse's own management exchanges (it asks `status 3`
    every 2 s) are not in it. Each one writes three lines to openvpn.log; shown, they are ~90
    lines a minute of noise and push the real lines out of the kept log (2000 lines) within
    about 20 minutes."""
    env.server()
    time.sleep(4.5)  # at least two polls of the watcher
    lines = env.api_logs()
    polls = [line for line in lines if POLL_LINE.search(line)]
    assert not polls, (f"{len(polls)} of {len(lines)} lines of DescribeVpnSslServerLogs (MinutePeriod=10) are "
                       f"Gatehouse's own management polling, e.g.:\n" + "\n".join(polls[:6]))


# ----------------------------------------------------------------------------- 3. revocation


def test_revocation_drops_and_refuses_without_restart(env):
    c, vsc = env.connected_client()
    others = [env.second] if env.second and env.second[0].alive() else []
    env.wait_connections(1 + len(others))
    tip = c.tunnel_ip()
    env.ping(c.ns, env.vpc.ip, count=1)
    pid = env.ovpn_pid()
    crl = (env.ovpn_dir / "crl.pem").read_text()
    log_mark = len(env.ovpn_log())
    client_mark = c.size()

    env.api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": vsc})
    wait_status(env.api, env.gw_id, "active", timeout=APPLY)

    # No restart: the same process, reading the new CRL.
    assert env.ovpn_pid() == pid, f"openvpn was restarted ({pid} -> {env.ovpn_pid()})\n{env.diag()}"
    assert (env.ovpn_dir / "crl.pem").read_text() != crl, "crl.pem did not change"
    assert any(d.startswith("crl-verify ") for d in env.server_conf()), env.server_conf()

    # The connected client is dropped (management `kill`): the server forgets it at once; the
    # other client stays connected and reachable.
    env.wait_connections(len(others))
    # The server tells the client (`client-kill`) and lets its instance go a few seconds later.
    dropped = rf"{vsc}/{re.escape(c.ip)}:\d+ SIG\w+\[soft,[^]]*\] received, client-instance"
    until(lambda: re.search(dropped, env.ovpn_log()[log_mark:]), 10.0,
          f"the gateway's openvpn to drop {vsc}", env.diag, interval=0.2)
    assert not env.scope.ping(env.vpc.ns, tip, timeout=1), "the revoked client is still reachable"
    assert not env.scope.ping(c.ns, env.vpc.ip, timeout=1), "the revoked client still reaches the VPC"
    for o, _ in others:
        env.ping(o.ns, env.vpc.ip, count=2)
        env.ping(env.vpc.ns, o.tunnel_ip(), count=2)

    # It tries again (when told to by the server, or else on SIGUSR1; started again if the
    # server told it to exit) and is refused.
    told = not holds(lambda: c.alive() and "process restarting" not in c.since(client_mark), 2.0)
    if not c.alive():
        c, client_mark = env.rerun(c), 0
    elif not told:
        assert c.signal(signal.SIGUSR1), "could not signal the client"
    until(lambda: "certificate revoked" in env.ovpn_log()[log_mark:], REFUSED_WITHIN,
          "the gateway's openvpn to refuse the revoked certificate", env.diag)
    new = env.ovpn_log()[log_mark:]
    assert re.search(rf"VERIFY ERROR: depth=0, error=certificate revoked: .*CN={vsc}\b", new), new[-3000:]
    assert holds(lambda: DONE not in c.since(client_mark), STAYS_OUT), \
        f"the revoked client got in again:\n{c.since(client_mark)}\n{env.diag()}"
    assert not env.scope.ping(c.ns, env.vpc.ip, timeout=1)
    assert env.connections() == len(others)
    assert env.ovpn_pid() == pid
    print(f"the revoked client was told to reconnect or exit by the server: {told}")

    # The API's log has the refusal too.
    until(lambda: any("certificate revoked" in line and vsc in line for line in env.api_logs()), LOGS_WITHIN,
          "the refusal in DescribeVpnSslServerLogs", env.diag, interval=0.5)
    c.stop()
    env.connected = None


# ----------------------------------------------------------------------------- 4. modify


def test_modify_restarts_with_the_new_setting(env):
    env.server()
    for c in env.clients:
        c.stop()
    env.connected = env.second = None
    pid = env.ovpn_pid()
    assert pid, env.diag()
    ip = env.gw["InternetIp"]

    env.api.call("ModifySslVpnServer", {"SslVpnServerId": env.vss, "Port": 1195, "Proto": "TCP"})
    wait_status(env.api, env.gw_id, "active", timeout=APPLY)
    new_pid = until(lambda: (p := env.ovpn_pid()) and p != pid and p, OPENVPN_UP, "a new openvpn", env.diag)
    assert not pid_alive(pid) or env.ns not in pid_namespaces(pid), f"the old openvpn {pid} still runs"
    conf = env.server_conf()
    assert "port 1195" in conf and "proto tcp-server" in conf and "port 1194" not in conf, conf
    until(lambda: re.search(rf"{re.escape(ip)}:1195\b.*openvpn", run(["ip", "netns", "exec", env.ns, "ss", "-Hltnp"]).stdout),
          5, f"openvpn listening on TCP {ip}:1195", env.diag)
    server = env.describe_server()
    assert (server["Port"], server["Proto"]) == (1195, "TCP"), server

    vsc = env.new_cert()
    assert env.ovpn_pid() == new_pid, "a new client certificate must not restart openvpn"
    d = directives(env.client_config(vsc))
    assert "proto tcp-client" in d and f"remote {ip} 1195" in d, d
    c = env.connect(vsc)
    env.connected = (c, vsc)
    env.ping(c.ns, env.vpc.ip)
    env.ping(env.vpc.ns, c.tunnel_ip())
    env.wait_connections(1)


# ----------------------------------------------------------------------------- 5. delete


def test_delete_server_then_gateway(env):
    vss = env.server()
    gw_id, ns = env.gw_id, env.ns
    pid = env.ovpn_pid()
    assert pid, env.diag()
    charon = env.site.live_charon_pid(gw_id)
    env.keep_openvpn_files(".before-delete")

    env.api.call("DeleteSslVpnServer", {"SslVpnServerId": vss})
    wait_status(env.api, gw_id, "active", timeout=APPLY)
    until(lambda: not pid_alive(pid), 10, f"openvpn (pid {pid}) to stop", env.diag)
    until(lambda: not env.ovpn_dir.exists(), 5, f"{env.ovpn_dir} to be removed", env.diag)
    assert not any(p for p in run(["ip", "netns", "pids", ns]).stdout.split()
                   if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "openvpn"), \
        "an openvpn still runs in the gateway's namespace"
    assert items(env.api.call("DescribeSslVpnServers", {"VpnGatewayId": gw_id}), "SslVpnServers", "SslVpnServer") == []
    if env.connected:
        assert not env.scope.ping(env.vpc.ns, env.connected[0].tunnel_ip() or TUNNEL_SERVER, timeout=1)
    # The gateway itself is untouched: active, its charon still the same.
    assert describe_gateway(env.api, gw_id)["Status"] == "active"
    assert env.site.live_charon_pid(gw_id) == charon
    for c in env.clients:
        c.stop()
    env.connected = None
    env.vss = None

    env.api.call("DeleteVpnGateway", {"VpnGatewayId": gw_id})
    support.wait_gone(env.api, gw_id, timeout=GATEWAY_READY)
    until(lambda: ns not in netns_list(), 10, f"{ns} to disappear from `ip netns list`", env.diag)
    assert not env.site.dataplane_dir(gw_id).exists(), f"{env.site.dataplane_dir(gw_id)} is left"
    if charon:
        until(lambda: not pid_alive(charon), 10, f"the gateway's charon (pid {charon}) to stop", env.diag)
