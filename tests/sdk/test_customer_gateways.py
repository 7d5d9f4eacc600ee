"""Customer gateways through both Python SDKs.

Spec: shared/spec/actions/{CreateCustomerGateway,ModifyCustomerGatewayAttribute,
DescribeCustomerGateways,DescribeCustomerGateway,DeleteCustomerGateway}.yaml.
"""

from __future__ import annotations

import pytest

import support
from support import CGW_ID_RE, expect_error, items, make_api, now_ms, public_ip

UNKNOWN_CGW = "cgw-" + "z" * 21
NOT_FOUND = "InvalidCustomerGatewayInstanceId.NotFound"


def create_cgw(api, **over) -> dict:
    params = {"IpAddress": public_ip()}
    params.update(over)
    out = api.call("CreateCustomerGateway", params)
    assert CGW_ID_RE.match(out.get("CustomerGatewayId", "")), out
    return out


def describe_cgw(api, cgw: str) -> dict:
    return api.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})


def cgws_of(body: dict) -> list[dict]:
    return items(body, "CustomerGateways", "CustomerGateway")


def listed_ids(api, cgw: str) -> list[str]:
    """DescribeCustomerGateways filtered by an id the caller cannot see.

    The spec leaves open whether that is an empty list or a 404; both hide it.
    """
    try:
        body = api.call("DescribeCustomerGateways", {"CustomerGatewayId": cgw})
    except support.ApiError as e:
        assert (e.status, e.code) == (404, NOT_FOUND), e
        return []
    return [x["CustomerGatewayId"] for x in cgws_of(body)]


def test_create_and_describe(api):
    t0 = now_ms()
    ip = public_ip()
    out = api.call("CreateCustomerGateway", {"IpAddress": ip, "Name": "office-gw", "Description": "hq-router",
                                             "Asn": "65530", "AuthKey": "s3cr3t-Key_1"})
    assert CGW_ID_RE.match(out["CustomerGatewayId"]), out
    assert out["IpAddress"] == ip
    assert out["Name"] == "office-gw"
    assert out["Description"] == "hq-router"
    assert isinstance(out["CreateTime"], int) and t0 - 5000 <= out["CreateTime"] <= now_ms() + 5000
    assert out["RequestId"] and "Code" not in out
    d = describe_cgw(api, out["CustomerGatewayId"])
    assert d["CustomerGatewayId"] == out["CustomerGatewayId"]
    assert d["IpAddress"] == ip
    assert d["Name"] == "office-gw"
    assert d["Description"] == "hq-router"
    assert d["Asn"] == 65530
    assert d["AuthKey"] == "s3cr3t-Key_1"
    assert d["CreateTime"] == out["CreateTime"]
    assert "Code" not in d


def test_create_minimal(api):
    out = create_cgw(api)
    d = describe_cgw(api, out["CustomerGatewayId"])
    assert d["IpAddress"] == out["IpAddress"]
    assert isinstance(d.get("Name", ""), str)


@pytest.mark.parametrize("asn,expected", [("65530", 65530), ("123.456", 123 * 65536 + 456), ("1", 1),
                                          ("4294967295", 4294967295), ("65535.65535", 4294967295)])
def test_asn_forms(server, root, asn, expected):
    api = make_api("classic", server.endpoint, root)
    out = create_cgw(api, Asn=asn)
    assert describe_cgw(api, out["CustomerGatewayId"])["Asn"] == expected


@pytest.mark.parametrize("asn", ["abc", "4294967296", "65536.0", "-1", "1.2.3"])
def test_invalid_asn(server, root, asn):
    api = make_api("classic", server.endpoint, root)
    e = expect_error(lambda: create_cgw(api, Asn=asn), 400, "InvalidParameter")
    assert e.message


def test_asn_as_large_number_tea(server, root):
    """Asn is a Long in Describe responses: the Tea model must load it."""
    api = make_api("tea-acs3", server.endpoint, root)
    out = create_cgw(api, Asn="4200000000")
    assert describe_cgw(api, out["CustomerGatewayId"])["Asn"] == 4200000000


@pytest.mark.parametrize("ip", ["1.2.3", "256.1.1.1", "abc", "1.2.3.4.5", "1.2.3.4/24", "01.2.3.4x"])
def test_invalid_ip(api, ip):
    expect_error(lambda: api.call("CreateCustomerGateway", {"IpAddress": ip}), 400, "InvalidIpAddress.WrongFormat")


def test_missing_ip(api):
    expect_error(lambda: api.call("CreateCustomerGateway", {"Name": "no-ip"}), 400, "MissingIpAddress")


def test_duplicate_ip(api, server, root, new_account):
    ip = public_ip()
    create_cgw(api, IpAddress=ip)
    expect_error(lambda: create_cgw(api, IpAddress=ip), 400, "InvalidIpAddress.AlreadyExist")
    # another region of the same account: fine
    create_cgw(make_api(api.kind, server.endpoint, root, region="cn-beijing"), IpAddress=ip)
    # another account: fine
    create_cgw(make_api(api.kind, server.endpoint, new_account()), IpAddress=ip)


