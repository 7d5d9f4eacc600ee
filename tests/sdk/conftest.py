"""pytest fixtures: the real gatehouse binary + the official Python SDKs.

Nothing is built here: ./scripts/test.sh runs `cargo build --release --bins`
first (set GATEHOUSE_BIN to test another binary).  Every server is started on
127.0.0.1:0 and stopped by PID at teardown.

GATEHOUSE_TEST_STORE=postgres runs the same tests with every server on a database of its own
(support.STORE); the PostgreSQL instance is the one scripts/test.sh exported, or one this
session starts and stops.
"""

from __future__ import annotations

import logging

import pytest

import support
from support import GatehouseServer, Creds, KINDS, make_api, RawClient

# The classic SDK logs every ServerException at ERROR; error paths are the
# point of many tests here, so keep that out of the report.
logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)


def pytest_report_header(config):
    return f"gatehouse store: {support.STORE}"


@pytest.fixture(scope="session", autouse=True)
def pg_session():
    """Under postgres: the instance, from the main thread (one this session starts is tied to
    the thread that starts it); at the end, stops it if this session started it."""
    if support.STORE == "postgres":
        support.pg_instance()
    yield
    support.stop_pg_instance()


# Session-wide server: fast lifecycle and quotas high enough that the whole
# suite can create freely in the root account.
DEFAULT_ARGS = ["--transition-delay-ms", "200", "--quota-vpn-gateways", "100000",
                "--quota-customer-gateways", "100000"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = GatehouseServer(tmp_path_factory.mktemp("gh-main") / "data", DEFAULT_ARGS, name="main")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory):
    """Transition delay 2 s: init for ~1 s, provisioning for ~1 s, then active."""
    srv = GatehouseServer(tmp_path_factory.mktemp("gh-slow") / "data",
                          ["--transition-delay-ms", "2000"], name="slow")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(tmp_path):
    """start(args, data_dir=None) -> a new running GatehouseServer (stopped at teardown)."""
    started: list[GatehouseServer] = []
    counter = [0]

    def start(args=(), data_dir=None, env=None) -> GatehouseServer:
        counter[0] += 1
        d = data_dir or (tmp_path / f"data{counter[0]}")
        srv = GatehouseServer(d, args, env=env, name=f"extra{counter[0]}")
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def root() -> Creds:
    return Creds(support.ROOT_AK, support.ROOT_SECRET, "root")


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def api(server, root, kind):
    """The root account's client on the session server, once per SDK flavour."""
    return make_api(kind, server.endpoint, root)


@pytest.fixture
def new_account(server):
    """() -> Creds of a brand-new account (CLI) on the session server."""
    return lambda name=None: server.create_account(name)


@pytest.fixture
def fresh_api(server, kind):
    """A client (per SDK flavour) for a brand-new, empty account: for list/count tests."""
    return make_api(kind, server.endpoint, server.create_account())


@pytest.fixture
def raw(server) -> RawClient:
    return RawClient(server.endpoint)
