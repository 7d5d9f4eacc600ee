"""TagResources / ListTagResources / UnTagResources through both Python SDKs.

Spec: shared/spec/actions/{TagResources,ListTagResources,UnTagResources}.yaml.
"""

from __future__ import annotations

import pytest

import support
from support import ApiError, create_gateway, describe_gateway, expect_error, items, make_api, tags_of, wait_gone, wait_status

RT = "VpnGateWay"


def tag(api, ids, tags: dict, rt: str = RT) -> dict:
    return api.call("TagResources", {"ResourceType": rt, "ResourceId": list(ids),
                                     "Tag": [{"Key": k, "Value": v} for k, v in tags.items()]})


def untag(api, ids, keys=None, all_=None, rt: str = RT) -> dict:
    p = {"ResourceType": rt, "ResourceId": list(ids)}
    if keys is not None:
        p["TagKey"] = list(keys)
    if all_ is not None:
        p["All"] = all_
    return api.call("UnTagResources", p)


def list_tags(api, ids=None, tags=None, rt: str = RT, **extra) -> dict:
    p = {"ResourceType": rt, **extra}
    if ids is not None:
        p["ResourceId"] = list(ids)
    if tags is not None:
        p["Tag"] = [{"Key": k, "Value": v} if v is not None else {"Key": k} for k, v in tags.items()]
    return api.call("ListTagResources", p)


def bindings(body: dict) -> set[tuple[str, str, str]]:
    out = set()
    for tr in items(body, "TagResources", "TagResource"):
        assert set(tr) >= {"ResourceType", "ResourceId", "TagKey", "TagValue"}, tr
        out.add((tr["ResourceId"], tr["TagKey"], tr["TagValue"]))
    return out


def all_bindings(api, ids=None, tags=None, rt: str = RT, max_results=None) -> list[tuple[str, str, str]]:
    """Follow NextToken to the end; return every binding in order."""
    got: list[tuple[str, str, str]] = []
    token = None
    for _ in range(100):
        extra = {}
        if max_results is not None:
            extra["MaxResults"] = max_results
        if token:
            extra["NextToken"] = token
        body = list_tags(api, ids, tags, rt, **extra)
        page = items(body, "TagResources", "TagResource")
        if max_results is not None:
            assert len(page) <= max_results, body
        got += [(t["ResourceId"], t["TagKey"], t["TagValue"]) for t in page]
        token = body.get("NextToken", "")
        assert "NextToken" in body, body
        if not token:
            return got
    raise AssertionError("NextToken never ended")


def gw_tags(api, gw: str) -> dict:
    return tags_of(describe_gateway(api, gw))


def test_tag_list_untag_roundtrip(api):
    gw = create_gateway(api)["VpnGatewayId"]
    out = tag(api, [gw], {"env": "prod", "team": "net", "empty": ""})
    assert out["RequestId"] and "Code" not in out
    body = list_tags(api, [gw])
    assert bindings(body) == {(gw, "env", "prod"), (gw, "team", "net"), (gw, "empty", "")}
    assert body["NextToken"] == ""
    for tr in items(body, "TagResources", "TagResource"):
        assert tr["ResourceType"].lower() == "vpngateway", tr
    assert gw_tags(api, gw) == {"env": "prod", "team": "net", "empty": ""}
    (item,) = items(api.call("DescribeVpnGateways", {"VpnGatewayId": gw}), "VpnGateways", "VpnGateway")
    assert tags_of(item) == {"env": "prod", "team": "net", "empty": ""}
    out = untag(api, [gw], keys=["env", "not-there"])
    assert "Code" not in out
    assert bindings(list_tags(api, [gw])) == {(gw, "team", "net"), (gw, "empty", "")}
    assert gw_tags(api, gw) == {"team": "net", "empty": ""}
    untag(api, [gw], all_=True)
    assert bindings(list_tags(api, [gw])) == set()
    assert gw_tags(api, gw) == {}


def test_tag_several_resources_at_once(api):
    g1, g2 = create_gateway(api)["VpnGatewayId"], create_gateway(api)["VpnGatewayId"]
    tag(api, [g1, g2], {"shared": "yes"})
    assert bindings(list_tags(api, [g1, g2])) == {(g1, "shared", "yes"), (g2, "shared", "yes")}
    untag(api, [g1, g2], keys=["shared"])
    assert bindings(list_tags(api, [g1, g2])) == set()


