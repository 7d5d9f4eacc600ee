"""Gateway-mode benchmark (not a test): real tunnels between a gateway-mode Gatehouse and a stock
strongSwan customer gateway, all in network namespaces this script creates and removes.

    sudo .venv/bin/python scripts/bench_gateway.py [--gateways 50] [--per-gateway 10] [--latency 50]

It measures, and prints for BENCHMARKS.md:
1. CreateVpnConnection (EffectImmediately=true) → `ipsec_sa_established` seen through
   DescribeVpnConnection, over --latency connections (p50, p99); the customer gateway is up and
   waiting as a responder;
2. peer loss → the connection's Status falls (DPD), a few times;
3. scale: --gateways gateways × --per-gateway connections, all established; Gatehouse's RSS and
   each gateway's charon RSS and CPU;
4. Gatehouse `kill -9` and restart: time until the data plane has converged (from its log) and
   whether every tunnel stayed up;
5. CreateVpnConnection with BgpConfig (route-based, 0.0.0.0/0) → the prefix the customer's FRR
   announces visible in DescribeVpnRouteEntries, over --bgp connections made one after the other
   on one gateway (each deleted before the next, so each includes starting the gateway's BIRD).
   `--only bgp` runs this part alone;
6. SSL-VPN: a stock openvpn client started with a ClientConfig → its first ping through to a
   VPC host, over --ssl-clients clients started one after another (each in a namespace of its own,
   all staying connected); then all of them pinging at once: the server's openvpn RSS and CPU.
   `--only ssl` runs this part alone.

The customer side is one namespace with one charon, configured by hand as a responder that takes
any gateway (`remote_addrs = %any`) and narrows its selectors: in the benchmark the gateway
initiates, so the measured time is Gatehouse's own.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sdk"))

import support  # noqa: E402
from lab import Lab, frr_problem, machine_problem  # noqa: E402

PSK = "bench-psk-0123456789"
CUSTOMER_IP = "198.19.250.200"
PUBLIC_POOL = "198.19.250.0/24"
PRIVATE_POOL = "10.1.0.0/24"
VPC_SUBNET = "10.1.0.0/24"

RESPONDER = f"""connections {{
  any-gateway {{
    version = 2
    local_addrs = {CUSTOMER_IP}
    remote_addrs = %any
    proposals = aes128-md5-modp1024
    encap = yes
    local {{ auth = psk
      id = {CUSTOMER_IP} }}
    remote {{ auth = psk }}
    children {{
      any-gateway {{
        local_ts = 10.200.0.0/16
        remote_ts = {VPC_SUBNET}
        esp_proposals = aes128-md5-modp1024
      }}
    }}
  }}
}}
secrets {{
  ike-any {{
    secret = "{PSK}"
  }}
}}
"""


BGP_CUSTOMER_IP = "198.19.250.201"
BGP_ANNOUNCED = "10.201.0.0/24"

# A responder for route-based tunnels from any gateway, and the FRR that peers over them.
BGP_RESPONDER = RESPONDER.replace("any-gateway", "any-bgp").replace(CUSTOMER_IP, BGP_CUSTOMER_IP) \
    .replace("local_ts = 10.200.0.0/16", "local_ts = 0.0.0.0/0").replace(f"remote_ts = {VPC_SUBNET}", "remote_ts = 0.0.0.0/0")
BGPD_CONF = f"""router bgp 65001
 bgp router-id {BGP_CUSTOMER_IP}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 10 30
 neighbor 169.254.10.1 remote-as 45104
 neighbor 169.254.10.1 timers connect 1
 address-family ipv4 unicast
  network {BGP_ANNOUNCED}
 exit-address-family
exit
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


