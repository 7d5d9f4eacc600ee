"""VPN gateways: Create/Modify/Describe(s)/Delete through both Python SDKs.

Spec: shared/spec/actions/{CreateVpnGateway,ModifyVpnGatewayAttribute,
DescribeVpnGateways,DescribeVpnGateway,DeleteVpnGateway}.yaml.
"""

from __future__ import annotations

import ipaddress
import json
import time

import pytest

import support
from support import (
    INTERNET_IP_POOL,
    VPN_ID_RE,
    ApiError,
    KINDS,
    RawClient,
    active_gateway,
    create_gateway,
    describe_gateway,
    expect_error,
    gateway_status,
    items,
    make_api,
    now_ms,
    tags_of,
    vpc_id,
    vsw_id,
    wait_for,
    wait_gone,
    wait_status,
)

UNKNOWN_GW = "vpn-" + "z" * 21


def in_pool(ip: str) -> bool:
    return ipaddress.ip_address(ip) in INTERNET_IP_POOL


def list_gateways(api, **filters) -> dict:
    return api.call("DescribeVpnGateways", filters)


def gateways_of(body: dict) -> list[dict]:
    return items(body, "VpnGateways", "VpnGateway")


# ---------------------------------------------------------------- create + describe


def test_create_response(api):
    out = api.call("CreateVpnGateway", {"VpcId": vpc_id(), "Bandwidth": 10})
    assert VPN_ID_RE.match(out["VpnGatewayId"]), out
    assert out["Name"] == out["VpnGatewayId"], out  # Name defaults to the id
    assert "OrderId" in out and isinstance(out["OrderId"], int), out
    assert out["RequestId"]
    assert "Code" not in out


def test_create_and_describe_all_fields(api, kind):
    t0 = now_ms()
    vpc, vsw = vpc_id(), vsw_id()
    g = create_gateway(api, VpcId=vpc, VSwitchId=vsw, Bandwidth=20, Name="gw-full", EnableIpsec=True,
                       EnableSsl=True, SslConnections=10, InstanceChargeType="PREPAY", Period=1, AutoPay=True,
                       VpnType="Normal")
    gw = g["VpnGatewayId"]
    assert g["Name"] == "gw-full"
    d = wait_status(api, gw, "active")
    assert d["VpnGatewayId"] == gw
    assert d["VpcId"] == vpc
    assert d["VSwitchId"] == vsw
    assert d["Name"] == "gw-full"
    assert d["Spec"] == "20M"
    assert d["Status"] == "active"
    assert d["BusinessStatus"] == "Normal"
    assert d["ChargeType"] == "Prepay"
    assert d["IpsecVpn"] == "enable"
    assert d["SslVpn"] == "enable"
    assert d["SslMaxConnections"] == 10
    assert d["VpnType"] == "Normal"
    assert d["AutoPropagate"] is True
    assert isinstance(d["EnableBgp"], bool)
    assert d["NetworkType"] == "public"
    assert in_pool(d["InternetIp"]), d["InternetIp"]
    assert isinstance(d["CreateTime"], int) and t0 - 5000 <= d["CreateTime"] <= now_ms() + 5000, d["CreateTime"]
    assert isinstance(d["EndTime"], int) and d["EndTime"] >= d["CreateTime"], d
    assert isinstance(d["Description"], str)
    assert isinstance(d["Tag"], str) and isinstance(json.loads(d["Tag"]), dict), d["Tag"]
    assert tags_of(d) == {}
    assert isinstance(d["Tags"], dict), d["Tags"]
    assert d.get("DisasterRecoveryInternetIp", "") == ""
    assert "ReservationData" not in d
    assert "Code" not in d
    if kind == "classic":  # the Tea model of DescribeVpnGateway has no IntranetIp field
        assert "IntranetIp" in d and isinstance(d["IntranetIp"], str), d
        for f in ("ResourceGroupId", "SslVpnInternetIp", "DisasterRecoveryInternetIp"):
            assert f in d, (f, d)


