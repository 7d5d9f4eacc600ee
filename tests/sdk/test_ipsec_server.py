"""The IPsec server (client-to-site IPsec with a PSK) through the official Python SDKs (classic,
Tea ACS3, Tea v2): CreateIpsecServer, UpdateIpsecServer, ListIpsecServers, DeleteIpsecServer.

Spec: shared/spec/actions/{CreateIpsecServer,UpdateIpsecServer,ListIpsecServers,
DeleteIpsecServer}.yaml. The name is IpSecServerName on Create and IpsecServerName on Update,
List and in every response; IkeConfig/IpsecConfig are JSON strings in and nested objects out;
ListIpsecServers answers a flat "IpsecServers" array with NextToken/MaxResults paging and the PSK
in clear.

Where the documents are silent the tests pin the server's documented choices
(src/actions/ipsec_server.rs, src/actions/ssl_vpn/mod.rs, src/actions/ipsec.rs):
- the gateway needs SSL-VPN enabled (400 VpnGateway.SslVpnDisabled) and holds one server
  (400 OperationFailed.IPsecServerExist);
- an IPsec server and IPsec connections never share a gateway, checked both ways
  (400 VpnGateway.IPsecServerAndVpnConnectionConflict);
- ClientIpPool is a /16../29 CIDR (400 IllegalParam.ClientIpPool) that may overlap neither
  LocalSubnet nor the gateway's SSL-VPN client pool (400 InvalidParameter.ClientIpPoolConflict);
- IkeConfig/IpsecConfig are read by the CreateVpnConnection parser (same error codes);
- PskEnabled takes only true, Psk 1-100 characters (400 InvalidParameter otherwise);
- DryRun=true answers 400 DryRunOperation; an unknown server is 404 InvalidIpsecServerId.NotFound;
- every change puts the gateway in `updating` (400 VpnGateway.Configuring meanwhile);
- MultiFactorAuthEnabled / IDaaSInstanceId come from the gateway's SSL-VPN server.

The tests where the wire shapes matter (create, list, update, dry run, accounts) run once per SDK
flavour; the rule tests run with one flavour each (spread over the three) to keep the run short.
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
import time

import pytest

import support
from support import (
    active_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    public_ip,
    wait_for,
    wait_status,
)

UNKNOWN_GW = "vpn-" + "z" * 21
UNKNOWN_ISS = "iss-" + "z" * 21
ISS_ID_RE = re.compile(r"^iss-[a-z0-9]{21}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PSK_RE = re.compile(r"^[A-Za-z0-9]{16}$")
CONFLICT = "VpnGateway.IPsecServerAndVpnConnectionConflict"
POOL_CONFLICT = "InvalidParameter.ClientIpPoolConflict"

LIST_FIELDS = {"CreationTime", "OnlineClientCount", "InternetIp", "IpsecServerName", "IDaaSInstanceId",
               "EffectImmediately", "VpnGatewayId", "LocalSubnet", "Psk", "RegionId", "PskEnabled",
               "IpsecServerId", "MultiFactorAuthEnabled", "MaxConnections", "ClientIpPool", "IkeConfig",
               "IpsecConfig"}
DEFAULT_IPSEC = {"IpsecEncAlg": "aes", "IpsecAuthAlg": "sha1", "IpsecPfs": "group2", "IpsecLifetime": 86400}
_remote = itertools.count(1)


# ---------------------------------------------------------------- helpers


def default_ike(local_id: str) -> dict:
    return {"IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "sha1", "IkePfs": "group2",
            "IkeLifetime": 86400, "LocalId": local_id, "RemoteId": ""}


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=10)


def ssl_gateway(api, **over) -> dict:
    """An active gateway with SSL-VPN enabled, as DescribeVpnGateway shows it."""
    gw = active_gateway(api, EnableSsl=True, **over)["VpnGatewayId"]
    return describe_gateway(api, gw)


def create_server(api, gw: str, local: str = "10.0.0.0/24", pool: str = "172.16.0.0/24", wait: bool = True,
                  **extra) -> dict:
    params = {"VpnGatewayId": gw, "LocalSubnet": local, "ClientIpPool": pool}
    params.update({k: v for k, v in extra.items() if v is not None})
    out = api.call("CreateIpsecServer", params)
    if wait:
        wait_active(api, gw)
    return out


def update_server(api, gw: str, iss: str, **params) -> dict:
    out = api.call("UpdateIpsecServer", {"IpsecServerId": iss, **params})
    wait_active(api, gw)
    return out


def delete_server(api, gw: str, iss: str) -> dict:
    out = api.call("DeleteIpsecServer", {"IpsecServerId": iss})
    wait_active(api, gw)
    return out


def list_body(api, **filters) -> dict:
    body = api.call("ListIpsecServers", filters)
    assert isinstance(body.get("IpsecServers"), list), f"IpsecServers must be a flat list: {body}"
    return body


def servers(api, **filters) -> list[dict]:
    return list_body(api, **filters)["IpsecServers"]


def server_of(api, gw: str) -> dict:
    (s,) = servers(api, VpnGatewayId=gw)
    return s


def new_cgw(api) -> str:
    return api.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]


def remote_net() -> str:
    n = next(_remote)
    return f"192.{150 + (n // 250) % 8}.{n % 250}.0/24"


def create_conn(api, gw: str, wait: bool = True, **extra) -> str:
    params = {"VpnGatewayId": gw, "CustomerGatewayId": new_cgw(api), "LocalSubnet": "10.0.0.0/24",
              "RemoteSubnet": remote_net(), **extra}
    out = api.call("CreateVpnConnection", params)
    if wait:
        wait_active(api, gw)
    return out["VpnConnectionId"]


def connections(api, gw: str) -> set[str]:
    body = api.call("DescribeVpnConnections", {"VpnGatewayId": gw, "PageSize": 50})
    return {c["VpnConnectionId"] for c in items(body, "VpnConnections", "VpnConnection")}


def iso_seconds(s: str) -> int:
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "RequestId"}


# ---------------------------------------------------------------- create and list


def test_create_defaults_and_list_fields(api, kind):
    gw = ssl_gateway(api, SslConnections=10)
    gw_id, ip = gw["VpnGatewayId"], gw["InternetIp"]
    before = int(time.time())
    out = create_server(api, gw_id, local="10.1.0.0/24,10.2.0.0/24", pool="172.16.10.0/24",
                        IpSecServerName="srv-1", wait=False)
    # Create answers exactly the documented fields.
    assert set(out) == {"RequestId", "IpsecServerId", "IpsecServerName", "VpnGatewayId", "RegionId",
                        "CreationTime"}, out
    iss = out["IpsecServerId"]
    assert ISS_ID_RE.match(iss), out
    assert (out["IpsecServerName"], out["VpnGatewayId"], out["RegionId"]) == ("srv-1", gw_id, support.REGION), out
    assert ISO_RE.match(out["CreationTime"]), out
    assert before - 5 <= iso_seconds(out["CreationTime"]) <= time.time() + 5, out
    # The change is applied asynchronously: the gateway is `updating` until it has been.
    assert describe_gateway(api, gw_id)["Status"] == "updating"
    wait_active(api, gw_id)

    body = list_body(api, VpnGatewayId=gw_id)
    assert (body["TotalCount"], body["MaxResults"], body["NextToken"]) == (1, 10, ""), body
    (s,) = body["IpsecServers"]
    assert LIST_FIELDS <= set(s), f"missing fields: {LIST_FIELDS - set(s)}"
    assert (s["IpsecServerId"], s["IpsecServerName"], s["VpnGatewayId"], s["RegionId"]) == \
        (iss, "srv-1", gw_id, support.REGION), s
    assert (s["InternetIp"], s["LocalSubnet"], s["ClientIpPool"]) == \
        (ip, "10.1.0.0/24,10.2.0.0/24", "172.16.10.0/24"), s
    assert s["CreationTime"] == out["CreationTime"], s
    assert (s["EffectImmediately"], s["PskEnabled"], s["MultiFactorAuthEnabled"]) == (False, True, False), s
    assert (s["OnlineClientCount"], s["MaxConnections"], s["IDaaSInstanceId"]) == (0, 10, ""), s
    # No Psk given: a random 16-character one, returned in clear.
    assert PSK_RE.match(s["Psk"]), f"generated PSK must be 16 random characters: {s['Psk']!r}"
    # Nested objects with the documented defaults; LocalId is the gateway's public IP.
    assert isinstance(s["IkeConfig"], dict) and isinstance(s["IpsecConfig"], dict), s
    assert s["IkeConfig"] == default_ike(ip), s["IkeConfig"]
    assert s["IpsecConfig"] == DEFAULT_IPSEC, s["IpsecConfig"]


@pytest.mark.parametrize("kind", ["tea-v2"])
def test_generated_psks_differ_and_gateway_connections_size(api):
    """MaxConnections follows the gateway's SslConnections (default 5 with SSL enabled)."""
    a, b = ssl_gateway(api)["VpnGatewayId"], ssl_gateway(api)["VpnGatewayId"]
    create_server(api, a)
    create_server(api, b)
    sa, sb = server_of(api, a), server_of(api, b)
    assert PSK_RE.match(sa["Psk"]) and PSK_RE.match(sb["Psk"]), (sa, sb)
    assert sa["Psk"] != sb["Psk"]
    assert sa["MaxConnections"] == sb["MaxConnections"] == 5, (sa, sb)


