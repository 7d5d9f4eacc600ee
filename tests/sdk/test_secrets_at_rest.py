"""Secrets are sealed at rest and never logged: AccessKey secrets, pre-shared keys and BGP
authentication keys appear in no file of the data directory (database, WAL) nor in the
server's log, while the API still returns PSK and AuthKey to their owner. On PostgreSQL: in
nothing the database holds (pg_dump) nor in the WAL written meanwhile."""

from __future__ import annotations

import json
import time

import pytest

import support
from support import ROOT_AK, ROOT_SECRET, ClassicApi, GatehouseServer, public_ip, vpc_id, wait_for

PSK = "PskAtRest-7f3a9c"
AUTH_KEY = "BgpKeyAtRest-41d2"


def test_secrets_never_reach_disk_or_log_in_clear(server_factory, tmp_path):
    t0 = time.time()
    srv = server_factory(["--transition-delay-ms", "0"])
    creds = srv.create_account()
    api = ClassicApi(srv.endpoint, creds.ak, creds.secret)

    gw = api.call("CreateVpnGateway", {"VpcId": vpc_id(), "Bandwidth": 10})["VpnGatewayId"]
    wait_for(lambda: api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active", what="gateway active")
    cgw = api.call("CreateCustomerGateway", {"IpAddress": public_ip(), "Asn": "65010", "AuthKey": AUTH_KEY})[
        "CustomerGatewayId"
    ]
    vco = api.call(
        "CreateVpnConnection",
        {
            "VpnGatewayId": gw,
            "CustomerGatewayId": cgw,
            "LocalSubnet": "10.0.0.0/16",
            "RemoteSubnet": "192.168.0.0/24",
            "IkeConfig": json.dumps({"Psk": PSK}),
        },
    )["VpnConnectionId"]
    wait_for(lambda: api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["Status"] == "active", what="applied")

    # Their owner reads them back in clear.
    assert api.call("DescribeVpnConnection", {"VpnConnectionId": vco})["IkeConfig"]["Psk"] == PSK
    assert api.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})["AuthKey"] == AUTH_KEY

    # Stop hard so nothing is tidied up first: the WAL is read as it was left.
    srv.kill9()
    files = [p for p in srv.data_dir.rglob("*") if p.is_file()]
    if support.STORE == "sqlite":
        assert any(p.name.startswith("gatehouse.db") for p in files), files
    else:
        inst = support.pg_instance()
        dump = tmp_path / "dump.sql"
        dump.write_bytes(inst.dump(srv.database))
        assert cgw.encode() in dump.read_bytes(), "the dump does not hold the stored rows"
        # Every WAL segment written while this test ran (old row versions included).
        wal = [p for p in (inst.data / "pg_wal").iterdir() if p.is_file() and p.stat().st_mtime >= t0 - 1]
        assert any(cgw.encode() in p.read_bytes() for p in wal), "the WAL scanned is not this test's"
        files += [dump, *wal]
    secrets = [creds.secret, srv.env["GATEHOUSE_ROOT_ACCESS_KEY_SECRET"], PSK, AUTH_KEY]
    for path in [*files, srv.log_path]:
        data = path.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"{s!r} found in clear in {path}"


def test_a_master_key_that_does_not_open_the_stored_secrets_is_refused(server_factory, tmp_path):
    """Another key (GATEHOUSE_MASTER_KEY, or another directory's master.key) would fail every
    signed request and seal new secrets the right key cannot open: the server and the admin
    commands refuse to start with it, and the data stays as it was."""
    srv = server_factory(env={"GATEHOUSE_MASTER_KEY": "ab" * 32})
    srv.stop()
    wrong = GatehouseServer(srv.data_dir, env={"GATEHOUSE_MASTER_KEY": "cd" * 32}, name="wrong-key")
    with pytest.raises(RuntimeError, match="exited before listening"):
        wrong.start()
    assert "the master key does not open the secrets stored in" in wrong.log_tail(10**6)
    with pytest.raises(AssertionError, match="the master key does not open the secrets"):
        wrong.cli("keys", "list")
    # The right key still opens everything: the refused starts changed nothing.
    srv.start()
    assert ClassicApi(srv.endpoint, ROOT_AK, ROOT_SECRET).call("DescribeRegions")["Regions"]["Region"]
