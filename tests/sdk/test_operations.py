"""What an operator sees: one log line per request (text or JSON, never a secret), admin commands
that refuse a directory (or database) without Gatehouse data, a second start that says how to get a key, and a
throwaway store with --ephemeral.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import support
from support import Creds, GatehouseServer, ROOT_AK, ROOT_SECRET, create_gateway, expect_error, make_api

ROOT = Creds(ROOT_AK, ROOT_SECRET, "root")


def test_json_logs_carry_one_line_per_request_and_no_secret(tmp_path):
    srv = GatehouseServer(tmp_path / "data", ["--transition-delay-ms", "0"], env={"GATEHOUSE_LOG_FORMAT": "json"},
                          name="json")
    srv.start()
    try:
        api = make_api("classic", srv.endpoint, ROOT)
        gw = create_gateway(api)["VpnGatewayId"]
        expect_error(lambda: api.call("DescribeVpnGateway", {"VpnGatewayId": "vpn-" + "z" * 21}), 404,
                     "InvalidVpnGatewayInstanceId.NotFound")
    finally:
        srv.stop()
    events = []
    for line in Path(srv.log_path).read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    requests = [e for e in events if e.get("message") == "request"]
    by_action = {e["action"]: e for e in requests}
    ok, missing = by_action["CreateVpnGateway"], by_action["DescribeVpnGateway"]
    assert (ok["code"], ok["status"], ok["account"]) == ("Success", 200, 1), ok
    assert (missing["code"], missing["status"]) == ("InvalidVpnGatewayInstanceId.NotFound", 404), missing
    assert all(isinstance(e["latency_ms"], float) and e["request_id"] for e in requests)
    # Lifecycle transitions are logged too.
    assert any(e.get("message") == "gateway" and e.get("gateway") == gw for e in events), events[-10:]
    text = Path(srv.log_path).read_text()
    assert ROOT_SECRET not in text and "\x1b[" not in text


def test_admin_commands_refuse_a_store_without_data(tmp_path):
    empty = tmp_path / "nothing-here"
    env = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_DATABASE_URL"}
    if support.STORE == "postgres":
        db = support.new_database()
        env["GATEHOUSE_DATABASE_URL"] = support.pg_instance().url(db)
    res = subprocess.run([str(support.BIN), "keys", "list", "--data-dir", str(empty)], capture_output=True,
                         text=True, timeout=30, env=env)
    assert res.returncode != 0 and "holds no Gatehouse data" in res.stderr, res.stderr
    assert not empty.exists(), "an admin command must not create a data directory"
    if support.STORE == "postgres":
        assert support.pg_instance().psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db).strip() \
            == "0", "an admin command must not create the schema"


def test_a_second_start_says_how_to_get_a_key(tmp_path):
    srv = GatehouseServer(tmp_path / "data", [], env={"GATEHOUSE_ROOT_ACCESS_KEY_ID": "",
                                                      "GATEHOUSE_ROOT_ACCESS_KEY_SECRET": ""}, name="second")
    srv.start()
    srv.stop()
    srv.start()
    srv.stop()
    log = Path(srv.log_path).read_text()
    assert log.count("Created the root account's AccessKey") == 1, log
    assert "gatehouse keys create --account root" in log, log


def test_ephemeral_store_starts_clean_and_leaves_nothing(tmp_path):
    srv = GatehouseServer(tmp_path / "data", ["--ephemeral", "--transition-delay-ms", "0"], name="ephemeral")
    srv.start()
    try:
        api = make_api("classic", srv.endpoint, ROOT)
        create_gateway(api)
        assert api.call("DescribeVpnGateways", {})["TotalCount"] == 1
        log = Path(srv.log_path).read_text()
        ephemeral = [w for w in log.split() if "gatehouse-ephemeral-" in w]
        assert ephemeral, log
        store = Path(ephemeral[0].rstrip(";,.`"))
        assert store.exists()
    finally:
        srv.stop()
    assert not store.exists(), f"{store} left behind"
    assert not any((tmp_path / "data").iterdir()), "--data-dir is not used with --ephemeral"
    # The next ephemeral start begins empty.
    srv.start()
    try:
        assert make_api("classic", srv.endpoint, ROOT).call("DescribeVpnGateways", {})["TotalCount"] == 0
    finally:
        srv.stop()


@pytest.mark.skipif(support.STORE != "postgres", reason="needs the PostgreSQL run's instance")
def test_ephemeral_refuses_a_database_url(tmp_path):
    url = support.pg_instance().url(support.new_database())
    env = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_DATABASE_URL"}
    res = subprocess.run([str(support.BIN), "serve", "--listen", "127.0.0.1:0", "--ephemeral", "--data-dir",
                          str(tmp_path / "d"), "--database-url", url], capture_output=True, text=True, timeout=10,
                         env=env, stdin=subprocess.DEVNULL)
    assert res.returncode != 0 and "--ephemeral" in res.stderr and "--database-url" in res.stderr, res.stderr