def test_create_explicit_settings(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    ike = json.dumps({"IkeVersion": "ikev1", "IkeMode": "aggressive", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha256",
                      "IkePfs": "group14", "IkeLifetime": 3600, "LocalId": "vpn.example.com",
                      "RemoteId": "client.example.com"})
    ipsec = json.dumps({"IpsecEncAlg": "aes192", "IpsecAuthAlg": "sha512", "IpsecPfs": "group5",
                        "IpsecLifetime": "1800"})
    out = create_server(api, gw, local="192.168.0.0/16,172.17.0.0/16", pool="10.10.0.0/20",
                        IpSecServerName="explicit_Server-2", EffectImmediately=True, IkeConfig=ike,
                        IpsecConfig=ipsec, PskEnabled=True, Psk="Cfd123-secret!")
    s = server_of(api, gw)
    assert (s["IpsecServerId"], s["IpsecServerName"]) == (out["IpsecServerId"], "explicit_Server-2"), s
    assert (s["LocalSubnet"], s["ClientIpPool"]) == ("192.168.0.0/16,172.17.0.0/16", "10.10.0.0/20"), s
    assert (s["EffectImmediately"], s["PskEnabled"], s["Psk"]) == (True, True, "Cfd123-secret!"), s
    assert s["IkeConfig"] == {"IkeVersion": "ikev1", "IkeMode": "aggressive", "IkeEncAlg": "aes256",
                              "IkeAuthAlg": "sha256", "IkePfs": "group14", "IkeLifetime": 3600,
                              "LocalId": "vpn.example.com", "RemoteId": "client.example.com"}, s["IkeConfig"]
    # A lifetime sent as a string is read as the number it spells.
    assert s["IpsecConfig"] == {"IpsecEncAlg": "aes192", "IpsecAuthAlg": "sha512", "IpsecPfs": "group5",
                                "IpsecLifetime": 1800}, s["IpsecConfig"]


@pytest.mark.parametrize("kind", ["classic"])
def test_partial_ike_config_keeps_other_defaults(api):
    gw = ssl_gateway(api)
    create_server(api, gw["VpnGatewayId"], IkeConfig=json.dumps({"IkeVersion": "ikev1"}),
                  IpsecConfig=json.dumps({"IpsecPfs": "group14"}))
    s = server_of(api, gw["VpnGatewayId"])
    assert s["IkeConfig"] == {**default_ike(gw["InternetIp"]), "IkeVersion": "ikev1"}, s["IkeConfig"]
    assert s["IpsecConfig"] == {**DEFAULT_IPSEC, "IpsecPfs": "group14"}, s["IpsecConfig"]


def test_name_spellings_and_default_name(server, root):
    """IpSecServerName is Create's documented spelling; IpsecServerName is accepted too (raw client:
    the SDK models only know the documented one). Without a name, the server is named by its ID."""
    api = make_api("raw", server.endpoint, root)
    g1, g2, g3 = (ssl_gateway(api)["VpnGatewayId"] for _ in range(3))
    assert create_server(api, g1, IpSecServerName="documented")["IpsecServerName"] == "documented"
    assert create_server(api, g2, IpsecServerName="lower_case")["IpsecServerName"] == "lower_case"
    out = create_server(api, g3)
    assert out["IpsecServerName"] == out["IpsecServerId"], out
    assert [server_of(api, g)["IpsecServerName"] for g in (g1, g2, g3)] == \
        ["documented", "lower_case", out["IpsecServerId"]]
    # An invalid name is refused.
    g4 = ssl_gateway(api)["VpnGatewayId"]
    for bad in ("x", "1abc", "a.b", "http://x"):
        expect_error(lambda: create_server(api, g4, wait=False, IpSecServerName=bad), 400, "InvalidName")
    assert servers(api, VpnGatewayId=g4) == []


@pytest.mark.parametrize("kind", ["tea-acs3"])
def test_create_bad_input(api):
    gw = ssl_gateway(api)["VpnGatewayId"]

    def bad(code: str, status: int = 400, local: str = "10.0.0.0/24", pool: str = "172.16.0.0/24", **extra):
        return expect_error(lambda: create_server(api, gw, local=local, pool=pool, wait=False, **extra),
                            status, code)

    e = bad("IllegalParam.LocalSubnet", local="10.0.0.0/33")
    assert e.message == 'The specified "LocalSubnet" (10.0.0.0/33) is invalid.', e.message
    for local in ("bogus", "10.0.0.1/24", "10.0.0.0/24,nope", "10.0.0.0/24,"):
        e = bad("IllegalParam.LocalSubnet", local=local)
        assert e.message.startswith('The specified "LocalSubnet" ('), e.message
    # At most ten CIDR blocks.
    many = ",".join(f"10.{i}.0.0/24" for i in range(11))
    bad("IllegalParam.LocalSubnet", local=many)
    for pool in ("172.16.0.0/15", "172.16.0.0/30", "172.16.0.0/32", "bogus", "172.16.0.1/24"):
        bad("IllegalParam.ClientIpPool", pool=pool)
    # The client pool may not overlap what the clients reach, either way round.
    bad(POOL_CONFLICT, local="10.0.0.0/16", pool="10.0.5.0/24")
    bad(POOL_CONFLICT, local="192.168.1.0/24,10.0.5.0/24", pool="10.0.0.0/16")
    # Phase 1 and phase 2 are read like CreateVpnConnection's IkeConfig / IpsecConfig.
    for ike in ({"IkeVersion": "ikev3"}, {"IkeLifetime": 86401}, {"IkeMode": "quick"}, {"IkeEncAlg": "rot13"},
                {"IkeAuthAlg": "crc32"}, {"IkePfs": "group99"}, {"NoSuchKey": 1}, {"Psk": "x" * 101}):
        bad("InvalidParameter", IkeConfig=json.dumps(ike))
    bad("InvalidParameter", IkeConfig="{not json")
    bad("InvalidParameter", IpsecConfig=json.dumps({"IpsecLifetime": 86401}))
    bad("InvalidParameter", IpsecConfig=json.dumps({"IpsecEncAlg": "rot13"}))
    bad("NotSupportVpnConnectionParameter.IpsecPfs", IpsecConfig=json.dumps({"IpsecPfs": "group99"}))
    bad("NotSupportVpnConnectionParameter.IpsecAuthAlg", IpsecConfig=json.dumps({"IpsecAuthAlg": "sha999"}))
    # PSK authentication is the only one: PskEnabled=false is refused; Psk is 1-100 characters.
    bad("InvalidParameter", PskEnabled=False)
    bad("InvalidParameter", Psk="x" * 101)
    bad("InvalidParameter", Psk="has space")
    # Required parameters and the gateway.
    expect_error(lambda: api.call("CreateIpsecServer", {"VpnGatewayId": gw, "ClientIpPool": "172.16.0.0/24"}),
                 400, "MissingLocalSubnet")
    expect_error(lambda: api.call("CreateIpsecServer", {"VpnGatewayId": gw, "LocalSubnet": "10.0.0.0/24"}),
                 400, "MissingClientIpPool")
    e = expect_error(lambda: create_server(api, UNKNOWN_GW, wait=False), 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert e.message == "The specified vpn gateway instance id does not exist.", e.message
    # Nothing was created, and the gateway never left `active`.
    assert servers(api, VpnGatewayId=gw) == []
    assert describe_gateway(api, gw)["Status"] == "active"
    # The edges of the ranges are fine.
    create_server(api, gw, local="10.0.0.0/24", pool="172.16.0.0/29", Psk="x" * 100,
                  IkeConfig=json.dumps({"IkeLifetime": 0}), IpsecConfig=json.dumps({"IpsecLifetime": 86400}))
    s = server_of(api, gw)
    assert (s["ClientIpPool"], s["Psk"], s["IkeConfig"]["IkeLifetime"]) == ("172.16.0.0/29", "x" * 100, 0), s


@pytest.mark.parametrize("kind", ["tea-v2"])
def test_gateway_without_ssl(api):
    gw = active_gateway(api)["VpnGatewayId"]
    e = expect_error(lambda: create_server(api, gw, wait=False), 400, "VpnGateway.SslVpnDisabled")
    assert e.message == "The VPN gateway has not enabled SSL VPN.", e.message
    assert servers(api, VpnGatewayId=gw) == []


@pytest.mark.parametrize("kind", ["classic"])
def test_widest_pool(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    create_server(api, gw, local="10.0.0.0/8", pool="172.16.0.0/16")
    assert server_of(api, gw)["ClientIpPool"] == "172.16.0.0/16"


# ---------------------------------------------------------------- dry run


def test_dry_run(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    e = expect_error(lambda: create_server(api, gw, wait=False, DryRun="true"), 400, "DryRunOperation")
    assert e.message, e
    assert servers(api, VpnGatewayId=gw) == []
    assert describe_gateway(api, gw)["Status"] == "active"
    # A dry run that would fail reports the failure, not DryRunOperation.
    expect_error(lambda: create_server(api, gw, wait=False, DryRun="true", local="bogus"), 400,
                 "IllegalParam.LocalSubnet")
    expect_error(lambda: create_server(api, UNKNOWN_GW, wait=False, DryRun="true"), 404,
                 "InvalidVpnGatewayInstanceId.NotFound")
    # DryRun=false is a normal request.
    iss = create_server(api, gw, DryRun="false", Psk="dry-run-psk")["IpsecServerId"]
    before = strip(server_of(api, gw))

    expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "changed",
                                                        "Psk": "other-psk", "DryRun": "true"}),
                 400, "DryRunOperation")
    expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": iss, "LocalSubnet": "x",
                                                        "DryRun": "true"}), 400, "IllegalParam.LocalSubnet")
    expect_error(lambda: api.call("DeleteIpsecServer", {"IpsecServerId": iss, "DryRun": "true"}), 400,
                 "DryRunOperation")
    expect_error(lambda: api.call("DeleteIpsecServer", {"IpsecServerId": UNKNOWN_ISS, "DryRun": "true"}), 404,
                 "InvalidIpsecServerId.NotFound")
    assert describe_gateway(api, gw)["Status"] == "active"
    assert strip(server_of(api, gw)) == before


