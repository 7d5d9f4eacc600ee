"""Gateway hosts: two gateway-mode nodes on one PostgreSQL database, each running the gateways
assigned to it, with real strongSwan on both sides of the tunnel.

Node ``a`` (the site's) and node ``b`` share the database and the master key, each with a data
dir and a namespace prefix of its own, both on the site's uplink and VPC bridges. What must hold:
both hosts are listed live; a gateway runs on the host it is assigned to (its namespace and
charon there, none on the other) and a move hands it over (the former host lets go first);
statuses seen through either node's API come from the host that runs the gateway; when that
host dies (its node killed with -9, its namespaces gone with the machine) the other node marks it
down within the host lease and shows the gateway's connection down; moving the gateway to the
live host brings the tunnel back and packets cross it again; the dead host, restarted, is live
again and runs nothing that moved away. A host that only stalls past the lease is shown down
too, and reports its gateways again when it resumes.

Runs in the PostgreSQL run of the suite (GATEHOUSE_TEST_STORE=postgres).
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import pytest

import support
from lab import Lab, machine_problem, netns_list, pid_alive, pid_namespaces, skip_loudly
from support import GatehouseServer, describe_gateway, wait_status
from test_gateway_ipsec import (APPLY, ESTABLISHED, GATEWAY_READY, NOT_ESTABLISHED, UP, Env, LiveApi, Site,
                                until)

pytestmark = pytest.mark.skipif(
    support.STORE != "postgres",
    reason="gateway hosts share a PostgreSQL database: runs with GATEHOUSE_TEST_STORE=postgres",
)

LEASE_MS = 2000
# Down within the lease, plus a heartbeat's wait and the API's polling.
DOWN_WITHIN = LEASE_MS / 1000 * 2 + 2


class Hosts:
    """The site's node as host ``a`` and a second node, host ``b``, on one database."""

    def __init__(self, lab: Lab, logs: Path):
        self.site = Site(lab, logs)
        a = self.site.server
        database = support.new_database("hosts")
        self.env = env = {"GATEHOUSE_DATABASE_URL": support.pg_instance().url(database),
               "GATEHOUSE_MASTER_KEY": secrets.token_hex(32), "GATEHOUSE_HOST_LEASE_MS": str(LEASE_MS)}
        self.site.server = GatehouseServer(a.data_dir, [*a.args, "--host-name", "a"], env=env, name="netns")
        self.b_prefix = f"{lab.prefix}b"
        b_args = list(a.args)
        b_args[b_args.index("--netns-prefix") + 1] = self.b_prefix
        self.b_dir = lab.dir / "b"
        self.b = GatehouseServer(self.b_dir, [*b_args, "--host-name", "b"], env=env, name="netns")

    @property
    def a(self) -> GatehouseServer:
        return self.site.server

    def list(self) -> dict[str, tuple[str, int]]:
        """`gatehouse hosts list`: name -> (live/down, gateways)."""
        out = {}
        for line in self.a.cli("hosts", "list").stdout.splitlines():
            name, state, gateways, _age = line.split("\t")
            out[name] = (state, int(gateways))
        return out

    def host_of(self, gw: str) -> str:
        for line in self.a.cli("hosts", "gateways").stdout.splitlines():
            gid, _account, host, _status = line.split("\t")
            if gid == gw:
                return host
        raise AssertionError(f"{gw} is not listed by `gatehouse hosts gateways`")

    def move(self, gw: str, to: str) -> str:
        return self.a.cli("hosts", "move", gw, "--to", to).stdout

    def netns(self, host: str, gw: str) -> str:
        return self.site.netns_of(gw) if host == "a" else f"{self.b_prefix}{gw}"

    def pid_file(self, host: str, gw: str) -> Path:
        return (self.site.dataplane_dir(gw) if host == "a" else self.b_dir / "dataplane" / gw) / "charon.pid"

    def runs(self, host: str, gw: str) -> bool:
        """Whether ``host`` runs the gateway: its namespace exists and its charon lives in it."""
        ns = self.netns(host, gw)
        if ns not in netns_list():
            return False
        try:
            pid = int(self.pid_file(host, gw).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        return pid_alive(pid) and ns in pid_namespaces(pid)


@pytest.fixture(scope="module")
def hosts(request, tmp_path_factory):
    problem = machine_problem()
    if problem is not None:
        skip_loudly(request, "gateway host tests", problem, "root, network namespaces and strongSwan")
    logs = tmp_path_factory.mktemp("gateway-hosts")
    lab = Lab()
    h = None
    try:
        h = Hosts(lab, logs)
        h.a.start()
        h.b.start()
        yield h
    finally:
        if h is not None:
            h.a.stop()
            h.b.stop()
            h.site.save_logs()
        problems = lab.cleanup()
        if problems:
            import warnings
            warnings.warn(f"lab cleanup: {problems}")


def test_a_gateway_runs_on_its_host_and_is_down_when_that_host_dies(hosts: Hosts):
    site, api = hosts.site, hosts.site.api()
    env = Env(site)

    def diag() -> str:
        return f"{env.diag()}\n--- host b's log ({hosts.b.log_path}):\n{hosts.b.log_tail(3000)}"

    try:
        assert hosts.list() == {"a": ("live", 0), "b": ("live", 0)}

        gw_id = api.call("CreateVpnGateway", {"VpcId": site.vpcs["a"][0], "Bandwidth": 10})["VpnGatewayId"]
        env.gateways.append((api, gw_id))
        for h in ("a", "b"):
            site.lab.adopt_gateway(hosts.netns(h, gw_id), hosts.pid_file(h, gw_id))
        wait_status(api, gw_id, "active", timeout=GATEWAY_READY)
        first = hosts.host_of(gw_id)
        assert first in ("a", "b")
        until(lambda: hosts.runs(first, gw_id), GATEWAY_READY, f"{gw_id} running on host {first}", diag)

        # Whichever host it went to, it moves to b: a lets go of it first, b runs it.
        assert hosts.move(gw_id, "b").strip() == f"{gw_id}: {first} -> b"
        until(lambda: hosts.runs("b", gw_id) and hosts.netns("a", gw_id) not in netns_list(), GATEWAY_READY,
              f"{gw_id} running on b alone", diag)
        assert hosts.host_of(gw_id) == "b"
        assert hosts.list() == {"a": ("live", 0), "b": ("live", 1)}

        # A connection made through a's API runs on b; its status, read through a, is b's report.
        gw = describe_gateway(api, gw_id)
        cust = env.customer()
        vpc = env.vpc_host(gw, cust.lan)
        vco = env.connect(gw, env.customer_gateway(cust.ips[0]), cust.lan)
        env.bring_up(cust, vco)
        env.ping_both_ways(cust, vpc)
        b_api = LiveApi(hosts.b, site.root)
        assert env.status(vco, b_api) == ESTABLISHED

        # b stalls (SIGSTOP) past the lease: shown down, its tunnel untouched; b resumes, finds
        # the mark and reports its connection again.
        os.kill(hosts.b.proc.pid, signal.SIGSTOP)
        try:
            until(lambda: env.status(vco) == NOT_ESTABLISHED, DOWN_WITHIN, f"{vco} shown down while b stalls", diag)
            assert hosts.list()["b"] == ("down", 1)
        finally:
            os.kill(hosts.b.proc.pid, signal.SIGCONT)
        until(lambda: env.status(vco) == ESTABLISHED, 10, f"{vco} reported again by b", diag)
        assert hosts.list()["b"] == ("live", 1)

        # Host b dies: its node is killed and its gateway's namespace goes with the machine.
        hosts.b.kill9()
        reaped = site.lab.reap_gateway(hosts.netns("b", gw_id), hosts.pid_file("b", gw_id))
        assert reaped, "b's gateway namespace was running"
        until(lambda: env.status(vco) == NOT_ESTABLISHED, DOWN_WITHIN, f"{vco} shown down once b is silent", diag)
        assert hosts.list()["b"] == ("down", 1)
        assert env.describe(vco)["Status"] == NOT_ESTABLISHED

        # The operator moves the gateway to a: a starts it, the tunnel comes back, packets cross.
        assert hosts.move(gw_id, "a").strip() == f"{gw_id}: b -> a"
        until(lambda: hosts.runs("a", gw_id), GATEWAY_READY, f"{gw_id} running on a", diag)
        wait_status(api, gw_id, "active", timeout=APPLY)
        env.wait_status(vco, ESTABLISHED, timeout=UP * 2)
        env.ping_both_ways(cust, vpc)
        assert hosts.list()["a"] == ("live", 1)

        # b comes back: live again, running nothing (its gateway moved away).
        hosts.b.start()
        until(lambda: hosts.list().get("b") == ("live", 0), 10, "b live again", diag)
        assert hosts.netns("b", gw_id) not in netns_list()
        assert hosts.runs("a", gw_id)
    finally:
        problems = env.close()
        assert not problems, problems


def test_a_host_name_is_one_nodes_at_a_time(hosts: Hosts, tmp_path):
    """A second node under a live host's name is refused at start, with a message that says why."""
    args = list(hosts.b.args)
    args[args.index("--netns-prefix") + 1] = f"{hosts.b_prefix}x"
    args[args.index("--host-name") + 1] = "a"
    twin = GatehouseServer(tmp_path / "twin", args, env=hosts.env, name="netns")
    with pytest.raises(Exception):
        twin.start(timeout=5)
    twin.stop()
    log = twin.log_path.read_text("utf-8", "replace")
    assert "another live node runs as gateway host \"a\"" in log, log[:3000]