def test_create_defaults(api):
    g = create_gateway(api)
    d = wait_status(api, g["VpnGatewayId"], "active")
    assert d["Name"] == g["VpnGatewayId"]
    assert d["IpsecVpn"] == "enable"  # EnableIpsec defaults to true
    assert d["SslVpn"] == "disable"  # EnableSsl defaults to false
    assert d["VpnType"] == "Normal"
    assert d["AutoPropagate"] is True
    assert d["NetworkType"] == "public"
    assert d["Spec"] == "10M"
    assert d.get("DisasterRecoveryInternetIp", "") == ""


def test_postpay_charge_type(api):
    g = create_gateway(api, InstanceChargeType="POSTPAY")
    assert describe_gateway(api, g["VpnGatewayId"])["ChargeType"] == "Postpay"


def test_national_standard_type(api):
    g = create_gateway(api, VpnType="NationalStandard")
    assert describe_gateway(api, g["VpnGatewayId"])["VpnType"] == "NationalStandard"


def test_ipsec_disabled(api):
    g = create_gateway(api, EnableIpsec=False, EnableSsl=True, SslConnections=5)
    d = describe_gateway(api, g["VpnGatewayId"])
    assert (d["IpsecVpn"], d["SslVpn"], d["SslMaxConnections"]) == ("disable", "enable", 5)


def test_disaster_recovery_ip(api):
    dr = vsw_id()
    g = create_gateway(api, VSwitchId=vsw_id(), DisasterRecoveryVSwitchId=dr)
    d = describe_gateway(api, g["VpnGatewayId"])
    assert d["DisasterRecoveryVSwitchId"] == dr
    assert in_pool(d["DisasterRecoveryInternetIp"]), d
    assert d["DisasterRecoveryInternetIp"] != d["InternetIp"]


def test_internet_ips_are_unique(server, root):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    ips = set()
    for _ in range(6):
        g = create_gateway(raw, DisasterRecoveryVSwitchId=vsw_id())
        d = describe_gateway(raw, g["VpnGatewayId"])
        ips.add(d["InternetIp"])
        ips.add(d["DisasterRecoveryInternetIp"])
    assert len(ips) == 12, ips


def test_include_reservation_data(api):
    g = create_gateway(api)
    gw = g["VpnGatewayId"]
    assert "ReservationData" not in describe_gateway(api, gw)
    assert "ReservationData" not in describe_gateway(api, gw, IncludeReservationData=False)
    d = describe_gateway(api, gw, IncludeReservationData=True)
    assert isinstance(d.get("ReservationData"), dict), d
    listed = gateways_of(list_gateways(api, VpnGatewayId=gw, IncludeReservationData=True))
    assert len(listed) == 1 and isinstance(listed[0].get("ReservationData"), dict), listed
    listed = gateways_of(list_gateways(api, VpnGatewayId=gw))
    assert "ReservationData" not in listed[0]


@pytest.mark.parametrize("spelling,expected", [("true", "enable"), ("True", "enable"), ("TRUE", "enable"),
                                               ("false", "disable"), ("False", "disable")])
def test_boolean_spellings(server, root, spelling, expected):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    g = create_gateway(raw, EnableSsl=spelling, SslConnections=5)
    assert describe_gateway(raw, g["VpnGatewayId"])["SslVpn"] == expected


# ---------------------------------------------------------------- parameter validation


def test_bandwidth_values(server, root):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    for bw in (5, 10, 20, 50, 100, 200):
        g = create_gateway(raw, Bandwidth=bw)
        assert describe_gateway(raw, g["VpnGatewayId"])["Spec"] == f"{bw}M"
    for bw in (0, 1, 7, 15, 500, 1000):
        expect_error(lambda: create_gateway(raw, Bandwidth=bw), 400, "InvalidParameter")


