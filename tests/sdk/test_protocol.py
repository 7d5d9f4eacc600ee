"""Wire protocol: signatures, replay protection, envelopes, formats, methods.

Spec: shared/spec/clients.md sections 0-2, shared/spec/protocol.md section 9.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid

import pytest

import support
from support import (
    ApiError,
    Creds,
    KINDS,
    RawClient,
    check_error_body,
    expect_error,
    iso_timestamp,
    items,
    make_api,
    public_ip,
)

EXPECTED_REGIONS = {"cn-hangzhou", "cn-shanghai", "cn-beijing"}


def ts(delta_minutes: float) -> str:
    return iso_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=delta_minutes))


# ---------------------------------------------------------------- DescribeRegions


def test_describe_regions(api):
    out = api.call("DescribeRegions")
    regions = items(out, "Regions", "Region")
    ids = {r["RegionId"] for r in regions}
    assert EXPECTED_REGIONS <= ids, ids
    for r in regions:
        assert r["RegionId"] and r["LocalName"] and r["RegionEndpoint"], r
    assert out["RequestId"]
    assert "Code" not in out


def test_describe_regions_raw_shape(raw):
    r = raw.rpc("DescribeRegions", method="GET")
    assert r.status == 200, r
    body = r.json()
    assert "Code" not in body
    assert isinstance(body["Regions"]["Region"], list)


@pytest.mark.parametrize("k", KINDS)
def test_unknown_region_is_404(server, root, k):
    api = make_api(k, server.endpoint, root, region="xx-nowhere-9")
    expect_error(lambda: api.call("DescribeVpnGateways"), 404, "InvalidRegionId.NotFound")


def test_unknown_region_error_body(raw):
    r = raw.rpc("DescribeVpnGateways", region="xx-nowhere-9")
    check_error_body(r, 404, "InvalidRegionId.NotFound")


# ---------------------------------------------------------------- signatures


def test_bad_signature_rpc_v1_reports_string_to_sign(server):
    raw = RawClient(server.endpoint, secret="not-the-secret")
    r = raw.rpc("DescribeRegions")
    body = check_error_body(r, 400, "SignatureDoesNotMatch")
    assert "server string to sign is:" in body["Message"], body
    # The classic SDK compares the text after the first colon with its own
    # string-to-sign: it must be exactly ours.
    assert body["Message"].split(":", 1)[1] == r.string_to_sign, (body["Message"], r.string_to_sign)


def test_bad_signature_classic_sdk_recognises_wrong_secret(server, root):
    api = make_api("classic", server.endpoint, Creds(root.ak, "wrong-secret"))
    # aliyunsdkcore turns SignatureDoesNotMatch into InvalidAccessKeySecret only
    # when the server's string-to-sign equals its own (clients.md section 1a).
    expect_error(lambda: api.call("DescribeRegions"), 400, "InvalidAccessKeySecret")


@pytest.mark.parametrize("k", ["tea-acs3", "tea-v2"])
def test_bad_signature_tea(server, root, k):
    api = make_api(k, server.endpoint, Creds(root.ak, "wrong-secret"))
    e = expect_error(lambda: api.call("DescribeRegions"), 400, "SignatureDoesNotMatch")
    assert "server string to sign is:" in (e.message or ""), e.message


def test_bad_signature_acs3_raw(server):
    r = RawClient(server.endpoint, secret="nope").acs3("DescribeRegions")
    body = check_error_body(r, 400, "SignatureDoesNotMatch")
    assert "server string to sign is:" in body["Message"]


def test_tampered_parameter_is_rejected(raw):
    """Sign one value, send another."""
    p = raw.rpc_params("CreateCustomerGateway", {"IpAddress": public_ip()})
    sig = support.rpc_v1_sign("POST", p, raw.secret)
    p["IpAddress"] = public_ip()
    p["Signature"] = sig
    r = raw.send("POST", "/?" + support._encode(p), b"")
    check_error_body(r, 400, "SignatureDoesNotMatch")


def test_signature_covers_body_params(raw):
    """Params split between query and form body are all signed (POST)."""
    r = raw.rpc("CreateCustomerGateway", {"IpAddress": public_ip(), "Name": "split-one"}, placement="split")
    assert r.status == 200, r
    # Forging: add an unsigned body parameter to a correctly signed query.
    p = raw.rpc_params("CreateCustomerGateway", {"IpAddress": public_ip()})
    p["Signature"] = support.rpc_v1_sign("POST", p, raw.secret)
    r = raw.send("POST", "/?" + support._encode(p), b"Name=forged-name",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    check_error_body(r, 400, "SignatureDoesNotMatch")


def test_acs3_body_tampering_is_rejected(raw):
    r = raw.acs3("CreateCustomerGateway", {"IpAddress": public_ip()}, body_params={"Name": "signed-name"},
                 wire_body=b"Name=other-name")
    assert r.status == 400, r
    assert r.json()["Code"], r


@pytest.mark.parametrize("chunked", [False, True])
def test_acs3_with_form_body(raw, chunked):
    ip = public_ip()
    r = raw.acs3("CreateCustomerGateway", {"IpAddress": ip}, body_params={"Name": "acs-body"}, chunked=chunked)
    assert r.status == 200, r
    cgw = r.json()["CustomerGatewayId"]
    d = raw.acs3("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
    assert d.status == 200, d
    assert d.json()["Name"] == "acs-body"
    assert d.json()["IpAddress"] == ip


def test_acs3_tampered_query_is_rejected(raw):
    """Sign one query, send another (the query is part of the ACS3 canonical request)."""
    good = support.RawClient(raw.endpoint)
    signed_ip, sent_ip = public_ip(), public_ip()
    # sign with signed_ip, then rewrite the target before sending
    orig_send = good.send

    def send(method, target, *a, **kw):
        return orig_send(method, target.replace(signed_ip, sent_ip), *a, **kw)

    good.send = send
    check_error_body(good.acs3("CreateCustomerGateway", {"IpAddress": signed_ip}), 400, "SignatureDoesNotMatch")


def test_acs3_minimal_signed_headers(raw):
    """The Node Tea SDK signs only host, content-type and x-acs-* (clients.md 1c)."""
    import hashlib as _h

    headers = {
        "host": raw.endpoint,
        "x-acs-action": "DescribeRegions",
        "x-acs-version": support.VERSION,
        "x-acs-date": iso_timestamp(),
        "x-acs-signature-nonce": uuid.uuid4().hex + uuid.uuid4().hex,
        "x-acs-content-sha256": _h.sha256(b"").hexdigest(),
    }
    signed = sorted(headers)
    query = {"RegionId": "cn-hangzhou"}
    sig = support.acs3_sign("POST", query, headers, signed, b"", raw.secret)
    send = {k: v for k, v in headers.items() if k != "host"}
    send["Authorization"] = f"ACS3-HMAC-SHA256 Credential={raw.ak},SignedHeaders={';'.join(signed)},Signature={sig}"
    send["User-Agent"] = "unsigned/1.0"
    r = raw.send("POST", "/?RegionId=cn-hangzhou", b"", send)
    assert r.status == 200, r


def test_tea_endpoint_with_scheme(server, root):
    """Config.endpoint with a scheme: Tea sends and signs host 'http://127.0.0.1:PORT' (clients.md 0.11)."""
    api = support.TeaApi(server.url, root.ak, root.secret)
    assert items(api.call("DescribeRegions"), "Regions", "Region")


@pytest.mark.parametrize("how", ["hostport", "url", "add_endpoint", "client_port"])
def test_classic_endpoint_forms(server, root, how):
    """Every way the classic SDK can be pointed at the server (clients.md 1a)."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkvpc.request.v20160428.DescribeRegionsRequest import DescribeRegionsRequest
    import json as _json

    req = DescribeRegionsRequest()
    req.set_protocol_type("http")
    if how == "client_port":
        client = AcsClient(root.ak, root.secret, "cn-hangzhou", port=server.port, auto_retry=False)
        req.set_endpoint("127.0.0.1")
    else:
        client = AcsClient(root.ak, root.secret, "cn-hangzhou", auto_retry=False)
        if how == "hostport":
            req.set_endpoint(server.endpoint)
        elif how == "url":
            req.set_endpoint(server.url)
        else:
            client.add_endpoint("cn-hangzhou", "Vpc", server.endpoint)
    body = _json.loads(client.do_action_with_exception(req))
    assert body["Regions"]["Region"]