def test_ip_is_free_again_after_delete(api):
    ip = public_ip()
    c = create_cgw(api, IpAddress=ip)
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": c["CustomerGatewayId"]})
    c2 = create_cgw(api, IpAddress=ip)
    assert c2["CustomerGatewayId"] != c["CustomerGatewayId"]


def test_authkey_requires_asn(api):
    expect_error(lambda: create_cgw(api, AuthKey="abc123"), 400, "OperationDenied.MissingAsn")


@pytest.mark.parametrize("key", ["has space", "what?", "中文密钥", "k" * 65])
def test_malformed_authkey(api, key):
    expect_error(lambda: create_cgw(api, Asn="65000", AuthKey=key), 400, "InvalidAuthkey.Malformed")


@pytest.mark.parametrize("key", ["k", "k" * 64, "A1!@#$%^&*()_+-=[]{}"])
def test_valid_authkey(server, root, key):
    api = make_api("classic", server.endpoint, root)
    c = create_cgw(api, Asn="65000", AuthKey=key)
    assert describe_cgw(api, c["CustomerGatewayId"])["AuthKey"] == key


@pytest.mark.parametrize("name,ok", [("ab", True), ("x" * 128, True), ("网关-1", True), ("x" * 129, False),
                                     ("a", False), ("1ab", False), ("ab cd", False)])
def test_name_rules(server, root, name, ok):
    api = make_api("classic", server.endpoint, root)
    if ok:
        c = create_cgw(api, Name=name)
        assert describe_cgw(api, c["CustomerGatewayId"])["Name"] == name
    else:
        expect_error(lambda: create_cgw(api, Name=name), 400, "InvalidName")


@pytest.mark.parametrize("desc,ok", [("ab", True), ("x" * 100, True), ("x" * 101, False), ("a", False),
                                     ("_desc", False)])
def test_description_rules(server, root, desc, ok):
    api = make_api("classic", server.endpoint, root)
    if ok:
        c = create_cgw(api, Description=desc)
        assert describe_cgw(api, c["CustomerGatewayId"])["Description"] == desc
    else:
        expect_error(lambda: create_cgw(api, Description=desc), 400, "InvalidDescription")


# ---------------------------------------------------------------- modify


def test_modify(api):
    c = create_cgw(api, Name="old-name", Description="old-desc", Asn="65010", AuthKey="oldkey")
    cgw = c["CustomerGatewayId"]
    out = api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "new-name",
                                                      "Description": "new-desc", "AuthKey": "newkey"})
    assert out["CustomerGatewayId"] == cgw
    assert out["Name"] == "new-name"
    assert out["Description"] == "new-desc"
    assert out["IpAddress"] == c["IpAddress"]
    assert out["CreateTime"] == c["CreateTime"]
    assert "Code" not in out
    d = describe_cgw(api, cgw)
    assert (d["Name"], d["Description"], d["AuthKey"], d["Asn"]) == ("new-name", "new-desc", "newkey", 65010)
    # partial update keeps the rest
    api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Description": "third-desc"})
    d = describe_cgw(api, cgw)
    assert (d["Name"], d["Description"], d["AuthKey"]) == ("new-name", "third-desc", "newkey")


def test_modify_errors(api):
    c = create_cgw(api, Name="stay-name")
    cgw = c["CustomerGatewayId"]
    expect_error(lambda: api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "AuthKey": "k1"}),
                 400, "OperationDenied.MissingAsn")
    expect_error(lambda: api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "9x"}),
                 400, "InvalidName")
    expect_error(lambda: api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Description": "?"}),
                 400, "InvalidDescription")
    c2 = create_cgw(api, Asn="65011")
    expect_error(lambda: api.call("ModifyCustomerGatewayAttribute",
                                  {"CustomerGatewayId": c2["CustomerGatewayId"], "AuthKey": "bad key"}),
                 400, "InvalidAuthkey.Malformed")
    assert describe_cgw(api, cgw)["Name"] == "stay-name"
    expect_error(lambda: api.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": UNKNOWN_CGW,
                                                                     "Name": "abc"}), 404, NOT_FOUND)


# ---------------------------------------------------------------- describe / delete


def test_not_found(api):
    expect_error(lambda: describe_cgw(api, UNKNOWN_CGW), 404, NOT_FOUND)
    expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": UNKNOWN_CGW}), 404, NOT_FOUND)


def test_delete(api):
    c = create_cgw(api)
    cgw = c["CustomerGatewayId"]
    out = api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})
    assert out["RequestId"] and "Code" not in out
    expect_error(lambda: describe_cgw(api, cgw), 404, NOT_FOUND)
    expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw}), 404, NOT_FOUND)
    assert listed_ids(api, cgw) == []