def test_ssl_connections_values(server, root):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    for n in (5, 10, 20):
        g = create_gateway(raw, EnableSsl=True, SslConnections=n)
        assert describe_gateway(raw, g["VpnGatewayId"])["SslMaxConnections"] == n
    for n in (0, 7, 50):
        expect_error(lambda: create_gateway(raw, EnableSsl=True, SslConnections=n), 400, "InvalidParameter")


def test_period_values(server, root):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    for p in (1, 5, 9, 12, 24, 36):
        create_gateway(raw, InstanceChargeType="PREPAY", Period=p)
    for p in (0, 10, 11, 13, 48):
        expect_error(lambda: create_gateway(raw, InstanceChargeType="PREPAY", Period=p), 400, "InvalidParameter")


@pytest.mark.parametrize("name", ["ab", "A_b-1", "网关一号", "x" * 100, "Gw_2024-prod"])
def test_valid_names(server, root, name):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    g = create_gateway(raw, Name=name)
    assert g["Name"] == name
    assert describe_gateway(raw, g["VpnGatewayId"])["Name"] == name


@pytest.mark.parametrize("name", ["a", "1abc", "_ab", "-ab", "x" * 101, "ab c", "ab!c", "http://x", "ab.c"])
def test_invalid_names(server, root, name):
    raw = support.RawApi(server.endpoint, root.ak, root.secret)
    vpc = vpc_id()
    expect_error(lambda: create_gateway(raw, VpcId=vpc, Name=name), 400, "InvalidName")
    assert gateways_of(list_gateways(raw, VpcId=vpc)) == []  # nothing was created


def test_invalid_name_through_sdks(api):
    expect_error(lambda: create_gateway(api, Name="9lives"), 400, "InvalidName")


# ---------------------------------------------------------------- modify


def test_modify_attributes(api, kind):
    g = active_gateway(api, Name="before-name")
    gw = g["VpnGatewayId"]
    before = describe_gateway(api, gw)
    out = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "after-name",
                                                 "Description": "new-description", "AutoPropagate": False})
    assert "Code" not in out
    assert out["VpnGatewayId"] == gw
    assert out["Name"] == "after-name"
    assert out["Description"] == "new-description"
    assert out["AutoPropagate"] is False
    assert out["Status"] == "active"
    assert out["VpcId"] == before["VpcId"]
    assert out["InternetIp"] == before["InternetIp"]
    assert out["Spec"] == before["Spec"]
    assert out["CreateTime"] == before["CreateTime"]
    assert out["BusinessStatus"] == "Normal"
    if kind == "classic":
        assert "IntranetIp" in out and "EndTime" in out, out
    d = describe_gateway(api, gw)
    assert (d["Name"], d["Description"], d["AutoPropagate"]) == ("after-name", "new-description", False)
    # only Description: the rest stays
    api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "second-description"})
    d = describe_gateway(api, gw)
    assert (d["Name"], d["Description"], d["AutoPropagate"]) == ("after-name", "second-description", False)
    api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "AutoPropagate": True})
    d = describe_gateway(api, gw)
    assert (d["Name"], d["Description"], d["AutoPropagate"]) == ("after-name", "second-description", True)
    # listed the same way
    listed = gateways_of(list_gateways(api, VpnGatewayId=gw))
    assert [(x["Name"], x["Description"]) for x in listed] == [("after-name", "second-description")]


def test_modify_invalid_values(api):
    g = active_gateway(api, Name="keep-me")
    gw = g["VpnGatewayId"]
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "1bad"}),
                 400, "InvalidName")
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "d"}),
                 400, "InvalidDescription")
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": "x" * 101}),
                 400, "InvalidDescription")
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute",
                                  {"VpnGatewayId": gw, "Name": "good-name", "Description": "?bad"}),
                 400, "InvalidDescription")
    d = describe_gateway(api, gw)
    assert d["Name"] == "keep-me"  # a rejected request changes nothing


@pytest.mark.parametrize("desc", ["bad!desc", "has space", "a.b"])
def test_description_character_rule(server, root, desc):
    """Same character rule as names (ModifyVpnGatewayAttribute.yaml: letters, digits, "_" and "-")."""
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Description": desc}),
                 400, "InvalidDescription")


