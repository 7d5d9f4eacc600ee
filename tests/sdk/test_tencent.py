"""Tencent Cloud API 2.0 (`/v2/index.php`) through the unmodified legacy client
qcloudapi-sdk-python 2.0.15: AddVpnConnEx and DescribeVpcTaskResult.

Spec: shared/seeds/001_* (AddVpnConnEx), shared/spec/actions/tencent/AddVpnConnEx.yaml, and
shared/spec/clients.md §(d), which measures how the client speaks and how to point it at a local
server without changing it:
- over TLS as it is: an unknown module name (`"vpn"`) makes it honour `endpoint`, and
  `SSL_CERT_FILE` makes it trust Gatehouse's generated certificate;
- over plain HTTP: the same objects with only the transport swapped (`apiRequest.conn`).

The client returns the raw body and raises only when the status is not 200, so every answer
here, errors included, is an HTTP 200 envelope. Connections it creates are read back with the
Alibaba SDK (the same accounts, keys and store).
"""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest
from QcloudApi.modules.base import Base
from QcloudApi.qcloudapi import QcloudApi

from support import (
    REGION,
    Creds,
    GatehouseServer,
    active_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    public_ip,
    tls_of,
    wait_for,
)

VCO_ID_RE = re.compile(r"^vco-[a-z0-9]{21}$")
QUOTA = 3
MAX_BODY = 20000
PSK = "dgd+gd 33"


@pytest.fixture(scope="module")
def tc_server(tmp_path_factory):
    # A 1 s transition: long enough to see a task running and the gateway `updating`.
    srv = GatehouseServer(tmp_path_factory.mktemp("gh-tencent") / "data",
                          ["--transition-delay-ms", "1000", "--tls-listen", "127.0.0.1:0",
                           "--quota-vpn-connections", str(QUOTA), "--max-body-bytes", str(MAX_BODY)],
                          name="tencent")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def trusted_cert(tc_server):
    """The legacy client builds a default TLS context per call: SSL_CERT_FILE makes it trust the
    server's generated certificate (and nothing else, for the length of this module)."""
    _, cert, _ = tls_of(tc_server)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSL_CERT_FILE", str(cert))
        yield cert


@pytest.fixture(scope="module")
def ali(tc_server, root):
    return make_api("classic", tc_server.endpoint, root)


class PlainHTTPConnection(http.client.HTTPConnection):
    """What the client's transport needs of a connection besides http.client's own."""
    request_length = 0


class Tencent:
    """The legacy client as it is, over TLS (`tls=True`) or with its transport swapped for plain
    HTTP. `call` returns the parsed envelope and checks its shape."""

    def __init__(self, srv: GatehouseServer, creds: Creds, *, tls: bool, method: str = "GET",
                 signature: str = "HmacSHA1", region: str = REGION):
        self.tls = tls
        port = tls_of(srv)[0] if tls else srv.port
        self.config = {"secretId": creds.ak, "secretKey": creds.secret, "Region": region, "method": method,
                       "SignatureMethod": signature, "endpoint": f"127.0.0.1:{port}"}
        self.port = port

    def call(self, action: str, params: dict) -> dict:
        if self.tls:
            raw = QcloudApi("vpn", dict(self.config)).call(action, params)
        else:
            svc = Base(dict(self.config))
            svc.apiRequest.conn = PlainHTTPConnection("127.0.0.1", self.port, timeout=30)
            raw = svc.call(action, params)
        body = json.loads(raw)
        assert set(body) >= {"code", "message", "codeDesc"}, body
        if body["code"] == 0:
            assert (body["message"], body["codeDesc"]) == ("", "Success"), body
            assert isinstance(body.get("data"), dict), body
        else:
            assert body["codeDesc"] != "Success" and body["message"], body
            assert "data" not in body, body
        return body


def expect_tc_error(body: dict, code: int, desc: str) -> dict:
    assert (body["code"], body["codeDesc"]) == (code, desc), body
    return body


def gateway_and_peer(ali) -> tuple[dict, str, str]:
    """An active gateway (described), a customer gateway and its address."""
    gw = describe_gateway(ali, active_gateway(ali)["VpnGatewayId"])
    ip = public_ip()
    cgw = ali.call("CreateCustomerGateway", {"IpAddress": ip})["CustomerGatewayId"]
    return gw, cgw, ip


def add_params(gw: dict, cgw: str, **extra) -> dict:
    params = {"vpcId": gw["VpcId"], "vpnGwId": gw["VpnGatewayId"], "userGwId": cgw, "preSharedKey": PSK}
    params.update(extra)
    return params


