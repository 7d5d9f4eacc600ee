"""Nothing acknowledged is lost: kill -9 and restart on the same data dir."""

from __future__ import annotations

import signal
import os
import uuid

import pytest

import support
from support import (
    RawClient,
    check_error_body,
    create_gateway,
    describe_gateway,
    expect_error,
    make_api,
    public_ip,
    tags_of,
    wait_gone,
    wait_status,
)


def test_kill9_keeps_acknowledged_writes(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0"])
    api = make_api("classic", srv.endpoint, root)
    g = create_gateway(api, Name="durable-gw", EnableSsl=True, SslConnections=5)
    gw = g["VpnGatewayId"]
    wait_status(api, gw, "active")
    api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "survives-crash"})
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": "durable", "Value": "yes"}]})
    ip = public_ip()
    c = api.call("CreateCustomerGateway", {"IpAddress": ip, "Name": "durable-cgw", "Asn": "65100",
                                           "AuthKey": "durable-key"})
    other = srv.create_account()
    other_gw = create_gateway(make_api("tea-acs3", srv.endpoint, other))["VpnGatewayId"]
    before = describe_gateway(api, gw)
    cgw_before = api.call("DescribeCustomerGateway", {"CustomerGatewayId": c["CustomerGatewayId"]})

    srv.restart(hard=True)  # SIGKILL, then start on the same data dir

    api = make_api("classic", srv.endpoint, root)
    after = describe_gateway(api, gw)
    for f in ("VpnGatewayId", "VpcId", "Name", "Description", "InternetIp", "Spec", "SslVpn", "SslMaxConnections",
              "CreateTime", "EndTime", "Status", "ChargeType"):
        assert after[f] == before[f], (f, before[f], after[f])
    assert tags_of(after) == {"durable": "yes"}
    cgw_after = api.call("DescribeCustomerGateway", {"CustomerGatewayId": c["CustomerGatewayId"]})
    for f in ("IpAddress", "Name", "Asn", "AuthKey", "CreateTime"):
        assert cgw_after[f] == cgw_before[f], f
    # the account and key made with the CLI survive, and so does its gateway
    other_api = make_api("tea-acs3", srv.endpoint, other)
    assert describe_gateway(other_api, other_gw)["VpnGatewayId"] == other_gw
    # uniqueness rules still hold against the restored data
    expect_error(lambda: api.call("CreateCustomerGateway", {"IpAddress": ip}), 400, "InvalidIpAddress.AlreadyExist")


def test_create_then_immediate_kill9(server_factory, root):
    """The 200 of a create is a promise: SIGKILL right after it loses nothing."""
    srv = server_factory(["--transition-delay-ms", "200"])
    raw = support.RawApi(srv.endpoint, root.ak, root.secret)
    gw = create_gateway(raw)["VpnGatewayId"]
    cgw = raw.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
    srv.restart(hard=True)
    raw = support.RawApi(srv.endpoint, root.ak, root.secret)
    assert describe_gateway(raw, gw)["VpnGatewayId"] == gw
    assert raw.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})["CustomerGatewayId"] == cgw
    wait_status(raw, gw, "active")


def test_nonce_replay_survives_restart(server_factory):
    srv = server_factory()
    nonce_v1, nonce_acs3 = uuid.uuid4().hex, uuid.uuid4().hex
    raw = RawClient(srv.endpoint)
    assert raw.rpc("DescribeRegions", nonce=nonce_v1).status == 200
    assert raw.acs3("DescribeRegions", nonce=nonce_acs3).status == 200
    srv.restart(hard=True)
    raw = RawClient(srv.endpoint)
    check_error_body(raw.rpc("DescribeRegions", nonce=nonce_v1), 400, "SignatureNonceUsed")
    check_error_body(raw.acs3("DescribeRegions", nonce=nonce_acs3), 400, "SignatureNonceUsed")
    srv.restart(hard=False)
    raw = RawClient(srv.endpoint)
    check_error_body(raw.rpc("DescribeRegions", nonce=nonce_v1), 400, "SignatureNonceUsed")


def test_transitions_resume_after_crash(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "1500"])
    api = make_api("classic", srv.endpoint, root)
    gw = create_gateway(api)["VpnGatewayId"]
    assert describe_gateway(api, gw)["Status"] == "init"
    srv.restart(hard=True)
    api = make_api("classic", srv.endpoint, root)
    assert describe_gateway(api, gw)["Status"] in ("init", "provisioning", "active")
    wait_status(api, gw, "active", timeout=10)
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    assert describe_gateway(api, gw)["Status"] == "deleting"
    srv.restart(hard=True)
    api = make_api("classic", srv.endpoint, root)
    wait_gone(api, gw, timeout=10)


def test_idempotency_survives_restart(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0"])
    api = make_api("tea-acs3", srv.endpoint, root)
    params = {"VpcId": support.vpc_id(), "Bandwidth": 10, "ClientToken": "restart-" + uuid.uuid4().hex[:10]}
    first = api.call("CreateVpnGateway", params)
    srv.restart(hard=True)
    api = make_api("tea-acs3", srv.endpoint, root)
    again = api.call("CreateVpnGateway", params)
    assert again["VpnGatewayId"] == first["VpnGatewayId"]
    assert api.call("DescribeVpnGateways", {"VpcId": params["VpcId"]})["TotalCount"] == 1


def test_internet_ips_not_reused_after_restart(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0"])
    api = make_api("classic", srv.endpoint, root)
    ips = {describe_gateway(api, create_gateway(api)["VpnGatewayId"])["InternetIp"] for _ in range(3)}
    srv.restart(hard=True)
    api = make_api("classic", srv.endpoint, root)
    for _ in range(3):
        ip = describe_gateway(api, create_gateway(api)["VpnGatewayId"])["InternetIp"]
        assert ip not in ips, ip
        ips.add(ip)


def test_disabled_key_stays_disabled_after_restart(server_factory):
    srv = server_factory()
    creds = srv.create_account()
    srv.disable_key(creds.ak)
    srv.restart(hard=True)
    check_error_body(RawClient(srv.endpoint, creds.ak, creds.secret).rpc("DescribeRegions"), 400,
                     "InvalidAccessKeyId.Inactive")


def test_sigterm_stops_promptly(server_factory):
    srv = server_factory()
    assert RawClient(srv.endpoint).rpc("DescribeRegions").status == 200
    os.kill(srv.proc.pid, signal.SIGTERM)
    srv.proc.wait(timeout=5)
    srv.start()  # and the data dir is reusable right away
    assert RawClient(srv.endpoint).rpc("DescribeRegions").status == 200


def test_data_dir_is_per_server(server_factory, root):
    a = server_factory(["--transition-delay-ms", "0"])
    b = server_factory(["--transition-delay-ms", "0"])
    api_a = make_api("classic", a.endpoint, root)
    api_b = make_api("classic", b.endpoint, root)
    gw = create_gateway(api_a)["VpnGatewayId"]
    expect_error(lambda: describe_gateway(api_b, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
