"""Hostile or unusual input never yields a 5xx or a dropped connection; races keep the rules."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import support
from support import ApiError, RawApi, RawClient, create_gateway, describe_gateway, make_api, public_ip


def assert_clean_error(r, status=None):
    assert 400 <= r.status < 500, r
    if status is not None:
        assert r.status == status, r
    body = r.json()
    assert body.get("Code") and body.get("RequestId"), body


@pytest.mark.parametrize(
    "target,body,ctype",
    [
        ("/?Action=DescribeRegions&%ZZ=1", None, None),                     # bad percent-encoding
        ("/?Action=DescribeRegions&Name=%C3%28", None, None),              # invalid UTF-8
        ("/?" + "A" * 20000 + "=1", None, None),                          # very long name
        ("/", b"Action=DescribeRegions&%ZZ", "application/x-www-form-urlencoded"),
        ("/", b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        ("/", b'{"Action":"DescribeRegions"}', "application/json"),
        ("/", b"", None),                                                  # nothing at all
        ("/?Action=DescribeRegions&Action=DescribeVpnGateways", None, None),  # duplicate names
    ],
)
def test_garbage_requests_get_4xx(raw, target, body, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = raw.send("POST", target, body if body is not None else b"", headers)
    assert_clean_error(r)


def test_other_paths_and_methods(raw):
    for method, path in [("GET", "/favicon.ico"), ("PUT", "/"), ("DELETE", "/"), ("GET", "/v3/whatever")]:
        r = raw.send(method, path, b"" if method != "GET" else None)
        assert r.status < 500, (method, path, r)


def test_unsigned_request(raw):
    r = raw.send("GET", "/?Action=DescribeRegions&Version=2016-04-28&RegionId=cn-hangzhou")
    assert_clean_error(r, 400)


def test_huge_parameter_value(raw):
    r = raw.rpc("CreateCustomerGateway", {"IpAddress": public_ip(), "Name": "n" * 200_000}, placement="body")
    assert_clean_error(r, None)
    assert raw.rpc("DescribeRegions").status == 200  # still serving


def test_half_request_does_not_hurt(server, raw):
    """A client that sends half a request and vanishes must not stall the server."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nAction=Desc")
    try:
        assert raw.rpc("DescribeRegions").status == 200
    finally:
        s.close()
    assert raw.rpc("DescribeRegions").status == 200


# ---------------------------------------------------------------- races


def _pool(fn, n, workers=8):
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(lambda i: _capture(fn, i), range(n)))


def _capture(fn, i):
    try:
        return ("ok", fn(i))
    except ApiError as e:
        return ("err", (e.status, e.code))


def test_parallel_creates(server, root):
    creds = server.create_account()
    results = _pool(lambda i: RawApi(server.endpoint, creds.ak, creds.secret).call(
        "CreateCustomerGateway", {"IpAddress": public_ip(), "Name": f"par-{i}"}), 40)
    assert all(k == "ok" for k, _ in results), results
    ids = {v["CustomerGatewayId"] for _, v in results}
    assert len(ids) == 40
    api = make_api("classic", server.endpoint, creds)
    assert api.call("DescribeCustomerGateways")["TotalCount"] == 40


def test_parallel_duplicate_ip_only_one_wins(server):
    creds = server.create_account()
    ip = public_ip()
    results = _pool(lambda i: RawApi(server.endpoint, creds.ak, creds.secret).call(
        "CreateCustomerGateway", {"IpAddress": ip}), 16)
    oks = [v for k, v in results if k == "ok"]
    errs = [v for k, v in results if k == "err"]
    assert len(oks) == 1, results
    assert set(errs) == {(400, "InvalidIpAddress.AlreadyExist")}, errs


def test_parallel_same_client_token(server):
    creds = server.create_account()
    vpc = support.vpc_id()
    params = {"VpcId": vpc, "Bandwidth": 10, "ClientToken": "race-" + support.rand_suffix(10)}
    results = _pool(lambda i: RawApi(server.endpoint, creds.ak, creds.secret).call("CreateVpnGateway", params), 16)
    assert all(k == "ok" for k, _ in results), results
    assert len({v["VpnGatewayId"] for _, v in results}) == 1, results
    api = make_api("classic", server.endpoint, creds)
    assert api.call("DescribeVpnGateways", {"VpcId": vpc})["TotalCount"] == 1


def test_parallel_quota(server_factory, root):
    srv = server_factory(["--quota-vpn-gateways", "3"])
    results = _pool(lambda i: RawApi(srv.endpoint, root.ak, root.secret).call(
        "CreateVpnGateway", {"VpcId": support.vpc_id(), "Bandwidth": 10}), 12)
    oks = [v for k, v in results if k == "ok"]
    errs = [v for k, v in results if k == "err"]
    assert len(oks) == 3, results
    assert set(errs) == {(400, "Resource.QuotaFull")}
    assert make_api("classic", srv.endpoint, root).call("DescribeVpnGateways")["TotalCount"] == 3


def test_parallel_tagging_respects_limit(server, root):
    api = RawApi(server.endpoint, root.ak, root.secret)
    gw = create_gateway(api)["VpnGatewayId"]
    results = _pool(lambda i: RawApi(server.endpoint, root.ak, root.secret).call(
        "TagResources", {"ResourceType": "VpnGateWay", "ResourceId": [gw], "Tag": [{"Key": f"p{i}", "Value": "v"}]}),
        30)
    oks = [v for k, v in results if k == "ok"]
    errs = {v for k, v in results if k == "err"}
    assert len(oks) == 20, results
    assert errs == {(400, "QuotaExceeded.TagNum")}
    assert len(support.tags_of(describe_gateway(api, gw))) == 20


def test_acknowledged_writes_survive_kill9_under_load(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0"])
    acked: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer():
        api = RawApi(srv.endpoint, root.ak, root.secret)
        while not stop.is_set():
            try:
                out = api.call("CreateCustomerGateway", {"IpAddress": public_ip()})
            except (ApiError, OSError, http.client.HTTPException, ValueError):
                continue  # a request cut by the kill is not acknowledged
            with lock:
                acked.append(out["CustomerGatewayId"])

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    support.wait_for(lambda: len(acked) >= 40, timeout=20, what="40 acknowledged creates")
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    with lock:
        ids = list(acked)
    srv.start()
    api = RawApi(srv.endpoint, root.ak, root.secret)
    total = api.call("DescribeCustomerGateways")["TotalCount"]
    assert total >= len(ids), (total, len(ids))
    for cgw in ids:
        api.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})