def task_status(tc: Tencent, task_id: int) -> int:
    body = tc.call("DescribeVpcTaskResult", {"taskId": task_id})
    assert body["code"] == 0, body
    return body["data"]["status"]


def settle(tc: Tencent, ali, gw_id: str, task_id: int) -> None:
    """The task reports success once the gateway has applied the change."""
    wait_for(lambda: task_status(tc, task_id) == 0, timeout=15, what=f"task {task_id} to succeed")
    assert describe_gateway(ali, gw_id)["Status"] == "active"


# ---------------------------------------------------------------- success


@pytest.mark.parametrize("tls,method,signature", [
    (True, "GET", "HmacSHA1"),
    (True, "POST", "HmacSHA256"),
    (False, "GET", "HmacSHA256"),
    (False, "POST", "HmacSHA1"),
], ids=["tls-GET-SHA1", "tls-POST-SHA256", "plain-GET-SHA256", "plain-POST-SHA1"])
def test_add_vpn_conn_ex_with_user_gw_cidr_blocks(tc_server, trusted_cert, root, ali, tls, method, signature):
    tc = Tencent(tc_server, root, tls=tls, method=method, signature=signature)
    gw, cgw, cgw_ip = gateway_and_peer(ali)
    body = tc.call("AddVpnConnEx", add_params(
        gw, cgw,
        vpnConnName="conn a~*+/é",
        # The documented example's CIDR has host bits: it is taken as its network.
        userGwCidrBlock=["10.56.20.1/24", "10.56.21.0/24"],
        IKESet={"propoEncryAlgorithm": "aes-cbc-256", "propoAuthenAlgorithm": "sha", "exchangeMode": "aggressive",
                "dhGroupName": "group14", "ikeSaLifetimeSeconds": 604800, "encryptAlgorithm": "aes-cbc-128"},
        IPsecSet={"integrityAlgorith": "sha", "ipsecSaLifetimeSeconds": 7200, "ipsecSaLifetimeTraffic": 10240,
                  "pfsDhGroup": "dh-group5"},
    ))
    assert body["code"] == 0, body
    data = body["data"]
    assert VCO_ID_RE.match(data["vpnConnId"]), data
    assert isinstance(data["taskId"], int) and data["taskId"] > 0, data
    assert (data["vpnGwId"], data["userGwId"], data["vpnConnStatus"]) == (gw["VpnGatewayId"], cgw, 0), data
    assert data["preSharedKey"] == PSK, data
    assert data["userGwSubnetList"] == ["10.56.20.0/24", "10.56.21.0/24"], data

    # The gateway applies the change: updating, the task running, then both done.
    assert describe_gateway(ali, gw["VpnGatewayId"])["Status"] == "updating"
    assert task_status(tc, data["taskId"]) == 2
    settle(tc, ali, gw["VpnGatewayId"], data["taskId"])

    # The same connection, read back through the Alibaba SDK.
    conn = ali.call("DescribeVpnConnection", {"VpnConnectionId": data["vpnConnId"]})
    assert (conn["VpnGatewayId"], conn["CustomerGatewayId"], conn["Name"]) == (gw["VpnGatewayId"], cgw, "conn a~*+/é")
    assert (conn["LocalSubnet"], conn["RemoteSubnet"]) == ("0.0.0.0/0", "10.56.20.0/24,10.56.21.0/24")
    assert conn["State"] == "active", conn
    ike, ipsec = conn["IkeConfig"], conn["IpsecConfig"]
    assert ike == {"IkeVersion": "ikev1", "IkeMode": "aggressive", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha1",
                   "IkePfs": "group14", "IkeLifetime": 604800, "LocalId": gw["InternetIp"], "RemoteId": cgw_ip,
                   "Psk": PSK}, ike
    assert ipsec == {"IpsecEncAlg": "aes", "IpsecAuthAlg": "sha1", "IpsecPfs": "group5", "IpsecLifetime": 7200}, ipsec
    listed = items(ali.call("DescribeVpnConnections", {"VpnGatewayId": gw["VpnGatewayId"]}),
                   "VpnConnections", "VpnConnection")
    assert [c["VpnConnectionId"] for c in listed] == [data["vpnConnId"]]


