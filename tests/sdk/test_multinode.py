"""Several `gatehouse serve` nodes on one PostgreSQL database, through the official Python SDKs.

The nodes share the database and the master key (GATEHOUSE_MASTER_KEY), each has a data dir of
its own. What must hold: whatever one node made, the others serve; a nonce spent on one node is
refused on the others; ClientToken answers are shared; the rules that need a serializable view
(one change at a time on a gateway, quotas) hold when nodes race; a task whose node died is
finished by another once its lease runs out; a PostgreSQL restart loses nothing acknowledged,
costs 503 ServiceUnavailable meanwhile (never 500), and the nodes serve again by themselves; a
node waits at start for its database; nodes started at once on an empty database all come up; a
node whose master key does not open the stored secrets refuses to start.

Runs in the PostgreSQL run of the suite (GATEHOUSE_TEST_STORE=postgres, what scripts/test.sh
does second); each test makes databases of its own.
"""

from __future__ import annotations

import http.client
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

import pg
import support
from support import (
    KINDS,
    ApiError,
    Creds,
    GatehouseServer,
    RawClient,
    active_gateway,
    check_error_body,
    create_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    public_ip,
    wait_for,
    wait_gone,
    wait_status,
)

pytestmark = pytest.mark.skipif(
    support.STORE != "postgres",
    reason="nodes share a PostgreSQL database: runs with GATEHOUSE_TEST_STORE=postgres (scripts/test.sh's second run)",
)

ROOT = Creds(support.ROOT_AK, support.ROOT_SECRET, "root")
CGW_NOT_FOUND = "InvalidCustomerGatewayInstanceId.NotFound"
FAST = ("--transition-delay-ms", "200")


class Cluster:
    """Nodes on one database with one master key (and the root key every GatehouseServer gets)."""

    def __init__(self, base: Path, inst: pg.Instance, started: list[GatehouseServer]):
        self.base = base
        self.database = "mn_" + uuid.uuid4().hex[:16]
        self.url = inst.create_database(self.database)
        self.key = secrets.token_hex(32)
        self._started = started
        self._count = 0

    def node(self, *args: str, env: dict | None = None, start: bool = True) -> GatehouseServer:
        self._count += 1
        name = f"node{self._count}"
        srv = GatehouseServer(self.base / name, args, name=name,
                              env={"GATEHOUSE_DATABASE_URL": self.url, "GATEHOUSE_MASTER_KEY": self.key,
                                   **(env or {})})
        self._started.append(srv)
        return srv.start() if start else srv


@pytest.fixture
def cluster(tmp_path):
    """cluster(inst=None) -> a Cluster on a new database of ``inst`` (default: the run's
    instance); every node started is stopped by PID at teardown."""
    started: list[GatehouseServer] = []
    made: list[Cluster] = []

    def make(inst: pg.Instance | None = None) -> Cluster:
        c = Cluster(tmp_path / f"cluster{len(made)}", inst or support.pg_instance(), started)
        made.append(c)
        return c

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def private_pg():
    """A PostgreSQL instance of this test's own (to restart it), removed at teardown."""
    inst = pg.Instance.create(tied=True)
    yield inst
    inst.remove()