# ---------------------------------------------------------------- one per gateway, delete


@pytest.mark.parametrize("kind", ["tea-v2"])
def test_one_per_gateway_delete_and_recreate(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    first = create_server(api, gw, IpSecServerName="first")["IpsecServerId"]
    e = expect_error(lambda: create_server(api, gw, wait=False, pool="172.17.0.0/24"), 400,
                     "OperationFailed.IPsecServerExist")
    assert e.message == "An IPsec server already exists in the VPN gateway.", e.message
    assert [s["IpsecServerId"] for s in servers(api, VpnGatewayId=gw)] == [first]

    out = api.call("DeleteIpsecServer", {"IpsecServerId": first})
    assert set(out) == {"RequestId"}, out
    assert describe_gateway(api, gw)["Status"] == "updating"
    wait_active(api, gw)
    assert servers(api, VpnGatewayId=gw) == []
    e = expect_error(lambda: api.call("DeleteIpsecServer", {"IpsecServerId": first}), 404,
                     "InvalidIpsecServerId.NotFound")
    assert e.message == "The specified IPsec server does not exist.", e.message
    expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": first, "IpsecServerName": "gone"}), 404,
                 "InvalidIpsecServerId.NotFound")

    # The gateway takes a new one.
    second = create_server(api, gw, IpSecServerName="second", pool="172.17.0.0/24")["IpsecServerId"]
    assert second != first
    s = server_of(api, gw)
    assert (s["IpsecServerId"], s["IpsecServerName"], s["ClientIpPool"]) == (second, "second", "172.17.0.0/24"), s