def test_add_vpn_conn_ex_with_spd_acl_and_the_documented_defaults(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=True, method="POST")
    gw, cgw, cgw_ip = gateway_and_peer(ali)
    acl = {"10.0.0.5/24": ["172.123.10.5/16"], "10.1.0.0/24": ["172.123.0.0/16"]}
    body = tc.call("AddVpnConnEx", add_params(gw, cgw, spdAcl=json.dumps(acl)))
    assert body["code"] == 0, body
    data = body["data"]
    assert data["userGwSubnetList"] == ["172.123.0.0/16"], data
    settle(tc, ali, gw["VpnGatewayId"], data["taskId"])
    conn = ali.call("DescribeVpnConnection", {"VpnConnectionId": data["vpnConnId"]})
    assert (conn["LocalSubnet"], conn["RemoteSubnet"], conn["Name"]) == ("10.0.0.0/24,10.1.0.0/24", "172.123.0.0/16", "")
    assert conn["IkeConfig"] == {"IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "3des", "IkeAuthAlg": "md5",
                                 "IkePfs": "group2", "IkeLifetime": 86400, "LocalId": gw["InternetIp"],
                                 "RemoteId": cgw_ip, "Psk": PSK}, conn["IkeConfig"]
    assert conn["IpsecConfig"] == {"IpsecEncAlg": "3des", "IpsecAuthAlg": "md5", "IpsecPfs": "disabled",
                                   "IpsecLifetime": 3600}, conn["IpsecConfig"]


def test_identities_by_address_or_fqdn(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=False)
    gw, cgw, _ = gateway_and_peer(ali)
    body = tc.call("AddVpnConnEx", add_params(
        gw, cgw, userGwCidrBlock=["192.168.7.0/24"],
        IKESet={"localIdentity": "fqdn", "localFqdnName": "gw.example.com",
                "remoteIdentity": "address", "remoteAddress": "203.0.113.77"}))
    assert body["code"] == 0, body
    settle(tc, ali, gw["VpnGatewayId"], body["data"]["taskId"])
    ike = ali.call("DescribeVpnConnection", {"VpnConnectionId": body["data"]["vpnConnId"]})["IkeConfig"]
    assert (ike["LocalId"], ike["RemoteId"]) == ("gw.example.com", "203.0.113.77"), ike


# ---------------------------------------------------------------- errors


def test_each_documented_error_changes_nothing(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=True)
    gw, cgw, _ = gateway_and_peer(ali)
    other_vpc_gw = describe_gateway(ali, active_gateway(ali)["VpnGatewayId"])
    sel = {"userGwCidrBlock": ["10.9.0.0/24"]}
    cases = [
        (add_params(gw, cgw, vpcId="vpc-nosuchvpc", **sel), 5000, "InvalidVpc.NotFound"),
        (add_params(gw, cgw, vpnGwId="vpn-" + "z" * 21, **sel), 5000, "InvalidVpnGw.NotFound"),
        # A gateway of another VPC is not found in this one.
        (add_params(gw, cgw, vpcId=other_vpc_gw["VpcId"], **sel), 5000, "InvalidVpnGw.NotFound"),
        (add_params(gw, "cgw-" + "z" * 21, **sel), 5000, "InvalidUserGw.NotFound"),
        (add_params(gw, cgw, vpnConnName="n" * 61, **sel), 4000, "InvalidVpnConnName"),
    ]
    for params, code, desc in cases:
        expect_tc_error(tc.call("AddVpnConnEx", params), code, desc)
    assert items(ali.call("DescribeVpnConnections", {"VpnGatewayId": gw["VpnGatewayId"]}),
                 "VpnConnections", "VpnConnection") == []
    assert describe_gateway(ali, gw["VpnGatewayId"])["Status"] == "active"

    # 60 characters is the limit, not past it; then the gateway's quota of connections.
    names = ["n" * 60] + [f"c{i}" for i in range(1, QUOTA)]
    for i, name in enumerate(names):
        body = tc.call("AddVpnConnEx", add_params(gw, cgw, vpnConnName=name, userGwCidrBlock=[f"10.8.{i}.0/24"]))
        assert body["code"] == 0, body
        settle(tc, ali, gw["VpnGatewayId"], body["data"]["taskId"])
    expect_tc_error(tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.8.99.0/24"])),
                    4400, "VpnConnLimitExceeded")
    assert len(items(ali.call("DescribeVpnConnections", {"VpnGatewayId": gw["VpnGatewayId"]}),
                     "VpnConnections", "VpnConnection")) == QUOTA


def test_a_gateway_applying_a_change_takes_no_other(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=True)
    gw, cgw, _ = gateway_and_peer(ali)
    first = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.4.0.0/24"]))
    assert first["code"] == 0, first
    busy = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.4.1.0/24"]))
    expect_tc_error(busy, 4000, "VpnGw.Configuring")
    settle(tc, ali, gw["VpnGatewayId"], first["data"]["taskId"])
    assert len(items(ali.call("DescribeVpnConnections", {"VpnGatewayId": gw["VpnGatewayId"]}),
                     "VpnConnections", "VpnConnection")) == 1