@pytest.mark.parametrize("k", KINDS)
def test_unknown_access_key(server, k):
    api = make_api(k, server.endpoint, Creds("LTAI5tNoSuchKeyAnywhere", "whatever"))
    expect_error(lambda: api.call("DescribeRegions"), 404, "InvalidAccessKeyId.NotFound")


def test_unknown_access_key_raw_body(server):
    r = RawClient(server.endpoint, ak="LTAI5tNoSuchKeyAnywhere").rpc("DescribeRegions")
    check_error_body(r, 404, "InvalidAccessKeyId.NotFound")


# ---------------------------------------------------------------- replay protection


def test_nonce_replay_rpc_v1(raw):
    nonce = uuid.uuid4().hex
    first = raw.rpc("DescribeRegions", nonce=nonce)
    assert first.status == 200, first
    second = raw.rpc("DescribeRegions", nonce=nonce)
    check_error_body(second, 400, "SignatureNonceUsed")


def test_nonce_replay_identical_request(raw):
    """Replaying the very same signed bytes (same timestamp and nonce)."""
    first = raw.rpc("DescribeRegions", placement="body")
    assert first.status == 200, first
    p = dict(first.sent_params)
    p["Signature"] = support.rpc_v1_sign("POST", p, raw.secret)
    again = raw.send("POST", "/", support._encode(p).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    check_error_body(again, 400, "SignatureNonceUsed")


def test_nonce_replay_acs3(raw):
    nonce = uuid.uuid4().hex
    assert raw.acs3("DescribeRegions", nonce=nonce).status == 200
    check_error_body(raw.acs3("DescribeRegions", nonce=nonce), 400, "SignatureNonceUsed")


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
def test_stale_timestamp_rpc_v1(raw, minutes):
    check_error_body(raw.rpc("DescribeRegions", timestamp=ts(minutes)), 400, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize("minutes", [-10, 10])
def test_timestamp_within_window(raw, minutes):
    r = raw.rpc("DescribeRegions", timestamp=ts(minutes))
    assert r.status == 200, r


@pytest.mark.parametrize("minutes", [-16, 16])
def test_stale_date_acs3(raw, minutes):
    check_error_body(raw.acs3("DescribeRegions", date=ts(minutes)), 400, "InvalidTimeStamp.Expired")


def test_missing_timestamp(raw):
    check_error_body(raw.rpc("DescribeRegions", omit=["Timestamp"]), 400, "MissingTimestamp")


def test_malformed_timestamp(raw):
    r = raw.rpc("DescribeRegions", timestamp="yesterday at noon")
    assert r.status == 400, r
    # protocol.md 9.2: both codes are observed in the wild.
    assert r.json()["Code"] in ("IllegalTimestamp", "InvalidTimeStamp.Format", "MissingTimestamp"), r


def test_rejected_nonce_is_not_burned_by_a_bad_signature(server, raw):
    """A request that fails authentication must not consume the nonce."""
    nonce = uuid.uuid4().hex
    bad = RawClient(server.endpoint, secret="wrong").rpc("DescribeRegions", nonce=nonce)
    assert bad.status == 400, bad
    good = raw.rpc("DescribeRegions", nonce=nonce)
    assert good.status == 200, good


@pytest.mark.parametrize("name", ["Signature", "SignatureNonce", "AccessKeyId"])
def test_missing_auth_parameter(raw, name):
    p = raw.rpc_params("DescribeRegions")
    p["Signature"] = support.rpc_v1_sign("POST", p, raw.secret)
    del p[name]
    r = raw.send("POST", "/?" + support._encode(p), b"")
    check_error_body(r, 400, "Missing" + name)


@pytest.mark.parametrize("name,value", [("SignatureMethod", "HMAC-SHA256"), ("SignatureVersion", "2.0")])
def test_unsupported_signature_method_or_version(raw, name, value):
    p = raw.rpc_params("DescribeRegions")
    p[name] = value
    p["Signature"] = support.rpc_v1_sign("POST", p, raw.secret)
    r = raw.send("POST", "/?" + support._encode(p), b"")
    assert r.status == 400, r
    assert r.json()["Code"], r


# ---------------------------------------------------------------- action / version


@pytest.mark.parametrize("action", ["NoSuchAction", "DescribeInstances"])
def test_unknown_action(raw, action):
    check_error_body(raw.rpc(action), 404, "InvalidAction.NotFound")


@pytest.mark.parametrize("version", ["2014-05-26", "2016-04-29", "latest"])
def test_bad_version(raw, version):
    check_error_body(raw.rpc("DescribeRegions", version=version), 400, "InvalidVersion")


def test_acs3_bad_version(raw):
    check_error_body(raw.acs3("DescribeRegions", version="2014-05-26"), 400, "InvalidVersion")


def test_acs3_unknown_action(raw):
    check_error_body(raw.acs3("NoSuchAction"), 404, "InvalidAction.NotFound")


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("k", KINDS)
def test_missing_required_parameter(server, root, k):
    api = make_api(k, server.endpoint, root)
    expect_error(lambda: api.call("CreateVpnGateway", {"Bandwidth": 10}), 400, "MissingVpcId")
    expect_error(lambda: api.call("CreateVpnGateway", {"VpcId": support.vpc_id()}), 400, "MissingBandwidth")
    expect_error(lambda: api.call("DescribeVpnGateway", {}), 400, "MissingVpnGatewayId")
    expect_error(lambda: api.call("CreateCustomerGateway", {}), 400, "MissingIpAddress")


def test_missing_region_id(raw):
    check_error_body(raw.rpc("DescribeVpnGateways", region=None), 400, "MissingRegionId")


def test_missing_required_error_message_names_parameter(raw):
    body = check_error_body(raw.rpc("CreateVpnGateway", {"Bandwidth": 10}), 400, "MissingVpcId")
    assert "VpcId" in body["Message"], body


@pytest.mark.parametrize("k", KINDS)
def test_invalid_bandwidth_value(api, k):
    expect_error(lambda: api.call("CreateVpnGateway", {"VpcId": support.vpc_id(), "Bandwidth": 7}),
                 400, "InvalidParameter")


@pytest.mark.parametrize("value", ["abc", "10.5", "-10", "1e1"])
def test_malformed_integer(raw, value):
    r = raw.rpc("CreateVpnGateway", {"VpcId": support.vpc_id(), "Bandwidth": value})
    check_error_body(r, 400, "InvalidParameter")


@pytest.mark.parametrize("value", ["yes", "maybe"])
def test_malformed_boolean(raw, value):
    r = raw.rpc("CreateVpnGateway", {"VpcId": support.vpc_id(), "Bandwidth": 10, "EnableSsl": value})
    check_error_body(r, 400, "InvalidParameter")


def test_owner_parameters_are_ignored(server, root):
    """Classic SDK users often set OwnerId & co; they must not break anything (protocol.md 9.7)."""
    api = make_api("classic", server.endpoint, root)
    out = api.call("DescribeVpnGateways", {"OwnerId": 1234567, "ResourceOwnerAccount": "someone",
                                           "ResourceOwnerId": 42, "OwnerAccount": "x"})
    assert "VpnGateways" in out


# ---------------------------------------------------------------- envelopes


def test_error_body_shape_and_content_type(raw):
    r = raw.rpc("DescribeVpnGateway", {"VpnGatewayId": "vpn-" + "0" * 21})
    body = check_error_body(r, 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert "json" in (r.header("Content-Type") or "").lower(), r.headers
    assert body["HostId"], body
    assert isinstance(body["Recommend"], str)


def test_request_ids_are_unique(raw):
    ids = {raw.rpc("DescribeRegions").json()["RequestId"] for _ in range(5)}
    assert len(ids) == 5


def test_success_body_never_has_code(raw):
    for action, params in [("DescribeRegions", {}), ("DescribeVpnGateways", {}),
                           ("DescribeCustomerGateways", {}),
                           ("CreateCustomerGateway", {"IpAddress": public_ip()})]:
        r = raw.rpc(action, params)
        assert r.status == 200, (action, r)
        body = r.json()
        assert "Code" not in body, (action, body)
        assert body["RequestId"], (action, body)


def test_response_not_compressed(raw):
    r = raw.rpc("DescribeRegions", headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status == 200
    assert (r.header("Content-Encoding") or "identity") == "identity", r.headers
    r.json()


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["XML", "xml"])
def test_xml_success(raw, fmt):
    r = raw.rpc("DescribeRegions", fmt=fmt)
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "DescribeRegionsResponse", r.body[:200]
    assert root.findtext("RequestId")
    ids = {e.text for e in root.iter("RegionId")}
    assert EXPECTED_REGIONS <= ids
    # wrapper shape: <Regions><Region>...</Region></Regions>
    assert root.find("Regions/Region/RegionId") is not None, r.body[:400]


@pytest.mark.parametrize("fmt", ["XML", "xml"])
def test_xml_error(raw, fmt):
    r = raw.rpc("DescribeVpnGateway", {"VpnGatewayId": "vpn-" + "1" * 21}, fmt=fmt)
    assert r.status == 404, r
    root = r.xml()
    assert root.tag == "Error", r.body[:200]
    assert root.findtext("Code") == "InvalidVpnGatewayInstanceId.NotFound"
    for f in ("RequestId", "HostId", "Message"):
        assert root.findtext(f), (f, r.body)


def test_xml_gateway_level_error(server):
    r = RawClient(server.endpoint, secret="wrong").rpc("DescribeRegions", fmt="XML")
    assert r.status == 400, r
    root = r.xml()
    assert root.tag == "Error"
    assert root.findtext("Code") == "SignatureDoesNotMatch"


def test_xml_list_wrapper(raw):
    ip = public_ip()
    created = raw.rpc("CreateCustomerGateway", {"IpAddress": ip})
    assert created.status == 200, created
    cgw = created.json()["CustomerGatewayId"]
    r = raw.rpc("DescribeCustomerGateways", {"CustomerGatewayId": cgw}, fmt="XML")
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "DescribeCustomerGatewaysResponse"
    assert [e.text for e in root.findall("CustomerGateways/CustomerGateway/IpAddress")] == [ip], r.body[:500]
    assert root.findtext("TotalCount") == "1"


def test_xml_nested_tags_and_escaping(raw):
    api = support.RawApi(raw.endpoint, raw.ak, raw.secret)
    gw = support.create_gateway(api)["VpnGatewayId"]
    tricky = 'a<b>&"c\'d'
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": "env", "Value": tricky}]})
    r = raw.rpc("DescribeVpnGateway", {"VpnGatewayId": gw}, fmt="XML")
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "DescribeVpnGatewayResponse"
    assert root.findtext("VpnGatewayId") == gw
    assert [(t.findtext("Key"), t.findtext("Value")) for t in root.findall("Tags/Tag")] == [("env", tricky)]
    lst = raw.rpc("DescribeVpnGateways", {"VpnGatewayId": gw}, fmt="XML").xml()
    assert [e.text for e in lst.findall("VpnGateways/VpnGateway/VpnGatewayId")] == [gw]
    assert [e.text for e in lst.findall("VpnGateways/VpnGateway/Tags/Tag/Value")] == [tricky]


def test_json_escaping_round_trip(raw):
    api = support.RawApi(raw.endpoint, raw.ak, raw.secret)
    gw = support.create_gateway(api)["VpnGatewayId"]
    values = ['quote"s', "back\\slash", "tab\tnew\nline", "网关 ☃ ünï", "</script>"]
    api.call("TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw],
                              "Tag": [{"Key": f"k{i}", "Value": v} for i, v in enumerate(values)]})
    got = support.tags_of(support.describe_gateway(api, gw))
    assert got == {f"k{i}": v for i, v in enumerate(values)}


@pytest.mark.parametrize("fmt", ["JSON", "json", None, "None"])
def test_json_default(raw, fmt):
    r = raw.rpc("DescribeRegions", fmt=fmt)
    assert r.status == 200, r
    assert "Regions" in r.json()


# ---------------------------------------------------------------- methods, placements, encodings


@pytest.mark.parametrize(
    "method,placement,chunked",
    [
        ("GET", "query", False),       # pop-core GET
        ("POST", "query", False),      # classic SDK
        ("POST", "body", False),       # pop-core POST
        ("POST", "split", False),      # common params in query, action params in the body
        ("POST", "body", True),        # chunked request body (Node Tea)
        ("POST", "split", True),
    ],
)
def test_methods_and_placements(raw, method, placement, chunked):
    ip = public_ip()
    name = f"m-{method}-{placement}-{int(chunked)}"
    r = raw.rpc("CreateCustomerGateway", {"IpAddress": ip, "Name": name, "Asn": "65001"},
                method=method, placement=placement, chunked=chunked)
    assert r.status == 200, r
    cgw = r.json()["CustomerGatewayId"]
    d = raw.rpc("DescribeCustomerGateway", {"CustomerGatewayId": cgw}, method=method, placement=placement,
                chunked=chunked)
    assert d.status == 200, d
    got = d.json()
    assert (got["IpAddress"], got["Name"], got["Asn"]) == (ip, name, 65001), got


@pytest.mark.parametrize("style", ["rfc3986", "plus", "loose"])
@pytest.mark.parametrize("placement", ["query", "body"])
def test_wire_encodings(raw, style, placement):
    """Decode, then canonicalize: '+' for space, raw or escaped * ! ' ( ) all verify."""
    token = f"tok en*!'()~/+:-{uuid.uuid4().hex[:8]}"
    r = raw.rpc("CreateCustomerGateway", {"IpAddress": public_ip(), "ClientToken": token},
                placement=placement, style=style)
    assert r.status == 200, r
    again = raw.rpc("CreateCustomerGateway", {"IpAddress": r.sent_params["IpAddress"], "ClientToken": token},
                    placement=placement, style="rfc3986")
    # same token, same params -> the very same gateway (proves the token was decoded identically)
    assert again.status == 200, again
    assert again.json()["CustomerGatewayId"] == r.json()["CustomerGatewayId"]


def test_empty_parameter_value_is_signed(raw):
    """The classic SDK sends and signs SignatureType= (empty)."""
    r = raw.rpc("DescribeRegions", {"SignatureType": ""})
    assert r.status == 200, r


def test_keep_alive(raw):
    conn = raw.connection()
    try:
        for i in range(5):
            r = raw.rpc("DescribeRegions", conn=conn, method="POST" if i % 2 else "GET")
            assert r.status == 200, r
        # an error must not close the connection either
        r = raw.rpc("DescribeVpnGateway", {"VpnGatewayId": "vpn-" + "2" * 21}, conn=conn)
        assert r.status == 404
        assert raw.rpc("DescribeRegions", conn=conn).status == 200
    finally:
        conn.close()


# ---------------------------------------------------------------- throttling


def test_rate_limit_per_account(server_factory):
    srv = server_factory(["--rate-limit", "3", "--transition-delay-ms", "0"])
    other = srv.create_account()
    raw = RawClient(srv.endpoint)
    statuses = []
    codes = []
    for _ in range(12):
        r = raw.rpc("DescribeRegions")
        statuses.append(r.status)
        if r.status != 200:
            codes.append(r.json().get("Code"))
    assert statuses[0] == 200, statuses
    assert 400 in statuses, statuses
    assert set(codes) == {"Throttling.User"}, codes
    assert set(statuses) <= {200, 400}, statuses
    # another account has its own budget
    r = RawClient(srv.endpoint, other.ak, other.secret).rpc("DescribeRegions")
    assert r.status == 200, r
    # and the budget refills
    time.sleep(1.5)
    assert raw.rpc("DescribeRegions").status == 200


def test_rate_limit_through_classic_sdk(server_factory, root):
    srv = server_factory(["--rate-limit", "2"])
    api = make_api("classic", srv.endpoint, root)
    errors = []
    for _ in range(10):
        try:
            api.call("DescribeRegions")
        except ApiError as e:
            errors.append((e.status, e.code))
    assert errors and set(errors) == {(400, "Throttling.User")}, errors


def test_no_rate_limit_by_default(raw):
    statuses = {raw.rpc("DescribeRegions").status for _ in range(30)}
    assert statuses == {200}