@pytest.mark.parametrize("kind", ["classic"])
def test_unknown_server(api):
    for action, extra in (("UpdateIpsecServer", {"IpsecServerName": "abc"}), ("DeleteIpsecServer", {})):
        expect_error(lambda: api.call(action, {"IpsecServerId": UNKNOWN_ISS, **extra}), 404,
                     "InvalidIpsecServerId.NotFound")
    expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerName": "abc"}), 400, "MissingIpsecServerId")
    expect_error(lambda: api.call("DeleteIpsecServer", {}), 400, "MissingIpsecServerId")


# ---------------------------------------------------------------- update


def test_update(api):
    g = ssl_gateway(api)
    gw, ip = g["VpnGatewayId"], g["InternetIp"]
    iss = create_server(api, gw, local="10.0.0.0/24", pool="172.16.0.0/24", IpSecServerName="before",
                        Psk="first-key", IkeConfig=json.dumps({"IkeVersion": "ikev1", "IkeLifetime": 3600}),
                        IpsecConfig=json.dumps({"IpsecPfs": "group5"}))["IpsecServerId"]
    orig = server_of(api, gw)

    # Only the name: everything else keeps its value; the answer is only a RequestId.
    out = api.call("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "after"})
    assert set(out) == {"RequestId"}, out
    assert describe_gateway(api, gw)["Status"] == "updating"
    wait_active(api, gw)
    s = server_of(api, gw)
    assert strip(s) == {**strip(orig), "IpsecServerName": "after"}, s
    assert s["Psk"] == "first-key"

    # Subnets, pool, EffectImmediately; partial IKE/IPsec settings merge into the current ones.
    update_server(api, gw, iss, LocalSubnet="10.1.0.0/24,10.2.0.0/16", ClientIpPool="172.18.0.0/20",
                  EffectImmediately=True, IkeConfig=json.dumps({"IkeAuthAlg": "sha256", "RemoteId": "peer.example"}),
                  IpsecConfig=json.dumps({"IpsecEncAlg": "aes256"}))
    s = server_of(api, gw)
    assert (s["LocalSubnet"], s["ClientIpPool"], s["EffectImmediately"]) == \
        ("10.1.0.0/24,10.2.0.0/16", "172.18.0.0/20", True), s
    assert s["IkeConfig"] == {**default_ike(ip), "IkeVersion": "ikev1", "IkeLifetime": 3600, "IkeAuthAlg": "sha256",
                              "RemoteId": "peer.example"}, s["IkeConfig"]
    assert s["IpsecConfig"] == {**DEFAULT_IPSEC, "IpsecPfs": "group5", "IpsecEncAlg": "aes256"}, s["IpsecConfig"]
    # Omitting Psk keeps the key; giving one replaces it.
    assert s["Psk"] == "first-key"
    update_server(api, gw, iss, Psk="second-key", PskEnabled=True)
    s2 = server_of(api, gw)
    assert s2["Psk"] == "second-key"
    assert strip(s2) == {**strip(s), "Psk": "second-key"}, s2
    assert (s2["IpsecServerId"], s2["CreationTime"]) == (iss, orig["CreationTime"]), s2


@pytest.mark.parametrize("kind", ["tea-acs3"])
def test_update_bad_input(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    iss = create_server(api, gw, local="10.0.0.0/16", pool="172.16.0.0/24")["IpsecServerId"]
    before = strip(server_of(api, gw))

    def bad(code: str, **p):
        return expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": iss, **p}), 400, code)

    e = bad("IllegalParam.LocalSubnet", LocalSubnet="10.0.0.0/40")
    assert "10.0.0.0/40" in e.message, e.message
    bad("IllegalParam.ClientIpPool", ClientIpPool="172.16.0.0/30")
    bad("IllegalParam.ClientIpPool", ClientIpPool="nope")
    # The new pool against the current subnets, and the new subnets against the current pool.
    bad(POOL_CONFLICT, ClientIpPool="10.0.8.0/24")
    bad(POOL_CONFLICT, LocalSubnet="172.16.0.0/16")
    bad("InvalidParameter", IkeConfig=json.dumps({"IkeVersion": "ikev3"}))
    bad("InvalidParameter", IkeConfig="[1, 2]")
    bad("NotSupportVpnConnectionParameter.IpsecPfs", IpsecConfig=json.dumps({"IpsecPfs": "group99"}))
    bad("InvalidParameter", Psk="y" * 101)
    bad("InvalidParameter", PskEnabled=False)
    bad("InvalidName", IpsecServerName="-bad")
    # Nothing changed and no update was started.
    assert strip(server_of(api, gw)) == before
    assert describe_gateway(api, gw)["Status"] == "active"


def test_configuring(server, root):
    """Every change puts the gateway in `updating`; meanwhile others are 400 VpnGateway.Configuring."""
    api = make_api("tea-acs3", server.endpoint, root)
    gw = ssl_gateway(api)["VpnGatewayId"]
    iss = create_server(api, gw, wait=False)["IpsecServerId"]
    assert describe_gateway(api, gw)["Status"] == "updating"
    e = expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "busy"}), 400,
                     "VpnGateway.Configuring")
    assert e.message == "The specified service is configuring.", e.message
    expect_error(lambda: api.call("DeleteIpsecServer", {"IpsecServerId": iss}), 400, "VpnGateway.Configuring")
    wait_active(api, gw)
    assert server_of(api, gw)["IpsecServerName"] != "busy"

    api.call("UpdateIpsecServer", {"IpsecServerId": iss, "IpsecServerName": "renamed"})
    assert describe_gateway(api, gw)["Status"] == "updating"
    expect_error(lambda: api.call("DeleteIpsecServer", {"IpsecServerId": iss}), 400, "VpnGateway.Configuring")
    wait_active(api, gw)
    assert server_of(api, gw)["IpsecServerName"] == "renamed"

    api.call("DeleteIpsecServer", {"IpsecServerId": iss})
    assert describe_gateway(api, gw)["Status"] == "updating"
    # A create while another change (here, the delete) is being applied.
    expect_error(lambda: create_server(api, gw, wait=False), 400, "VpnGateway.Configuring")
    wait_active(api, gw)
    assert servers(api, VpnGatewayId=gw) == []

    # A gateway busy with an SSL-VPN change refuses a create as well.
    api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                    "LocalSubnet": "10.0.0.0/8"})
    expect_error(lambda: create_server(api, gw, wait=False, local="10.0.0.0/8"), 400, "VpnGateway.Configuring")
    wait_active(api, gw)
    create_server(api, gw, local="10.0.0.0/8")
    assert len(servers(api, VpnGatewayId=gw)) == 1