@pytest.mark.parametrize("rt", ["VpnGateWay", "VpnGateway", "vpngateway", "VPNGATEWAY"])
def test_resource_type_is_case_insensitive(server, root, rt):
    api = make_api("classic", server.endpoint, root)
    gw = create_gateway(api)["VpnGatewayId"]
    tag(api, [gw], {"k": rt}, rt=rt)
    assert bindings(list_tags(api, [gw], rt=rt)) == {(gw, "k", rt)}
    assert bindings(list_tags(api, [gw], rt="VpnGateWay")) == {(gw, "k", rt)}
    untag(api, [gw], keys=["k"], rt=rt)
    assert gw_tags(api, gw) == {}


def test_retag_overwrites_value(api):
    gw = create_gateway(api)["VpnGatewayId"]
    tag(api, [gw], {"env": "dev"})
    tag(api, [gw], {"env": "prod"})
    assert bindings(list_tags(api, [gw])) == {(gw, "env", "prod")}
    assert gw_tags(api, gw) == {"env": "prod"}


def test_twenty_tags_per_resource(api):
    gw = create_gateway(api)["VpnGatewayId"]
    twenty = {f"key{i:02d}": f"v{i}" for i in range(20)}
    tag(api, [gw], twenty)
    assert gw_tags(api, gw) == twenty
    expect_error(lambda: tag(api, [gw], {"key20": "x"}), 400, "QuotaExceeded.TagNum")
    tag(api, [gw], {"key00": "changed"})  # overwriting at the limit is fine
    assert gw_tags(api, gw) == dict(twenty, key00="changed")
    # 15 existing + 6 new in one request: over the limit, and nothing of it is attached
    fresh = create_gateway(api)["VpnGatewayId"]
    fifteen = {f"k{i:02d}": "v" for i in range(15)}
    tag(api, [fresh], fifteen)
    expect_error(lambda: tag(api, [fresh], {f"n{i}": "v" for i in range(6)}), 400, "QuotaExceeded.TagNum")
    assert gw_tags(api, fresh) == fifteen
    # one request carries at most Tag.20 (TagResources.yaml: N = 1-20)
    expect_error(lambda: tag(api, [fresh], {f"z{i}": "v" for i in range(21)}), 400, "InvalidParameter")
    assert gw_tags(api, fresh) == fifteen


def test_unknown_resource(api):
    missing = "vpn-" + "q" * 21
    expect_error(lambda: tag(api, [missing], {"a": "b"}), 404, "InvalidResourceId.NotFound")
    gw = create_gateway(api)["VpnGatewayId"]
    expect_error(lambda: tag(api, [gw, missing], {"a": "b"}), 404, "InvalidResourceId.NotFound")
    assert gw_tags(api, gw) == {}
    # UnTagResources answers the same way, and changes nothing when any id is unknown.
    tag(api, [gw], {"a": "b"})
    expect_error(lambda: untag(api, [missing], keys=["a"]), 404, "InvalidResourceId.NotFound")
    expect_error(lambda: untag(api, [gw, missing], keys=["a"]), 404, "InvalidResourceId.NotFound")
    assert gw_tags(api, gw) == {"a": "b"}


@pytest.mark.parametrize("key", ["", "aliyun", "aliyunKey", "acs:key", "http://x", "https://x", "ahttp://x",
                                 "k" * 65])
def test_invalid_tag_keys(server, root, key):
    api = make_api("classic", server.endpoint, root)
    gw = create_gateway(api)["VpnGatewayId"]
    expect_error(lambda: tag(api, [gw], {key: "v"}), 400, "InvalidTagKey")
    assert gw_tags(api, gw) == {}


@pytest.mark.parametrize("value", ["aliyunval", "acs:val", "http://v", "see https://v", "v" * 129])
def test_invalid_tag_values(server, root, value):
    api = make_api("classic", server.endpoint, root)
    gw = create_gateway(api)["VpnGatewayId"]
    expect_error(lambda: tag(api, [gw], {"key": value}), 400, "InvalidTagValue")
    assert gw_tags(api, gw) == {}