def race(calls: list[Callable[[], Any]], timeout: float = 30.0) -> list[Any]:
    """Run the calls at the same moment, a thread each; their results or exceptions, in order."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout)
            out[i] = fn()
        except BaseException as e:  # noqa: BLE001 - the caller judges every outcome
            out[i] = e

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"a racing call did not return within {timeout}s"
    return out


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "RequestId"}


def all_cgws(api) -> dict[str, dict]:
    """Every customer gateway of the caller (all pages), by id."""
    out: dict[str, dict] = {}
    for page in range(1, 1000):
        body = api.call("DescribeCustomerGateways", {"PageSize": 50, "PageNumber": page})
        batch = items(body, "CustomerGateways", "CustomerGateway")
        out.update({x["CustomerGatewayId"]: x for x in batch})
        if len(batch) < 50:
            return out
    raise AssertionError("more than 1000 pages of customer gateways")


def listing(api) -> tuple[dict, dict]:
    gws = items(api.call("DescribeVpnGateways", {"PageSize": 50}), "VpnGateways", "VpnGateway")
    return ({g["VpnGatewayId"]: (g["Name"], g["Status"], g["InternetIp"]) for g in gws},
            {c: x["Name"] for c, x in all_cgws(api).items()})


# ---------------------------------------------------------------- one store, any node


def test_every_node_serves_what_another_made(cluster):
    c = cluster()
    nodes = [c.node(*FAST) for _ in range(3)]
    api_a, api_b, api_c = (make_api(k, n.endpoint, ROOT) for k, n in zip(KINDS, nodes))

    gw = create_gateway(api_a, Name="made-on-a")["VpnGatewayId"]
    ip = public_ip()
    cgw = api_a.call("CreateCustomerGateway", {"IpAddress": ip, "Name": "cgw-on-a", "Asn": "65010"})[
        "CustomerGatewayId"]
    # The lifecycle runs on whichever node claims it; every node sees it end.
    wait_status(api_b, gw, "active")
    on_a, on_b = describe_gateway(api_a, gw), describe_gateway(api_c, gw)
    for f in ("VpnGatewayId", "VpcId", "Name", "InternetIp", "Spec", "CreateTime", "Status"):
        assert on_a[f] == on_b[f], (f, on_a[f], on_b[f])
    got = api_b.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert (got["IpAddress"], got["Name"], got["Asn"]) == (ip, "cgw-on-a", 65010), got

    api_b.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "renamed-on-b"})
    api_b.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "cgw-renamed-on-b"})
    internet_ip = on_a["InternetIp"]
    want = ({gw: ("renamed-on-b", "active", internet_ip)}, {cgw: "cgw-renamed-on-b"})
    for api in (api_a, api_b, api_c):
        assert listing(api) == want, api.kind

    api_b.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
    expect_error(lambda: api_a.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw}), 404, CGW_NOT_FOUND)
    api_b.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    wait_gone(api_c, gw)
    for api in (api_a, api_b, api_c):
        assert listing(api) == ({}, {}), api.kind


def test_an_account_made_through_one_node_signs_on_every_node(cluster):
    c = cluster()
    a, b = c.node(*FAST), c.node(*FAST)
    creds = a.create_account()
    gw = create_gateway(make_api("tea-acs3", b.endpoint, creds))["VpnGatewayId"]
    assert describe_gateway(make_api("classic", a.endpoint, creds), gw)["VpnGatewayId"] == gw
    # Disabled through one node's CLI: refused at once by every node, though both have used it.
    b.disable_key(creds.ak)
    for n in (a, b):
        check_error_body(RawClient(n.endpoint, creds.ak, creds.secret).rpc("DescribeRegions"), 400,
                         "InvalidAccessKeyId.Inactive")


# ---------------------------------------------------------------- replay and idempotency


def test_nodes_started_together_on_an_empty_database(cluster):
    """Migrations and the root account are made once, whichever node gets there first."""
    c = cluster()
    nodes = [c.node(*FAST, start=False) for _ in range(3)]
    barrier, release = threading.Barrier(3), threading.Event()
    errors: list[BaseException] = []

    def start(n: GatehouseServer) -> None:
        try:
            barrier.wait(10)
            n.start(timeout=30)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        release.wait(60)  # a node dies with the thread that started it

    threads = [threading.Thread(target=start, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: errors or all(n.port for n in nodes), timeout=40, what="three nodes listening")
        assert not errors, errors
        gw = create_gateway(make_api("classic", nodes[0].endpoint, ROOT))["VpnGatewayId"]
        for k, n in zip(KINDS, nodes):
            assert describe_gateway(make_api(k, n.endpoint, ROOT), gw)["VpnGatewayId"] == gw
    finally:
        release.set()
        for t in threads:
            t.join(10)


def test_a_nonce_spent_on_one_node_is_refused_on_the_others(cluster):
    c = cluster()
    a, b = c.node(), c.node()
    ra, rb = RawClient(a.endpoint), RawClient(b.endpoint)

    # The very same signed bytes (timestamp, nonce, signature), replayed to the other node.
    first = ra.rpc("DescribeRegions", placement="body")
    assert first.status == 200, first
    p = dict(first.sent_params)
    p["Signature"] = support.rpc_v1_sign("POST", p, ra.secret)
    form = support._encode(p).encode()
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    check_error_body(rb.send("POST", "/", form, hdrs), 400, "SignatureNonceUsed")

    nonce = uuid.uuid4().hex
    assert rb.acs3("DescribeRegions", nonce=nonce).status == 200
    check_error_body(ra.acs3("DescribeRegions", nonce=nonce), 400, "SignatureNonceUsed")

    # Both nodes at once: one of them takes the nonce.
    for _ in range(5):
        p = ra.rpc_params("DescribeRegions")
        p["Signature"] = support.rpc_v1_sign("POST", p, ra.secret)
        form = support._encode(p).encode()
        out = race([lambda cl=cl: cl.send("POST", "/", form, hdrs) for cl in (ra, rb)])
        assert sorted(r.status for r in out) == [200, 400], out
        check_error_body(next(r for r in out if r.status == 400), 400, "SignatureNonceUsed")


def test_client_token_answers_are_shared(cluster):
    c = cluster()
    nodes = [c.node() for _ in range(3)]
    apis = [make_api(k, n.endpoint, ROOT) for k, n in zip(KINDS, nodes)]

    params = {"IpAddress": public_ip(), "Name": "token-cgw", "ClientToken": "mn-" + support.rand_suffix(12)}
    first = apis[0].call("CreateCustomerGateway", params)
    again = apis[1].call("CreateCustomerGateway", params)
    assert without_request_id(again) == without_request_id(first)
    expect_error(lambda: apis[2].call("CreateCustomerGateway", dict(params, Name="other-name")), 400,
                 "IdempotentParameterMismatch")
    made = {first["CustomerGatewayId"]}

    # The same request through every node at once: one customer gateway, one answer.
    for _ in range(3):
        params = {"IpAddress": public_ip(), "ClientToken": "mn-" + support.rand_suffix(12)}
        clients = [make_api(KINDS[i % 3], nodes[i % 3].endpoint, ROOT) for i in range(6)]
        out = race([lambda api=api: api.call("CreateCustomerGateway", params) for api in clients])
        assert all(isinstance(o, dict) for o in out), out
        assert len({o["CustomerGatewayId"] for o in out}) == 1, out
        made.add(out[0]["CustomerGatewayId"])
    for api in apis:
        assert set(all_cgws(api)) == made, api.kind


# ---------------------------------------------------------------- serializable rules under races


def test_one_of_two_simultaneous_connections_on_a_gateway_is_accepted(cluster):
    c = cluster()
    # A change keeps the gateway `updating` for 1 s: the two calls meet well within that.
    a, b = c.node("--transition-delay-ms", "1000"), c.node("--transition-delay-ms", "1000")
    api_a, api_b = make_api("classic", a.endpoint, ROOT), make_api("tea-acs3", b.endpoint, ROOT)
    for _ in range(4):
        gw = active_gateway(api_a)["VpnGatewayId"]
        cgws = [api_b.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"] for _ in (1, 2)]
        calls = [
            lambda api=api, cgw=cgw, n=n: api.call("CreateVpnConnection", {
                "VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
                "RemoteSubnet": f"192.168.{n}.0/24"})
            for n, (api, cgw) in enumerate(zip((api_a, api_b), cgws))
        ]
        out = race(calls)
        accepted = [o for o in out if isinstance(o, dict)]
        refused = [o for o in out if isinstance(o, ApiError)]
        assert len(accepted) == 1 and len(refused) == 1, out
        assert (refused[0].status, refused[0].code) == (400, "VpnGateway.Configuring"), refused[0]
        wait_status(api_b, gw, "active")
        for api in (api_a, api_b):
            body = api.call("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 50})
            listed = [x["VpnConnectionId"] for x in items(body, "VpnConnections", "VpnConnection")]
            assert listed == [accepted[0]["VpnConnectionId"]], (api.kind, listed)


def test_the_quota_holds_across_nodes(cluster):
    c = cluster()
    nodes = [c.node("--quota-customer-gateways", "5") for _ in range(3)]
    for _ in range(2):
        creds = nodes[0].create_account()  # a fresh account: its quota is untouched
        clients = [make_api(KINDS[i % 3], nodes[i % 3].endpoint, creds) for i in range(12)]
        out = race([lambda api=api: api.call("CreateCustomerGateway", {"IpAddress": public_ip()})
                    for api in clients])
        created = {o["CustomerGatewayId"] for o in out if isinstance(o, dict)}
        refused = [o for o in out if not isinstance(o, dict)]
        assert len(created) == 5, out
        assert all(isinstance(e, ApiError) and (e.status, e.code) == (400, "Resource.QuotaFull") for e in refused), \
            refused
        for n in nodes:
            assert set(all_cgws(make_api("classic", n.endpoint, creds))) == created


# ---------------------------------------------------------------- failures


def test_a_task_whose_node_died_is_finished_by_another(cluster):
    c = cluster()
    slow = ("--transition-delay-ms", "3000", "--task-lease-ms", "1000")
    a = c.node(*slow)
    api_a = make_api("classic", a.endpoint, ROOT)
    gw = create_gateway(api_a)["VpnGatewayId"]
    # Halfway (init ~1.5 s, then provisioning ~1.5 s): A has the task in hand when it dies.
    wait_for(lambda: describe_gateway(api_a, gw)["Status"] == "provisioning", timeout=10, what="provisioning")
    a.kill9()

    b = c.node(*slow)
    api_b = make_api("tea-acs3", b.endpoint, ROOT)
    assert describe_gateway(api_b, gw)["Status"] in ("init", "provisioning")
    # A's lease runs out (1 s), B takes the task over and finishes it.
    d = wait_status(api_b, gw, "active", timeout=20)
    assert d["InternetIp"], d
    # B alone runs what comes next.
    api_b.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    wait_gone(api_b, gw, timeout=20)


@pytest.mark.parametrize("how", ["crash", "fast-shutdown"])
def test_nothing_acknowledged_is_lost_when_postgres_restarts(private_pg, cluster, how):
    c = cluster(private_pg)
    args = (*FAST, "--quota-customer-gateways", "100000")  # the load may create hundreds
    a, b = c.node(*args), c.node(*args)
    pids = (a.proc.pid, b.proc.pid)
    lock = threading.Lock()
    acked: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    deadline = time.monotonic() + 90

    def load(i: int) -> None:
        # The hand signer: a refused connection is told apart from an answer, exactly.
        api = make_api("raw", (a, b)[i % 2].endpoint, ROOT)
        for _ in range(1000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                cgw = api.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
                with lock:
                    acked.append(cgw)
            except Exception as e:  # noqa: BLE001 - judged below
                with lock:
                    failures.append(e)
                time.sleep(0.1)

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 10, timeout=20, what="creates under load")
        if how == "crash":  # the postmaster and its backends die at once: only what was fsynced survives
            private_pg.kill9()
        else:  # sessions are ended, open transactions rolled back
            private_pg.stop()
        # Meanwhile each node answers, promptly: 503 ServiceUnavailable.
        for n in (a, b):
            t0 = time.monotonic()
            expect_error(lambda: make_api("raw", n.endpoint, ROOT).call("DescribeCustomerGateways"), 503,
                         "ServiceUnavailable")
            assert time.monotonic() - t0 < 10
        time.sleep(1)
        private_pg.start()
        # Both nodes serve again by themselves, and the load goes on succeeding.
        for n in (a, b):
            api = make_api("raw", n.endpoint, ROOT)
            wait_for(lambda: _serves(api), timeout=30, what=f"{n.name} to serve again")
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 10, timeout=30, what="creates after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert (a.proc.pid, b.proc.pid) == pids and a.alive() and b.alive(), "a node was restarted or died"

    def expected(e: BaseException) -> bool:
        if isinstance(e, ApiError):
            return (e.status, e.code) == (503, "ServiceUnavailable")
        return isinstance(e, (ConnectionError, http.client.HTTPException, TimeoutError))

    assert not [e for e in failures if not expected(e)], [repr(e) for e in failures if not expected(e)][:10]
    for n in (a, b):
        stored = all_cgws(make_api("classic", n.endpoint, ROOT))
        lost = set(acked) - set(stored)
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged creates lost: {sorted(lost)[:5]}"


def _serves(api) -> bool:
    try:
        api.call("DescribeCustomerGateways", {"PageSize": 1})
        return True
    except ApiError as e:
        assert (e.status, e.code) == (503, "ServiceUnavailable"), e
        return False
    except (ConnectionError, http.client.HTTPException, TimeoutError):
        return False


def test_a_node_waits_at_start_for_the_database(private_pg, cluster):
    c = cluster(private_pg)
    c.node(*FAST).stop()  # the database holds a store already
    private_pg.stop()
    up_at: list[float] = []
    release = threading.Event()

    def bring_up() -> None:
        time.sleep(2)
        private_pg.start()
        up_at.append(time.monotonic())
        release.wait(60)  # the server dies with the thread that started it

    t = threading.Thread(target=bring_up, daemon=True)
    t.start()
    try:
        b = c.node(*FAST)  # waits (bounded) for the listening line
        assert up_at and time.monotonic() >= up_at[0], "the node was listening while its database was down"
        assert make_api("classic", b.endpoint, ROOT).call("DescribeRegions")["Regions"]["Region"]
    finally:
        release.set()
        t.join(30)


def test_a_node_with_another_master_key_refuses_to_start(cluster):
    c = cluster()
    a = c.node()
    gw_api = make_api("classic", a.endpoint, ROOT)
    creds = a.create_account()
    # GATEHOUSE_MASTER_KEY set to another key, or not set (a fresh data dir's own master.key).
    other = c.node(env={"GATEHOUSE_MASTER_KEY": secrets.token_hex(32)}, start=False)
    lone = c.node(start=False)
    lone.env.pop("GATEHOUSE_MASTER_KEY")
    for wrong in (other, lone):
        with pytest.raises(RuntimeError, match="exited before listening"):
            wrong.start()
        assert "master key" in wrong.log_tail(10**6), wrong.log_tail()
    with pytest.raises(AssertionError, match="master key"):
        other.cli("keys", "list")
    # The refused nodes changed nothing: the right key still opens every secret.
    assert gw_api.call("DescribeRegions")["Regions"]["Region"]
    assert make_api("tea-acs3", a.endpoint, creds).call("DescribeRegions")["Regions"]["Region"]
    same = c.node()
    assert make_api("tea-v2", same.endpoint, creds).call("DescribeRegions")["Regions"]["Region"]