def test_modify_unknown_gateway_is_400(api):
    # documented as HTTP 400 for this action (ModifyVpnGatewayAttribute.yaml errors)
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": UNKNOWN_GW, "Name": "abc"}),
                 400, "InvalidVpnGatewayInstanceId.NotFound")


def test_modify_missing_id(api):
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"Name": "abc"}), 400, "MissingVpnGatewayId")


# ---------------------------------------------------------------- not found / delete


def test_describe_unknown_gateway_is_404(api):
    expect_error(lambda: describe_gateway(api, UNKNOWN_GW), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: describe_gateway(api, "vpn-nope"), 404, "InvalidVpnGatewayInstanceId.NotFound")


def test_delete_unknown_gateway_is_404(api):
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": UNKNOWN_GW}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")


def test_delete(api):
    vpc = vpc_id()
    g = active_gateway(api, VpcId=vpc)
    gw = g["VpnGatewayId"]
    out = api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    assert out["RequestId"] and "Code" not in out
    st = gateway_status(api, gw)
    assert st in ("deleting", None), st
    wait_gone(api, gw)
    expect_error(lambda: describe_gateway(api, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": gw}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "abc"}),
                 400, "InvalidVpnGatewayInstanceId.NotFound")
    assert gateways_of(list_gateways(api, VpcId=vpc)) == []


# ---------------------------------------------------------------- lifecycle (slow server)


def test_lifecycle_and_configuring(slow_server, root, kind):
    """init -> provisioning -> active; deleting -> gone; Configuring while not active.

    The slow server uses --transition-delay-ms 2000: provisioning after ~1 s,
    active after ~2 s.
    """
    api = make_api(kind, slow_server.endpoint, root)
    t0 = time.monotonic()
    g = create_gateway(api)
    gw = g["VpnGatewayId"]
    seen = [describe_gateway(api, gw)["Status"]]
    assert seen[0] == "init", seen
    listed = gateways_of(list_gateways(api, VpnGatewayId=gw, Status="init"))
    assert [x["VpnGatewayId"] for x in listed] == [gw]
    assert gateways_of(list_gateways(api, VpnGatewayId=gw, Status="active")) == []
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "abc"}),
                 400, "VpnGateway.Configuring")
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": gw}), 400, "VpnGateway.Configuring")

    def poll_until(target):
        def step():
            st = describe_gateway(api, gw)["Status"]
            if st != seen[-1]:
                seen.append(st)
            return st == target
        wait_for(step, timeout=10, what=f"{gw} -> {target} (seen {seen})")

    poll_until("provisioning")
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "abc"}),
                 400, "VpnGateway.Configuring")
    poll_until("active")
    elapsed = time.monotonic() - t0
    assert seen == ["init", "provisioning", "active"], seen
    assert elapsed >= 1.8, f"active after {elapsed:.2f}s with a 2000 ms transition delay"

    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    assert describe_gateway(api, gw)["Status"] == "deleting"
    listed = gateways_of(list_gateways(api, VpnGatewayId=gw))
    assert [x["Status"] for x in listed] == ["deleting"]
    expect_error(lambda: api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "abc"}),
                 400, "VpnGateway.Configuring")
    expect_error(lambda: api.call("DeleteVpnGateway", {"VpnGatewayId": gw}), 400, "VpnGateway.Configuring")
    wait_gone(api, gw, timeout=10)