def test_key_of_64_chars_is_valid(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = create_gateway(api)["VpnGatewayId"]
    k = "k" * 64
    v = "v" * 128
    tag(api, [gw], {k: v})
    assert gw_tags(api, gw) == {k: v}


def test_list_by_tag(fresh_api):
    api = fresh_api
    g1, g2, g3 = (create_gateway(api)["VpnGatewayId"] for _ in range(3))
    tag(api, [g1], {"tier": "gold", "zone": "a"})
    tag(api, [g2], {"tier": "silver", "zone": "a"})
    tag(api, [g3], {"other": "x"})
    by_key = all_bindings(api, tags={"tier": None})
    assert {b[0] for b in by_key} == {g1, g2}, by_key
    assert (g1, "tier", "gold") in by_key and (g2, "tier", "silver") in by_key
    by_pair = all_bindings(api, tags={"tier": "gold"})
    assert {b[0] for b in by_pair} == {g1}, by_pair
    both = all_bindings(api, tags={"tier": "silver", "zone": "a"})
    assert {b[0] for b in both} == {g2}, both
    assert all_bindings(api, tags={"tier": "gold", "zone": "b"}) == []
    # ResourceId and Tag together: the listed resources must match the tags
    assert {b[0] for b in all_bindings(api, ids=[g1, g3], tags={"zone": "a"})} == {g1}


def test_list_requires_resource_or_tag(api):
    e = expect_error_status(lambda: api.call("ListTagResources", {"ResourceType": RT}), 400)
    assert e.code


def expect_error_status(fn, status):
    try:
        got = fn()
    except ApiError as e:
        assert e.status == status, e
        return e
    raise AssertionError(f"expected HTTP {status}, got {got!r}")


def test_list_pagination(api):
    g1, g2 = create_gateway(api)["VpnGatewayId"], create_gateway(api)["VpnGatewayId"]
    tag(api, [g1], {f"a{i}": str(i) for i in range(5)})
    tag(api, [g2], {f"b{i}": str(i) for i in range(3)})
    expected = {(g1, f"a{i}", str(i)) for i in range(5)} | {(g2, f"b{i}", str(i)) for i in range(3)}
    for mr in (1, 2, 3, 50):
        got = all_bindings(api, ids=[g1, g2], max_results=mr)
        assert len(got) == len(set(got)) == 8, (mr, got)
        assert set(got) == expected
    body = list_tags(api, [g1, g2])  # default MaxResults 50: one page
    assert bindings(body) == expected and body["NextToken"] == ""
    first = list_tags(api, [g1, g2], MaxResults=3)
    assert len(items(first, "TagResources", "TagResource")) == 3 and first["NextToken"]
    for bad in (0, 51):
        expect_error(lambda: list_tags(api, [g1], MaxResults=bad), 400, "InvalidParameter")


def test_customer_gateway_tags(api):
    cgw = api.call("CreateCustomerGateway", {"IpAddress": support.public_ip()})["CustomerGatewayId"]
    tag(api, [cgw], {"site": "hq"}, rt="CustomerGateway")
    body = list_tags(api, [cgw], rt="CustomerGateway")
    assert bindings(body) == {(cgw, "site", "hq")}
    assert items(body, "TagResources", "TagResource")[0]["ResourceType"].lower() == "customergateway"
    untag(api, [cgw], all_=True, rt="CustomerGateway")
    assert bindings(list_tags(api, [cgw], rt="CustomerGateway")) == set()
    # a customer gateway is not a VPN gateway
    expect_error(lambda: tag(api, [cgw], {"x": "y"}, rt=RT), 404, "InvalidResourceId.NotFound")


def test_other_account_cannot_tag(server, root, kind, new_account):
    mine = make_api(kind, server.endpoint, root)
    theirs = make_api(kind, server.endpoint, new_account())
    gw = create_gateway(mine)["VpnGatewayId"]
    tag(mine, [gw], {"owner": "me"})
    expect_error(lambda: tag(theirs, [gw], {"owner": "them"}), 404, "InvalidResourceId.NotFound")
    try:
        visible = bindings(list_tags(theirs, [gw]))
    except ApiError as e:
        assert (e.status, e.code) == (404, "InvalidResourceId.NotFound"), e
        visible = set()
    assert visible == set()
    assert all(b[0] != gw for b in all_bindings(theirs, tags={"owner": None}))
    expect_error(lambda: untag(theirs, [gw], all_=True), 404, "InvalidResourceId.NotFound")
    assert gw_tags(mine, gw) == {"owner": "me"}


def test_tags_go_away_with_the_gateway(server, root):
    api = make_api("classic", server.endpoint, root)
    key = "gone-" + support.rand_suffix(8)
    gw = create_gateway(api)["VpnGatewayId"]
    tag(api, [gw], {key: "v"})
    assert [b[0] for b in all_bindings(api, tags={key: None})] == [gw]
    wait_status(api, gw, "active")
    api.call("DeleteVpnGateway", {"VpnGatewayId": gw})
    wait_gone(api, gw)
    assert all_bindings(api, tags={key: None}) == []