# ---------------------------------------------------------------- IPsec connections


@pytest.mark.parametrize("kind", ["classic"])
def test_conflict_with_existing_connection(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    vco = create_conn(api, gw)
    e = expect_error(lambda: create_server(api, gw, wait=False), 400, CONFLICT)
    assert e.message == ("The IPSec connection and IPSec server cannot be configured on the same VPN gateway "
                         "at the same time."), e.message
    assert servers(api, VpnGatewayId=gw) == []
    # Once the connection is gone, the server is welcome.
    api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    wait_active(api, gw)
    wait_for(lambda: connections(api, gw) == set(), timeout=10, what="the connection to go")
    create_server(api, gw)
    assert len(servers(api, VpnGatewayId=gw)) == 1


@pytest.mark.parametrize("kind", ["tea-acs3"])
def test_conflict_with_existing_server(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    iss = create_server(api, gw)["IpsecServerId"]
    e = expect_error(lambda: create_conn(api, gw, wait=False), 400, CONFLICT)
    assert "IPSec server" in e.message, e.message
    assert connections(api, gw) == set()
    assert describe_gateway(api, gw)["Status"] == "active"
    # After DeleteIpsecServer, connections are allowed again.
    delete_server(api, gw, iss)
    vco = create_conn(api, gw)
    assert connections(api, gw) == {vco}


# ---------------------------------------------------------------- the SSL-VPN server beside it


@pytest.mark.parametrize("kind", ["tea-v2"])
def test_pool_and_two_factor_from_ssl_vpn_server(api):
    gw = ssl_gateway(api)["VpnGatewayId"]
    api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                    "LocalSubnet": "10.0.0.0/8", "EnableMultiFactorAuth": True,
                                    "IDaaSInstanceId": "idaas-cn-test0001", "IDaaSRegionId": "cn-hangzhou"})
    wait_active(api, gw)
    # The two remote-access pools may not meet, either way round.
    for pool in ("192.168.100.0/24", "192.168.100.128/25", "192.168.0.0/16"):
        expect_error(lambda: create_server(api, gw, local="10.0.0.0/8", pool=pool, wait=False), 400, POOL_CONFLICT)
    assert servers(api, VpnGatewayId=gw) == []
    iss = create_server(api, gw, local="10.0.0.0/8", pool="192.168.101.0/24")["IpsecServerId"]
    expect_error(lambda: api.call("UpdateIpsecServer", {"IpsecServerId": iss, "ClientIpPool": "192.168.100.64/26"}),
                 400, POOL_CONFLICT)
    s = server_of(api, gw)
    assert s["ClientIpPool"] == "192.168.101.0/24", s
    # Two-factor authentication is the SSL-VPN server's, shown on the IPsec server too.
    assert (s["MultiFactorAuthEnabled"], s["IDaaSInstanceId"]) == (True, "idaas-cn-test0001"), s