def test_list_and_pagination(fresh_api):
    api = fresh_api
    body = api.call("DescribeCustomerGateways")
    assert cgws_of(body) == [] and body["TotalCount"] == 0
    created = {}
    for i in range(13):
        c = create_cgw(api, Name=f"cgw-n{i}", Asn=str(65000 + i))
        created[c["CustomerGatewayId"]] = c
    first = api.call("DescribeCustomerGateways")
    assert (first["TotalCount"], first["PageNumber"], first["PageSize"]) == (13, 1, 10), first
    assert len(cgws_of(first)) == 10
    seen = {}
    for n in (1, 2, 3, 4, 5):
        page = api.call("DescribeCustomerGateways", {"PageSize": 3, "PageNumber": n})
        assert page["TotalCount"] == 13 and page["PageSize"] == 3 and page["PageNumber"] == n
        for x in cgws_of(page):
            assert x["CustomerGatewayId"] not in seen
            seen[x["CustomerGatewayId"]] = x
        assert len(cgws_of(page)) == (3 if n <= 4 else 1)
    assert set(seen) == set(created)
    for cid, x in seen.items():
        assert x["IpAddress"] == created[cid]["IpAddress"]
        assert x["Name"] == created[cid]["Name"]
        assert x["Asn"] == 65000 + int(x["Name"][5:])
        assert "CreateTime" in x
    one = api.call("DescribeCustomerGateways", {"CustomerGatewayId": next(iter(created))})
    assert [x["CustomerGatewayId"] for x in cgws_of(one)] == [next(iter(created))]
    assert one["TotalCount"] == 1
    expect_error(lambda: api.call("DescribeCustomerGateways", {"PageSize": 51}), 400, "InvalidParameter")


def test_quota(server_factory, root):
    srv = server_factory(["--quota-customer-gateways", "2"])
    api = make_api("tea-acs3", srv.endpoint, root)
    c1 = create_cgw(api)
    create_cgw(api)
    expect_error(lambda: create_cgw(api), 400, "Resource.QuotaFull")
    create_cgw(make_api("tea-acs3", srv.endpoint, root, region="cn-shanghai"))
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": c1["CustomerGatewayId"]})
    create_cgw(api)


def test_idempotency(fresh_api):
    api = fresh_api
    tok = "cgw-tok-" + support.rand_suffix(12)
    params = {"IpAddress": public_ip(), "Name": "idem-cgw", "ClientToken": tok}
    a = api.call("CreateCustomerGateway", params)
    b = api.call("CreateCustomerGateway", params)
    assert {k: v for k, v in a.items() if k != "RequestId"} == {k: v for k, v in b.items() if k != "RequestId"}
    assert api.call("DescribeCustomerGateways")["TotalCount"] == 1
    expect_error(lambda: api.call("CreateCustomerGateway", dict(params, Name="other-name")), 400,
                 "IdempotentParameterMismatch")
    # a different token with the same IP is a second create -> duplicate IP
    expect_error(lambda: api.call("CreateCustomerGateway", dict(params, ClientToken=tok + "x")), 400,
                 "InvalidIpAddress.AlreadyExist")
    assert api.call("DescribeCustomerGateways")["TotalCount"] == 1


def test_isolation(server, root, kind, new_account):
    mine = make_api(kind, server.endpoint, root)
    theirs = make_api(kind, server.endpoint, new_account())
    c = create_cgw(mine, Name="mine-only")
    cgw = c["CustomerGatewayId"]
    expect_error(lambda: describe_cgw(theirs, cgw), 404, NOT_FOUND)
    expect_error(lambda: theirs.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "xx"}),
                 404, NOT_FOUND)
    expect_error(lambda: theirs.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw}), 404, NOT_FOUND)
    assert listed_ids(theirs, cgw) == []
    assert cgw not in [x["CustomerGatewayId"] for x in cgws_of(theirs.call("DescribeCustomerGateways",
                                                                          {"PageSize": 50}))]
    assert describe_cgw(mine, cgw)["Name"] == "mine-only"


def test_regions_are_separate(server, root):
    hz = make_api("classic", server.endpoint, root, region="cn-hangzhou")
    sh = make_api("classic", server.endpoint, root, region="cn-shanghai")
    c = create_cgw(hz, Name="hz-cgw")
    cgw = c["CustomerGatewayId"]
    assert cgw not in listed_ids(sh, cgw)
    expect_error(lambda: describe_cgw(sh, cgw), 404, NOT_FOUND)
    expect_error(lambda: sh.call("ModifyCustomerGatewayAttribute", {"CustomerGatewayId": cgw, "Name": "xx"}),
                 404, NOT_FOUND)
    expect_error(lambda: sh.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw}), 404, NOT_FOUND)
    assert describe_cgw(hz, cgw)["Name"] == "hz-cgw"


def test_delete_with_client_token_is_idempotent(api):
    cgw = create_cgw(api)["CustomerGatewayId"]
    tok = "del-" + support.rand_suffix(12)
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw, "ClientToken": tok})
    # DeleteCustomerGateway.yaml: a repeat is 404 "unless the same ClientToken makes it idempotent"
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw, "ClientToken": tok})
    expect_error(lambda: api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw}), 404, NOT_FOUND)
