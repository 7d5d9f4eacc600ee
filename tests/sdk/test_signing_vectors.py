"""The suite's own signers (support.py) against the spec's golden vectors.

These run without a server: they prove that the hand-signed requests used by
the negative protocol tests are signed exactly like the official SDKs sign.
"""

import json
import urllib.parse
from pathlib import Path

import pytest

from support import REPO, acs3_sign, rpc_v1_sign, rpc_v1_string_to_sign

# Signed requests captured from the official SDKs, kept in the repository.
CAPTURES = REPO / "tests" / "fixtures" / "captures"
CAPTURE_SETS = ("py_classic", "py_tea", "py_tea_v2", "node_popcore", "node_tea")
CAPTURE_SECRET = "CaptureSecret~0123456789abcdef"

VECTOR_B = {
    "AccessKeyId": "testid",
    "Action": "CreateVpnGateway",
    "Bandwidth": "5",
    "Format": "JSON",
    "Name": "my vpn 网关",
    "RegionId": "cn-hangzhou",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0axxxxxxxx",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-05-23T12:46:24Z",
    "Version": "2016-04-28",
    "VpcId": "vpc-bp1ub1yt9cvakoelj****",
}


def test_rpc_v1_protocol_vector_b():
    assert rpc_v1_sign("GET", VECTOR_B, "testsecret") == "154RmvIceeELX92LyToanbGaE3k="
    assert rpc_v1_sign("POST", VECTOR_B, "testsecret") == "cKuTGIX4QMmfTBjneFh6AV7bZbM="
    assert "Name%3Dmy%2520vpn%2520%25E7%25BD%2591%25E5%2585%25B3" in rpc_v1_string_to_sign("GET", VECTOR_B)


def _captures():
    return sorted(p for d in CAPTURE_SETS for p in (CAPTURES / d).glob("*.json"))


@pytest.mark.parametrize("name", CAPTURE_SETS)
def test_capture_set_is_present(name):
    """A missing vector set fails here instead of silently shrinking the parametrized test below."""
    assert list((CAPTURES / name).glob("*.json")), f"no captures in {CAPTURES / name}"


@pytest.mark.parametrize("path", _captures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_capture_signature(path: Path):
    cap = json.loads(path.read_text())
    req = cap["request"]
    sig = cap["signature"]
    bad = path.name.endswith("_BADSIG.json")
    if sig["scheme"] == "rpc-v1":
        params = dict(req["query_params"])
        body = req.get("body") or ""
        ctype = dict((k.lower(), v) for k, v in req["headers"]).get("content-type", "")
        if body and "x-www-form-urlencoded" in ctype:
            params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
        got = rpc_v1_sign(req["method"], params, CAPTURE_SECRET)
        assert (got == params["Signature"]) != bad
        if not bad:
            assert rpc_v1_string_to_sign(req["method"], params) == sig["string_to_sign"]
    elif sig["scheme"] == "acs3":
        headers = {}
        for k, v in req["headers"]:
            headers[k.lower()] = v
        auth = headers["authorization"].split(" ", 1)[1]
        parts = dict(p.split("=", 1) for p in auth.split(","))
        signed = parts["SignedHeaders"].split(";")
        query = dict(req["query_params"])
        body = (req.get("body") or "").encode()
        got = acs3_sign(req["method"], query, headers, signed, body, CAPTURE_SECRET)
        assert (got == parts["Signature"]) != bad
    else:
        pytest.skip(f"scheme {sig['scheme']}")