@pytest.mark.parametrize("kind", ["classic"])
def test_ssl_vpn_server_pool_avoids_ipsec_server_pool(api):
    """The same rule from the other side: an SSL-VPN server created (or changed) after the IPsec
    server may not take a client pool that meets the IPsec server's."""
    gw = ssl_gateway(api)["VpnGatewayId"]
    create_server(api, gw, local="10.0.0.0/8", pool="192.168.100.0/24")
    for pool in ("192.168.100.0/24", "192.168.100.0/25", "192.168.0.0/16"):
        expect_error(lambda: api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": pool,
                                                             "LocalSubnet": "10.0.0.0/8"}), 400, POOL_CONFLICT)
    assert describe_gateway(api, gw)["Status"] == "active"
    vss = api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.101.0/24",
                                          "LocalSubnet": "10.0.0.0/8"})["SslVpnServerId"]
    wait_active(api, gw)
    expect_error(lambda: api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "ClientIpPool": "192.168.100.0/26"}),
                 400, POOL_CONFLICT)


# ---------------------------------------------------------------- list: paging and filters


def test_list_paging_and_filters(fresh_api):
    api = fresh_api
    gws = [ssl_gateway(api)["VpnGatewayId"] for _ in range(3)]
    ids = {}
    for gw, name in zip(gws, ("pg-a", "pg-b", "pg-c")):
        ids[name] = create_server(api, gw, IpSecServerName=name, wait=False)["IpsecServerId"]
    for gw in gws:
        wait_active(api, gw)

    body = list_body(api)
    assert (body["TotalCount"], body["MaxResults"], body["NextToken"]) == (3, 10, ""), body
    assert {s["IpsecServerId"] for s in body["IpsecServers"]} == set(ids.values())
    for s in body["IpsecServers"]:
        assert LIST_FIELDS <= set(s), s

    p1 = list_body(api, MaxResults=2)
    assert (len(p1["IpsecServers"]), p1["TotalCount"], p1["MaxResults"]) == (2, 3, 2), p1
    assert p1["NextToken"], p1
    p2 = list_body(api, MaxResults=2, NextToken=p1["NextToken"])
    assert (len(p2["IpsecServers"]), p2["TotalCount"], p2["NextToken"]) == (1, 3, ""), p2
    paged = [s["IpsecServerId"] for s in p1["IpsecServers"] + p2["IpsecServers"]]
    assert sorted(paged) == sorted(ids.values()), "pages overlap or miss servers"
    one_by_one, token = [], None
    for _ in range(5):
        page = list_body(api, MaxResults=1, **({"NextToken": token} if token else {}))
        one_by_one += [s["IpsecServerId"] for s in page["IpsecServers"]]
        token = page["NextToken"]
        if not token:
            break
    assert sorted(one_by_one) == sorted(ids.values())
    assert list_body(api, MaxResults=20)["MaxResults"] == 20

    expect_error(lambda: list_body(api, MaxResults=21), 400, "InvalidParameter")
    expect_error(lambda: list_body(api, MaxResults=0), 400, "InvalidParameter")
    expect_error(lambda: list_body(api, NextToken="not-a-token"), 400, "InvalidNextToken")

    # Filters: name, gateway, both.
    assert [s["IpsecServerId"] for s in servers(api, IpsecServerName="pg-b")] == [ids["pg-b"]]
    assert [s["IpsecServerId"] for s in servers(api, VpnGatewayId=gws[2])] == [ids["pg-c"]]
    assert [s["IpsecServerId"] for s in servers(api, VpnGatewayId=gws[0], IpsecServerName="pg-a")] == [ids["pg-a"]]
    assert servers(api, VpnGatewayId=gws[0], IpsecServerName="pg-b") == []
    assert servers(api, IpsecServerName="nothing-like-it") == []
    assert list_body(api, VpnGatewayId=UNKNOWN_GW)["TotalCount"] == 0