class Bench:
    def __init__(self, lab: Lab, data: Path, quota: int):
        self.lab, self.data = lab, data
        self.uplink, self.vpc = lab.bridge("u"), lab.bridge("a")
        self.customer = lab.host("cgw", self.uplink, f"{CUSTOMER_IP}/24", forward=True)
        # The customer's side of the tunnels: each connection's RemoteSubnet is one address on
        # this link (charon routes a policy from an address inside its selector; it skips
        # loopback, and this kernel has no dummy links).
        for cmd in (["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
                    ["link", "set", "lan0", "up"], ["link", "set", "lan1", "up"]):
            lab.exec(self.customer, "ip", *cmd)
        self.charon = lab.charon(self.customer)
        self.charon.load(RESPONDER)
        self.args = ["--dataplane", "netns", "--uplink-bridge", self.uplink, "--vpc-bridge", f"vpc-bench={self.vpc}",
                     "--netns-prefix", lab.prefix, "--public-pool", PUBLIC_POOL, "--private-pool", PRIVATE_POOL,
                     "--transition-delay-ms", "0", "--quota-vpn-connections", str(quota)]
        self.server = support.GatehouseServer(data, self.args, name="bench").start()
        self.connect()
        self.cgw = self.api.call("CreateCustomerGateway", {"IpAddress": CUSTOMER_IP})["CustomerGatewayId"]
        self.gateways: list[str] = []
        self.subnet = 0

    def connect(self) -> None:
        """The API client (again after a restart: the server listens on a new port)."""
        self.api = support.make_api("classic", self.server.endpoint,
                                    support.Creds(support.ROOT_AK, support.ROOT_SECRET, "root"))

    def wait(self, fn, timeout: float, step: float = 0.01):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = fn()
            if v:
                return v
            time.sleep(step)
        raise TimeoutError(f"timed out; customer charon log:\n{self.charon.log.read_text()[-3000:]}")

    def gateway(self) -> str:
        gw = self.api.call("CreateVpnGateway", {"VpcId": "vpc-bench", "Bandwidth": 10})["VpnGatewayId"]
        self.lab.adopt_gateway(f"{self.lab.prefix}{gw}", self.data / "dataplane" / gw / "charon.pid")
        self.gateways.append(gw)
        self.wait_active(gw)
        return gw

    def wait_active(self, gw: str) -> None:
        self.wait(lambda: self.api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active", 60)

    def status(self, vco: str) -> str:
        return self.api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["Status"]

    def connection(self, gw: str) -> str:
        self.subnet += 1
        remote = f"10.200.{self.subnet // 250}.{self.subnet % 250 + 1}/32"
        self.lab.exec(self.customer, "ip", "addr", "add", remote, "dev", "lan0")
        return self.api.call("CreateVpnConnection", {
            "VpnGatewayId": gw, "CustomerGatewayId": self.cgw, "LocalSubnet": VPC_SUBNET, "RemoteSubnet": remote,
            "EffectImmediately": True, "AutoConfigRoute": False,
            "IkeConfig": json.dumps({"Psk": PSK, "IkeVersion": "ikev2", "IkeEncAlg": "aes", "IkeAuthAlg": "md5"}),
        })["VpnConnectionId"]

    def established(self, vco: str, timeout: float = 30) -> float:
        t0 = time.monotonic()
        self.wait(lambda: self.status(vco) == "ipsec_sa_established", timeout)
        return time.monotonic() - t0

    def charon_pids(self) -> list[int]:
        return [int((self.data / "dataplane" / gw / "charon.pid").read_text()) for gw in self.gateways]


def bgp_bench(lab: Lab, b: Bench, n: int) -> None:
    print(f"== 5. CreateVpnConnection with BGP → the announced prefix in DescribeVpnRouteEntries, {n} connections")
    ns = lab.host("cbgp", b.uplink, f"{BGP_CUSTOMER_IP}/24", forward=True)
    charon = lab.charon(ns)
    charon.load(BGP_RESPONDER)
    lab.exec(ns, "ip", "addr", "add", "169.254.10.2/30", "dev", "ipsec0")
    lab.rule(ns, "priority", 219, "lookup", "main", "suppress_prefixlength", 0)
    lab.frr(ns, BGPD_CONF)
    cgw = b.api.call("CreateCustomerGateway", {"IpAddress": BGP_CUSTOMER_IP, "Asn": 65001})["CustomerGatewayId"]
    gw = b.gateway()
    bgp = json.dumps({"EnableBgp": "true", "LocalAsn": 45104, "TunnelCidr": "169.254.10.0/30",
                      "LocalBgpIp": "169.254.10.1"})

    def learned(vco: str) -> bool:
        body = b.api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw, "RouteEntryType": "Bgp"})
        return any(r["RouteDest"] == BGP_ANNOUNCED and r["NextHop"] == vco
                   for r in body["VpnRouteEntries"]["VpnRouteEntry"])

    latencies = []
    for _ in range(n):
        t0 = time.monotonic()
        vco = b.api.call("CreateVpnConnection", {
            "VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "0.0.0.0/0", "RemoteSubnet": "0.0.0.0/0",
            "EffectImmediately": True, "BgpConfig": bgp,
            "IkeConfig": json.dumps({"Psk": PSK, "IkeVersion": "ikev2", "IkeEncAlg": "aes", "IkeAuthAlg": "md5"}),
        })["VpnConnectionId"]
        b.wait(lambda: learned(vco), 60, step=0.02)
        latencies.append(time.monotonic() - t0)
        b.wait_active(gw)
        b.api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
        b.wait_active(gw)
    print(f"   p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")