def test_zero_delay_is_fast(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0"])
    api = make_api("classic", srv.endpoint, root)
    g = create_gateway(api)
    wait_status(api, g["VpnGatewayId"], "active", timeout=2)
    api.call("DeleteVpnGateway", {"VpnGatewayId": g["VpnGatewayId"]})
    wait_gone(api, g["VpnGatewayId"], timeout=2)


# ---------------------------------------------------------------- listing


def test_list_pagination(fresh_api):
    api = fresh_api
    empty = list_gateways(api)
    assert gateways_of(empty) == [] and empty["TotalCount"] == 0
    ids = {create_gateway(api)["VpnGatewayId"] for _ in range(12)}
    first = list_gateways(api)
    assert (first["TotalCount"], first["PageNumber"], first["PageSize"]) == (12, 1, 10), first
    assert len(gateways_of(first)) == 10
    second = list_gateways(api, PageNumber=2)
    assert (second["TotalCount"], second["PageNumber"], second["PageSize"]) == (12, 2, 10)
    assert len(gateways_of(second)) == 2
    got = [x["VpnGatewayId"] for x in gateways_of(first) + gateways_of(second)]
    assert len(got) == len(set(got)) and set(got) == ids
    pages = [list_gateways(api, PageSize=5, PageNumber=n) for n in (1, 2, 3, 4)]
    assert [len(gateways_of(p)) for p in pages] == [5, 5, 2, 0]
    assert all(p["TotalCount"] == 12 and p["PageSize"] == 5 for p in pages)
    assert {x["VpnGatewayId"] for p in pages for x in gateways_of(p)} == ids
    assert len(gateways_of(list_gateways(api, PageSize=50))) == 12
    expect_error(lambda: list_gateways(api, PageSize=51), 400, "InvalidParameter")


def test_list_items_carry_describe_fields(api):
    g = active_gateway(api, VSwitchId=vsw_id(), Name="listed-gw")
    gw = g["VpnGatewayId"]
    d = describe_gateway(api, gw)
    (item,) = gateways_of(list_gateways(api, VpnGatewayId=gw))
    for f in ("VpnGatewayId", "VpcId", "VSwitchId", "InternetIp", "CreateTime", "EndTime", "Spec", "Name",
              "Description", "Status", "BusinessStatus", "ChargeType", "IpsecVpn", "SslVpn", "Tag", "VpnType",
              "AutoPropagate", "EnableBgp", "NetworkType"):
        assert item.get(f) == d.get(f), (f, item.get(f), d.get(f))
    assert isinstance(item["Tags"], dict)


def test_list_filters(fresh_api):
    api = fresh_api
    vpc_a, vpc_b = vpc_id(), vpc_id()
    a = [create_gateway(api, VpcId=vpc_a)["VpnGatewayId"] for _ in range(3)]
    b = [create_gateway(api, VpcId=vpc_b)["VpnGatewayId"] for _ in range(2)]
    for gw in a + b:
        wait_status(api, gw, "active")
    ids = lambda body: sorted(x["VpnGatewayId"] for x in gateways_of(body))  # noqa: E731
    assert ids(list_gateways(api, VpcId=vpc_a)) == sorted(a)
    assert list_gateways(api, VpcId=vpc_a)["TotalCount"] == 3
    assert ids(list_gateways(api, VpcId=vpc_b)) == sorted(b)
    assert ids(list_gateways(api, VpcId=vpc_id())) == []
    assert ids(list_gateways(api, VpnGatewayId=a[1])) == [a[1]]
    assert ids(list_gateways(api, VpnGatewayId=a[1], VpcId=vpc_b)) == []
    assert ids(list_gateways(api, Status="active")) == sorted(a + b)
    assert ids(list_gateways(api, Status="init")) == []
    assert ids(list_gateways(api, BusinessStatus="Normal")) == sorted(a + b)
    assert ids(list_gateways(api, BusinessStatus="FinancialLocked")) == []
    # tag filters (AND)
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [a[0], b[0]],
                              "Tag": [{"Key": "env", "Value": "prod"}]})
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [a[0]],
                              "Tag": [{"Key": "team", "Value": "net"}]})
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [a[2]],
                              "Tag": [{"Key": "env", "Value": "dev"}]})
    assert ids(list_gateways(api, Tag=[{"Key": "env", "Value": "prod"}])) == sorted([a[0], b[0]])
    assert ids(list_gateways(api, Tag=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "net"}])) == [a[0]]
    assert ids(list_gateways(api, Tag=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "net"}])) == []
    assert ids(list_gateways(api, Tag=[{"Key": "env", "Value": "prod"}], VpcId=vpc_b)) == [b[0]]
    assert ids(list_gateways(api, Tag=[{"Key": "nope", "Value": "prod"}])) == []
    body = list_gateways(api, Tag=[{"Key": "env", "Value": "prod"}])
    assert body["TotalCount"] == 2


