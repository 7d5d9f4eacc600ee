"""Accounts and access keys: the CLI, isolation, disabled and unknown keys."""

from __future__ import annotations

import pytest

from support import RawClient, check_error_body, create_gateway, describe_gateway, expect_error, make_api


def test_second_account_works_and_is_isolated(server, root, kind):
    creds = server.create_account()
    theirs = make_api(kind, server.endpoint, creds)
    mine = make_api(kind, server.endpoint, root)
    assert theirs.call("DescribeRegions")["Regions"]["Region"]
    assert theirs.call("DescribeVpnGateways")["TotalCount"] == 0
    assert theirs.call("DescribeCustomerGateways")["TotalCount"] == 0
    g = create_gateway(theirs)
    assert describe_gateway(theirs, g["VpnGatewayId"])["VpnGatewayId"] == g["VpnGatewayId"]
    expect_error(lambda: describe_gateway(mine, g["VpnGatewayId"]), 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert theirs.call("DescribeVpnGateways")["TotalCount"] == 1


def test_two_keys_of_one_account_share_resources(server):
    creds = server.create_account()
    second = server.create_key(creds.account)
    assert second.ak != creds.ak
    a = make_api("classic", server.endpoint, creds)
    b = make_api("tea-acs3", server.endpoint, second)
    g = create_gateway(a)
    assert describe_gateway(b, g["VpnGatewayId"])["VpnGatewayId"] == g["VpnGatewayId"]


def test_disabled_key(server, kind):
    creds = server.create_account()
    spare = server.create_key(creds.account)
    api = make_api(kind, server.endpoint, creds)
    g = create_gateway(api)
    server.disable_key(creds.ak)
    expect_error(lambda: api.call("DescribeRegions"), 400, "InvalidAccessKeyId.Inactive")
    expect_error(lambda: describe_gateway(api, g["VpnGatewayId"]), 400, "InvalidAccessKeyId.Inactive")
    # the account's other key is unaffected
    other = make_api(kind, server.endpoint, spare)
    assert describe_gateway(other, g["VpnGatewayId"])["VpnGatewayId"] == g["VpnGatewayId"]


def test_disabled_key_error_body(server):
    creds = server.create_account()
    server.disable_key(creds.ak)
    r = RawClient(server.endpoint, creds.ak, creds.secret).rpc("DescribeRegions")
    check_error_body(r, 400, "InvalidAccessKeyId.Inactive")
    r = RawClient(server.endpoint, creds.ak, creds.secret).acs3("DescribeRegions")
    check_error_body(r, 400, "InvalidAccessKeyId.Inactive")


def test_disabled_key_with_wrong_secret_is_not_an_oracle(server):
    """A disabled key with a wrong secret must not reveal more than a bad signature would."""
    creds = server.create_account()
    server.disable_key(creds.ak)
    r = RawClient(server.endpoint, creds.ak, "wrong-secret").rpc("DescribeRegions")
    assert r.status == 400, r
    assert r.json()["Code"] in ("SignatureDoesNotMatch", "InvalidAccessKeyId.Inactive"), r


def test_keys_list_shows_ids_not_secrets(server):
    creds = server.create_account()
    out = server.cli("keys", "list")
    text = out.stdout + out.stderr
    assert creds.ak in text
    assert creds.secret not in text


def test_key_secrets_are_random(server):
    creds = [server.create_account() for _ in range(3)]
    assert len({c.ak for c in creds}) == 3
    assert len({c.secret for c in creds}) == 3
    for c in creds:
        assert len(c.secret) >= 20, c


@pytest.mark.parametrize("k", ["classic", "tea-acs3"])
def test_new_key_works_immediately_while_serving(server, k):
    creds = server.create_account()
    assert make_api(k, server.endpoint, creds).call("DescribeVpnGateways")["TotalCount"] == 0