def ssl_bench(lab: Lab, b: Bench, n: int) -> None:
    print(f"== 6. SSL-VPN: openvpn client start → first ping through, {n} clients; then {n} at once")
    gw = b.api.call("CreateVpnGateway", {"VpcId": "vpc-bench", "Bandwidth": 10, "EnableSsl": True,
                                         "SslConnections": n})["VpnGatewayId"]
    lab.adopt_gateway(f"{lab.prefix}{gw}", b.data / "dataplane" / gw / "charon.pid")
    b.gateways.append(gw)
    b.wait_active(gw)
    d = b.api.call("DescribeVpnGateway", {"VpnGatewayId": gw})
    pool = "192.168.250.0/24"
    host = lab.host("vh", b.vpc, "10.1.0.250/24")
    lab.route(host, pool, via=d["IntranetIp"])
    vss = b.api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": pool,
                                            "LocalSubnet": VPC_SUBNET})["SslVpnServerId"]
    b.wait_active(gw)
    configs = []
    for _ in range(n):
        vsc = b.api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss})["SslVpnClientCertId"]
        b.wait_active(gw)
        configs.append(b.api.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": vsc})["ClientConfig"])
    ovpn_pid = int((b.data / "dataplane" / gw / "openvpn" / "openvpn.pid").read_text())

    clients, latencies = [], []
    for i, conf in enumerate(configs):
        ns = lab.host(f"ov{i}", b.uplink, f"198.19.250.{100 + i}/24")
        path = lab.dir / f"client{i}.ovpn"
        path.write_text(conf)
        t0 = time.monotonic()
        lab.spawn(ns, ["openvpn", "--config", path], lab.dir / f"client{i}.log")
        # One echo at a time, each given 100 ms: the first that comes back ends the wait.
        b.wait(lambda: lab.exec(ns, "ping", "-n", "-q", "-c", "1", "-W", "0.1", "10.1.0.250",
                                check=False).returncode == 0, 30, step=0)
        latencies.append(time.monotonic() - t0)
        via = lab.exec(ns, "ip", "route", "get", "10.1.0.250").stdout
        assert " dev tun" in via, f"the ping did not go through the tunnel: {via}"
        clients.append(ns)
    b.wait(lambda: b.api.call("DescribeSslVpnServers", {"SslVpnServerId": vss})["SslVpnServers"]["SslVpnServer"][0]
           ["Connections"] == n, 30, step=0.2)
    print(f"   first ping through: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {pct(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; Connections = {n}")
    rss_idle, cpu0, t0 = rss_kib(ovpn_pid), cpu_seconds(ovpn_pid), time.monotonic()
    # Every client pings the VPC host 10 times a second for 10 s, all at once.
    with ThreadPoolExecutor(n) as pool_:
        ok = list(pool_.map(lambda ns: lab.ping(ns, "10.1.0.250", count=100, timeout=15, interval=0.1), clients))
    cpu = (cpu_seconds(ovpn_pid) - cpu0) / (time.monotonic() - t0)
    print(f"   {n} clients connected: server openvpn RSS {rss_idle / 1024:.1f} MiB; all pinging 10/s for 10 s: "
          f"CPU {cpu * 100:.1f} % of a core, RSS {rss_kib(ovpn_pid) / 1024:.1f} MiB, {sum(ok)}/{n} clients lost "
          f"no ping")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateways", type=int, default=50)
    ap.add_argument("--per-gateway", type=int, default=10)
    ap.add_argument("--latency", type=int, default=50)
    ap.add_argument("--peer-loss", type=int, default=3)
    ap.add_argument("--bgp", type=int, default=20)
    ap.add_argument("--ssl-clients", type=int, default=20)
    ap.add_argument("--only", choices=["all", "bgp", "ssl"], default="all")
    a = ap.parse_args()
    problem = machine_problem() or frr_problem()
    if problem:
        print(f"cannot run the gateway benchmark here: {problem}")
        return 1
    data = Path(tempfile.mkdtemp(prefix="gh-bench-"))
    print(f"data and logs: {data} (removed when the benchmark succeeds)")
    with Lab() as lab:
        b = Bench(lab, data / "data", quota=max(a.per_gateway, a.latency) + 10)
        if a.only != "all":
            {"bgp": lambda: bgp_bench(lab, b, a.bgp), "ssl": lambda: ssl_bench(lab, b, a.ssl_clients)}[a.only]()
            b.server.stop()
            shutil.rmtree(data, ignore_errors=True)
            return 0

        print(f"== 1. CreateVpnConnection (EffectImmediately=true) → ipsec_sa_established, {a.latency} connections")
        gw = b.gateway()
        latencies = []
        for _ in range(a.latency):
            t0 = time.monotonic()
            vco = b.connection(gw)
            b.wait(lambda: b.status(vco) == "ipsec_sa_established", 30)
            latencies.append(time.monotonic() - t0)
            b.wait_active(gw)
        print(f"   p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")

        print(f"== 2. peer loss → Status falls (DPD every 5 s), {a.peer_loss} times")
        link = [l for l in lab.links if l.startswith(f"t{lab.hex}v")][0]
        vco = b.connection(gw)
        b.established(vco)
        b.wait_active(gw)
        losses = []
        for _ in range(a.peer_loss):
            lab.link_down(link)
            t0 = time.monotonic()
            b.wait(lambda: b.status(vco) != "ipsec_sa_established", 120, step=0.05)
            losses.append(time.monotonic() - t0)
            lab.link_up(link)
            b.established(vco, 60)
        print(f"   down after {', '.join(f'{x:.1f}' for x in losses)} s")
        for g in b.gateways:
            for c in b.api.call("DescribeVpnConnections", {"VpnGatewayId": g, "PageSize": 50})["VpnConnections"]["VpnConnection"]:
                b.api.call("DeleteVpnConnection", {"VpnConnectionId": c["VpnConnectionId"]})
                b.wait_active(g)

        print(f"== 3. scale: {a.gateways} gateways × {a.per_gateway} connections")
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: b.gateway(), range(a.gateways - 1)))
        gateways_s = time.monotonic() - t0

        def fill(g: str) -> list[str]:
            out = []
            for _ in range(a.per_gateway):
                out.append(b.connection(g))
                b.wait_active(g)
            return out

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            vcos = [v for vs in pool.map(fill, b.gateways) for v in vs]
        for v in vcos:
            b.established(v, 120)
        all_s = time.monotonic() - t0
        pids = b.charon_pids()
        charon_rss = [rss_kib(p) for p in pids]
        charon_cpu = [cpu_seconds(p) for p in pids]
        gh_pid = b.server.proc.pid
        print(f"   {len(b.gateways)} gateways active in {gateways_s:.1f} s; {len(vcos)} connections established "
              f"in {all_s:.1f} s")
        print(f"   Gatehouse RSS {rss_kib(gh_pid) / 1024:.0f} MiB, CPU {cpu_seconds(gh_pid):.1f} s; per gateway charon "
              f"RSS median {statistics.median(charon_rss) / 1024:.1f} MiB, CPU median "
              f"{statistics.median(charon_cpu):.2f} s")
        time.sleep(5)
        idle0 = sum(cpu_seconds(p) for p in pids) + cpu_seconds(gh_pid)
        time.sleep(10)
        idle = (sum(cpu_seconds(p) for p in pids) + cpu_seconds(gh_pid) - idle0) / 10
        print(f"   idle CPU of everything (Gatehouse + {len(pids)} charons): {idle * 100:.1f} % of a core")

        print("== 4. Gatehouse kill -9, restart: reconvergence")
        sas_before = b.charon.swanctl("--list-sas").stdout.count("ESTABLISHED")
        b.server.proc.kill()
        b.server.proc.wait()
        b.server.proc = None
        t0 = time.monotonic()
        b.server.start()
        b.connect()
        log = b.server.log_path
        # The log of this start, without colours.
        since_restart = lambda: re.sub(r"\x1b\[[0-9;]*m", "", log.read_text().rsplit("==== start #", 1)[-1])  # noqa: E731
        m = b.wait(lambda: re.findall(r"data plane converged.*?elapsed_ms=(\d+)", since_restart()), 120, 0.05)
        wall = time.monotonic() - t0
        down = [v for v in vcos if b.status(v) != "ipsec_sa_established"]
        sas_after = b.charon.swanctl("--list-sas").stdout.count("ESTABLISHED")
        print(f"   converged {m[-1]} ms after start ({wall:.1f} s from the restart, including start-up); "
              f"{len(vcos) - len(down)}/{len(vcos)} still established; customer IKE SAs {sas_before} → {sas_after}")

        for g in list(b.gateways):
            for c in b.api.call("DescribeVpnConnections", {"VpnGatewayId": g, "PageSize": 50})["VpnConnections"]["VpnConnection"]:
                b.api.call("DeleteVpnConnection", {"VpnConnectionId": c["VpnConnectionId"]})
                b.wait_active(g)
            b.api.call("DeleteVpnGateway", {"VpnGatewayId": g})
        bgp_bench(lab, b, a.bgp)
        ssl_bench(lab, b, a.ssl_clients)
        b.server.stop()
    shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