# ---------------------------------------------------------------- quota


def test_quota(server_factory, root):
    srv = server_factory(["--quota-vpn-gateways", "2", "--transition-delay-ms", "0"])
    api = make_api("classic", srv.endpoint, root)
    g1 = create_gateway(api)
    create_gateway(api)
    e = expect_error(lambda: create_gateway(api), 400, "Resource.QuotaFull")
    assert e.message
    assert list_gateways(api)["TotalCount"] == 2
    # per region ...
    create_gateway(make_api("tea-acs3", srv.endpoint, root, region="cn-shanghai"))
    # ... and per account
    other = srv.create_account()
    create_gateway(make_api("tea-v2", srv.endpoint, other))
    # deleting frees a slot once the gateway is gone
    wait_status(api, g1["VpnGatewayId"], "active")
    api.call("DeleteVpnGateway", {"VpnGatewayId": g1["VpnGatewayId"]})
    wait_gone(api, g1["VpnGatewayId"])
    create_gateway(api)
    expect_error(lambda: create_gateway(api), 400, "Resource.QuotaFull")


# ---------------------------------------------------------------- idempotency


def test_client_token_idempotency(fresh_api):
    api = fresh_api
    vpc = vpc_id()
    token = "tok-" + support.rand_suffix(20)
    params = {"VpcId": vpc, "Bandwidth": 10, "ClientToken": token, "Name": "idem-gw"}
    first = api.call("CreateVpnGateway", params)
    again = api.call("CreateVpnGateway", params)
    strip = lambda d: {k: v for k, v in d.items() if k != "RequestId"}  # noqa: E731
    assert strip(again) == strip(first), (first, again)
    assert list_gateways(api, VpcId=vpc)["TotalCount"] == 1
    expect_error(lambda: api.call("CreateVpnGateway", dict(params, Bandwidth=20)), 400,
                 "IdempotentParameterMismatch")
    assert list_gateways(api, VpcId=vpc)["TotalCount"] == 1
    other = api.call("CreateVpnGateway", dict(params, ClientToken=token + "-2"))
    assert other["VpnGatewayId"] != first["VpnGatewayId"]
    assert list_gateways(api, VpcId=vpc)["TotalCount"] == 2


def test_client_token_is_scoped_to_the_account(server, root, new_account):
    token = "shared-" + support.rand_suffix(10)
    params = {"VpcId": vpc_id(), "Bandwidth": 10, "ClientToken": token}
    mine = make_api("classic", server.endpoint, root).call("CreateVpnGateway", params)
    other_api = make_api("classic", server.endpoint, new_account())
    theirs = other_api.call("CreateVpnGateway", params)
    assert theirs["VpnGatewayId"] != mine["VpnGatewayId"]
    describe_gateway(other_api, theirs["VpnGatewayId"])


def test_modify_and_delete_accept_client_token(api):
    g = active_gateway(api)
    gw = g["VpnGatewayId"]
    tok = "m-" + support.rand_suffix(10)
    a = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "tokname", "ClientToken": tok})
    b = api.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "tokname", "ClientToken": tok})
    assert a["Name"] == b["Name"] == "tokname"
    tok = "d-" + support.rand_suffix(10)
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw, "ClientToken": tok})
    # a retried delete with the same token is the same request: not Configuring
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw, "ClientToken": tok})
    wait_gone(api, gw)


# ---------------------------------------------------------------- isolation