def test_tunnels_to_one_peer_share_ike_and_keep_their_selectors_apart(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=False)
    gw, cgw, _ = gateway_and_peer(ali)
    first = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.2.0.0/16"]))
    assert first["code"] == 0, first
    settle(tc, ali, gw["VpnGatewayId"], first["data"]["taskId"])
    inside = add_params(gw, cgw, userGwCidrBlock=["10.2.5.0/24"])
    expect_tc_error(tc.call("AddVpnConnEx", inside), 4000, "VpnConn.SpdAclConflict")
    other_key = add_params(gw, cgw, preSharedKey="another key", userGwCidrBlock=["10.3.0.0/16"])
    expect_tc_error(tc.call("AddVpnConnEx", other_key), 4000, "VpnConn.IKESetConflict")
    other_ike = add_params(gw, cgw, userGwCidrBlock=["10.3.0.0/16"], IKESet={"propoEncryAlgorithm": "aes-cbc-128"})
    expect_tc_error(tc.call("AddVpnConnEx", other_ike), 4000, "VpnConn.IKESetConflict")
    apart = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.3.0.0/16"]))
    assert apart["code"] == 0, apart
    settle(tc, ali, gw["VpnGatewayId"], apart["data"]["taskId"])


def test_the_wire_itself_answers_in_the_envelope(tc_server):
    """Other methods, a body over the limit: still HTTP 200 and the envelope, never a bare error."""
    conn = http.client.HTTPConnection("127.0.0.1", tc_server.port, timeout=10)
    try:
        conn.request("PUT", "/v2/index.php?Action=AddVpnConnEx")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 200, r.status
        expect_tc_error(body, 4000, "UnsupportedOperation")
        conn.request("POST", "/v2/index.php", body=b"a=" + b"x" * MAX_BODY,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        body = json.loads(r.read())
        assert (r.status, r.getheader("Connection")) == (200, "close"), r.getheaders()
        expect_tc_error(body, 4000, "RequestEntityTooLarge")
    finally:
        conn.close()


def test_parameter_errors(tc_server, trusted_cert, root, ali):
    tc = Tencent(tc_server, root, tls=False, method="POST")
    gw, cgw, _ = gateway_and_peer(ali)
    sel = {"userGwCidrBlock": ["10.7.0.0/24"]}
    for params, desc, named in [
        ({k: v for k, v in add_params(gw, cgw, **sel).items() if k != "vpnGwId"}, "MissingParameter", "vpnGwId"),
        ({k: v for k, v in add_params(gw, cgw, **sel).items() if k != "preSharedKey"}, "MissingParameter",
         "preSharedKey"),
        (add_params(gw, cgw), "MissingParameter", "spdAcl"),
        (add_params(gw, cgw, spdAcl='{"10.0.0.0/24":["172.16.0.0/16"]}', **sel), "InvalidParameter", "spdAcl"),
        (add_params(gw, cgw, spdAcl='{"10.0.0.0/24":["172.16.0.0/16"],"10.1.0.0/24":["172.17.0.0/16"]}'),
         "InvalidParameter", "spdAcl"),
        (add_params(gw, cgw, userGwCidrBlock=["10.7.0.0/33"]), "InvalidParameter", "userGwCidrBlock"),
        (add_params(gw, cgw, IKESet={"propoEncryAlgorithm": "aes"}, **sel), "InvalidParameter",
         "IKESet.propoEncryAlgorithm"),
        (add_params(gw, cgw, IKESet={"ikeSaLifetimeSeconds": 59}, **sel), "InvalidParameter",
         "IKESet.ikeSaLifetimeSeconds"),
        (add_params(gw, cgw, IPsecSet={"ipsecSaLifetimeTraffic": 2559}, **sel), "InvalidParameter",
         "IPsecSet.ipsecSaLifetimeTraffic"),
        (add_params(gw, cgw, IKESet={"remoteIdentity": "fqdn"}, **sel), "MissingParameter", "IKESet.remoteFqdnName"),
        (add_params(gw, cgw, preSharedKey="tab\tkey", **sel), "InvalidParameter", "preSharedKey"),
    ]:
        body = expect_tc_error(tc.call("AddVpnConnEx", params), 4000, desc)
        assert named in body["message"], body
    expect_tc_error(tc.call("DescribeVpcTaskResult", {"taskId": "x"}), 4000, "InvalidParameter")
    expect_tc_error(tc.call("DescribeVpcTaskResult", {"taskId": 999999}), 5000, "InvalidTaskId.NotFound")
    expect_tc_error(tc.call("DescribeVpnGw", {}), 4000, "InvalidAction")
    expect_tc_error(Tencent(tc_server, root, tls=False, region="gz").call("DescribeVpcTaskResult", {"taskId": 1}),
                    4000, "InvalidRegion")


# ---------------------------------------------------------------- authentication


def test_a_wrong_key_and_an_unknown_secret_id(tc_server, trusted_cert, root, ali):
    for tls in (True, False):
        wrong = Tencent(tc_server, Creds(root.ak, root.secret + "x"), tls=tls)
        body = expect_tc_error(wrong.call("DescribeVpcTaskResult", {"taskId": 1}), 4100, "AuthFailure.SignatureFailure")
        assert "/v2/index.php?" in body["message"], body
        unknown = Tencent(tc_server, Creds("AKIDnosuchkey", root.secret), tls=tls)
        expect_tc_error(unknown.call("DescribeVpcTaskResult", {"taskId": 1}), 4100, "AuthFailure.SecretIdNotFound")


def test_a_replayed_nonce_and_an_old_timestamp(tc_server, trusted_cert, root, ali):
    gw, cgw, _ = gateway_and_peer(ali)
    tc = Tencent(tc_server, root, tls=True)
    fixed = {"Nonce": 4101734416724883153 + int(time.time()), "Timestamp": int(time.time())}
    first = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.6.0.0/24"], **fixed))
    assert first["code"] == 0, first
    # The identical request again (the client re-sends one so after a dropped connection).
    again = tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.6.0.0/24"], **fixed))
    expect_tc_error(again, 4500, "ReplayAttack")
    assert len(items(ali.call("DescribeVpnConnections", {"VpnGatewayId": gw["VpnGatewayId"]}),
                     "VpnConnections", "VpnConnection")) == 1
    stale = tc.call("DescribeVpcTaskResult", {"taskId": first["data"]["taskId"], "Timestamp": int(time.time()) - 301})
    expect_tc_error(stale, 4200, "AuthFailure.SignatureExpire")


# ---------------------------------------------------------------- accounts


def test_accounts_see_only_their_own(tc_server, trusted_cert, root, ali):
    gw, cgw, _ = gateway_and_peer(ali)
    mine = Tencent(tc_server, root, tls=True)
    body = mine.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.5.0.0/24"]))
    assert body["code"] == 0, body
    task, vco = body["data"]["taskId"], body["data"]["vpnConnId"]

    other_creds = tc_server.create_account()
    other = Tencent(tc_server, other_creds, tls=True)
    other_ali = make_api("classic", tc_server.endpoint, other_creds)
    # Another account's gateway, customer gateway, connection and task do not exist for it.
    expect_tc_error(other.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.5.1.0/24"])),
                    5000, "InvalidVpc.NotFound")
    expect_tc_error(other.call("DescribeVpcTaskResult", {"taskId": task}), 5000, "InvalidTaskId.NotFound")
    expect_error(lambda: other_ali.call("DescribeVpnConnection", {"VpnConnectionId": vco}), 404,
                 "InvalidVpnConnectionInstanceId.NotFound")
    # Its own gateway with root's customer gateway: the customer gateway is not found.
    own = describe_gateway(other_ali, active_gateway(other_ali)["VpnGatewayId"])
    expect_tc_error(other.call("AddVpnConnEx", add_params(own, cgw, userGwCidrBlock=["10.5.2.0/24"])),
                    5000, "InvalidUserGw.NotFound")
    # Its own tasks are numbered from 1.
    own_cgw = other_ali.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]
    body = other.call("AddVpnConnEx", add_params(own, own_cgw, userGwCidrBlock=["10.5.3.0/24"]))
    assert body["code"] == 0 and body["data"]["taskId"] == 1, body
    settle(mine, ali, gw["VpnGatewayId"], task)


def test_no_secret_reaches_the_log(tc_server, trusted_cert, root, ali):
    """The log names actions and codes, never a key or a PSK (whatever ran before in this module)."""
    gw, cgw, _ = gateway_and_peer(ali)
    tc = Tencent(tc_server, root, tls=True)
    assert tc.call("AddVpnConnEx", add_params(gw, cgw, userGwCidrBlock=["10.3.0.0/24"]))["code"] == 0
    expect_tc_error(tc.call("AddVpnConnEx", add_params(gw, cgw, vpcId="vpc-none", userGwCidrBlock=["10.3.1.0/24"])),
                    5000, "InvalidVpc.NotFound")
    log = tc_server.log_path.read_text()
    assert "AddVpnConnEx" in log and "InvalidVpc.NotFound" in log, log[-2000:]
    for secret in (PSK, root.secret, "dgd%2Bgd"):
        assert secret not in log, secret