# ---------------------------------------------------------------- accounts


def test_account_isolation(server, root, kind, new_account):
    mine = make_api(kind, server.endpoint, root)
    theirs = make_api(kind, server.endpoint, new_account())
    gw = ssl_gateway(mine)["VpnGatewayId"]
    iss = create_server(mine, gw, IpSecServerName="mine-only", Psk="private-key")["IpsecServerId"]

    body = list_body(theirs)
    assert (body["TotalCount"], body["IpsecServers"]) == (0, []), body
    assert servers(theirs, VpnGatewayId=gw) == []
    assert servers(theirs, IpsecServerName="mine-only") == []
    expect_error(lambda: theirs.call("UpdateIpsecServer", {"IpsecServerId": iss, "Psk": "stolen"}), 404,
                 "InvalidIpsecServerId.NotFound")
    expect_error(lambda: theirs.call("DeleteIpsecServer", {"IpsecServerId": iss}), 404,
                 "InvalidIpsecServerId.NotFound")
    expect_error(lambda: create_server(theirs, gw, wait=False), 404, "InvalidVpnGatewayInstanceId.NotFound")

    s = server_of(mine, gw)
    assert (s["IpsecServerId"], s["IpsecServerName"], s["Psk"]) == (iss, "mine-only", "private-key"), s
    assert describe_gateway(mine, gw)["Status"] == "active"