def test_other_account_cannot_see_or_touch(server, root, kind, new_account):
    mine = make_api(kind, server.endpoint, root)
    theirs = make_api(kind, server.endpoint, new_account())
    vpc = vpc_id()
    g = active_gateway(mine, VpcId=vpc, Name="private-gw")
    gw = g["VpnGatewayId"]
    expect_error(lambda: describe_gateway(theirs, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: theirs.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "stolen"}),
                 400, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: theirs.call("DeleteVpnGateway", {"VpnGatewayId": gw}),
                 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert gateways_of(list_gateways(theirs, VpcId=vpc)) == []
    assert gw not in {x["VpnGatewayId"] for x in gateways_of(list_gateways(theirs, PageSize=50))}
    assert gateways_of(list_gateways(theirs, VpnGatewayId=gw)) == []
    d = describe_gateway(mine, gw)
    assert (d["Name"], d["Status"]) == ("private-gw", "active")


def test_regions_are_separate_in_lists(server, root):
    hz = make_api("classic", server.endpoint, root, region="cn-hangzhou")
    sh = make_api("classic", server.endpoint, root, region="cn-shanghai")
    vpc = vpc_id()
    g = create_gateway(hz, VpcId=vpc)
    assert gateways_of(list_gateways(sh, VpcId=vpc)) == []
    assert gateways_of(list_gateways(sh, VpnGatewayId=g["VpnGatewayId"])) == []
    g2 = create_gateway(sh, VpcId=vpc)
    assert [x["VpnGatewayId"] for x in gateways_of(list_gateways(sh, VpcId=vpc))] == [g2["VpnGatewayId"]]
    assert [x["VpnGatewayId"] for x in gateways_of(list_gateways(hz, VpcId=vpc))] == [g["VpnGatewayId"]]


def test_regions_are_separate_for_single_gateway_actions(server, root):
    """A gateway lives in one region: addressed through another region it does not exist."""
    hz = make_api("classic", server.endpoint, root, region="cn-hangzhou")
    sh = make_api("classic", server.endpoint, root, region="cn-shanghai")
    g = active_gateway(hz, Name="hz-gateway")
    gw = g["VpnGatewayId"]
    expect_error(lambda: describe_gateway(sh, gw), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: sh.call("ModifyVpnGatewayAttribute", {"VpnGatewayId": gw, "Name": "renamed"}),
                 400, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: sh.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                                                  "Tag": [{"Key": "k", "Value": "v"}]}),
                 404, "InvalidResourceId.NotFound")
    expect_error(lambda: sh.call("DeleteVpnGateway", {"VpnGatewayId": gw}), 404,
                 "InvalidVpnGatewayInstanceId.NotFound")
    d = describe_gateway(hz, gw)
    assert (d["Name"], d["Status"], tags_of(d)) == ("hz-gateway", "active", {})


def test_client_token_is_scoped_to_the_action(server, root):
    api = make_api("classic", server.endpoint, root)
    token = "scope-" + support.rand_suffix(12)
    g = api.call("CreateVpnGateway", {"VpcId": vpc_id(), "Bandwidth": 10, "ClientToken": token})
    c = api.call("CreateCustomerGateway", {"IpAddress": support.public_ip(), "ClientToken": token})
    assert g["VpnGatewayId"].startswith("vpn-") and c["CustomerGatewayId"].startswith("cgw-")


def test_client_token_is_scoped_to_the_region(server, root):
    """protocol.md 9.7: a token is remembered per account + region + action."""
    hz = make_api("classic", server.endpoint, root, region="cn-hangzhou")
    sh = make_api("classic", server.endpoint, root, region="cn-shanghai")
    params = {"VpcId": vpc_id(), "Bandwidth": 10, "ClientToken": "region-" + support.rand_suffix(12)}
    a = hz.call("CreateVpnGateway", params)
    b = sh.call("CreateVpnGateway", params)
    assert a["VpnGatewayId"] != b["VpnGatewayId"]
    describe_gateway(sh, b["VpnGatewayId"])
