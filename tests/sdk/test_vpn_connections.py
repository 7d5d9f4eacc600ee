"""IPsec-VPN connections through the official Python SDKs (classic, Tea ACS3, Tea v2): create in
both modes, describe, list, modify, download, delete, and every rule that ties a connection to
its VPN gateway and customer gateways.

Spec: shared/spec/actions/{CreateVpnConnection,ModifyVpnConnectionAttribute,
DescribeVpnConnections,DescribeVpnConnection,DownloadVpnConnectionConfig,DeleteVpnConnection}.yaml
(CreateVpnConnection: version 000 wins where versions disagree) and shared/spec/clients.md
(the classic SDK and the Tea SDK put TunnelOptionsSpecification.* in a form body; JSON-in-a-string
parameters; nested objects in responses).

Where the documents are silent the tests pin the server's documented choices
(src/actions/vpn_connections.rs, src/actions/ipsec.rs): parameters of the other mode are
400 InvalidParameter; a national-standard gateway without a peer CA certificate is
400 MissingRemoteCaCertificate, a standard one with a certificate 400 InvalidParameter.
The gateway's lifecycle, the simulated data plane and the full lifecycle are in
test_connection_lifecycle.py.
"""

from __future__ import annotations

import http.client
import http.server
import itertools
import json
import random
import re
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass

import pytest

import support
from support import (
    ApiError,
    active_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    now_ms,
    public_ip,
    tags_of,
    vsw_id,
    wait_status,
)

UNKNOWN_GW = "vpn-" + "z" * 21
UNKNOWN_CGW = "cgw-" + "z" * 21
UNKNOWN_CONN = "vco-" + "z" * 21
VCO_ID_RE = re.compile(r"^vco-[a-z0-9]{21}$")
PSK_RE = re.compile(r"^[A-Za-z0-9]{16}$")
FORBIDDEN_TUNNEL_CIDRS = ["169.254.0.0/30", "169.254.1.0/30", "169.254.2.0/30", "169.254.3.0/30",
                          "169.254.4.0/30", "169.254.5.0/30", "169.254.6.0/30", "169.254.169.252/30"]
_nets = itertools.count(1)


# ---------------------------------------------------------------- helpers


def remote_net() -> str:
    """An on-premises /24 no other connection of this run uses."""
    n = next(_nets) + random.randint(0, 60) * 250
    return f"192.{168 - (n // 250) % 8}.{n % 250}.0/24"


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=10)


def new_cgw(api, asn: int | str | None = None, ip: str | None = None) -> str:
    params = {"IpAddress": ip or public_ip()}
    if asn is not None:
        params["Asn"] = asn
    return api.call("CreateCustomerGateway", params)["CustomerGatewayId"]


def cgw_ip(api, cgw: str) -> str:
    return api.call("DescribeCustomerGateway", {"CustomerGatewayId": cgw})["IpAddress"]


def create(api, gw: str, cgw: str | None = None, *, local: str = "10.0.0.0/24", remote: str | None = None,
           wait: bool = True, **extra) -> dict:
    """CreateVpnConnection (single-tunnel unless the caller passes tunnels); waits for the gateway."""
    params = {"VpnGatewayId": gw, "LocalSubnet": local, "RemoteSubnet": remote or remote_net()}
    if cgw is not None:
        params["CustomerGatewayId"] = cgw
    params.update({k: v for k, v in extra.items() if v is not None})
    out = api.call("CreateVpnConnection", params)
    if wait:
        wait_active(api, gw)
    return out


def describe(api, vco: str) -> dict:
    return api.call("DescribeVpnConnection", {"VpnConnectionId": vco})


def list_body(api, **filters) -> dict:
    return api.call("DescribeVpnConnections", filters)


def listed(api, **filters) -> list[dict]:
    return items(list_body(api, **filters), "VpnConnections", "VpnConnection")


def download(api, vco: str) -> dict:
    body = api.call("DownloadVpnConnectionConfig", {"VpnConnectionId": vco})
    assert isinstance(body.get("VpnConnectionConfig"), dict), body
    return body["VpnConnectionConfig"]


def pbr_routes(api, gw: str) -> set:
    body = api.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw, "PageSize": 50})
    return {(e["RouteSource"], e["RouteDest"], e["NextHop"], e["State"])
            for e in items(body, "VpnPbrRouteEntries", "VpnPbrRouteEntry")}


def dual_gateway(api, **over) -> dict:
    """An active gateway with a disaster-recovery vSwitch, i.e. two public IPs: dual-tunnel."""
    gw = active_gateway(api, DisasterRecoveryVSwitchId=vsw_id(), **over)["VpnGatewayId"]
    d = describe_gateway(api, gw)
    assert d["InternetIp"] and d.get("DisasterRecoveryInternetIp"), d
    assert d["InternetIp"] != d["DisasterRecoveryInternetIp"], d
    return d


def tunnel(role: str, cgw: str, **extra) -> dict:
    return {"Role": role, "CustomerGatewayId": cgw, **extra}


def by_role(conn: dict) -> dict[str, dict]:
    spec = conn.get("TunnelOptionsSpecification")
    assert isinstance(spec, dict), f"TunnelOptionsSpecification must be an object: {conn}"
    opts = spec.get("TunnelOptions")
    assert isinstance(opts, list) and len(opts) == 2, spec
    roles = {t["Role"]: t for t in opts}
    assert set(roles) == {"master", "slave"}, opts
    return roles


def s(v) -> str:
    """Tunnel scalars are typed as strings by the SDK models: compare as strings."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def strip_request_id(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "RequestId"}


# -- a pass-through proxy that records where each client put its parameters


@dataclass
class Recorded:
    method: str
    query: dict[str, str]
    body: dict[str, str]
    content_type: str


class RecordingProxy:
    """Forwards every request to the server unchanged (Host header included, so signatures still
    verify) and records the decoded query and form body."""

    def __init__(self, upstream: str):
        self.requests: list[Recorded] = []
        up_host, up_port = upstream.rsplit(":", 1)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def forward(self):
                body = self.read_body()
                ctype = self.headers.get("Content-Type", "")
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
                form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)) \
                    if body and "x-www-form-urlencoded" in ctype else {}
                outer.requests.append(Recorded(self.command, query, form, ctype))
                hop = {"connection", "transfer-encoding", "content-length", "keep-alive"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                conn = http.client.HTTPConnection(up_host, int(up_port), timeout=10)
                try:
                    conn.request(self.command, self.path, body=body if (body or self.command == "POST") else None,
                                 headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in hop:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = forward
            do_POST = forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def last(self, action_param: str) -> Recorded:
        """The last recorded request that carried `action_param` anywhere."""
        for r in reversed(self.requests):
            if action_param in r.query or action_param in r.body:
                return r
        raise AssertionError(f"no recorded request carries {action_param}: {self.requests}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server):
    p = RecordingProxy(server.endpoint)
    yield p
    p.close()


# -- the Tea SDK's own request model for a dual-tunnel CreateVpnConnection


def tea_models():
    from alibabacloud_vpc20160428 import models

    return models


def tea_tunnel(t: dict):
    """A TunnelOptionsSpecification element as the Tea SDK's typed model."""
    m = tea_models()
    snake = support._snake
    prefix = "CreateVpnConnectionRequestTunnelOptionsSpecification"
    kw = {}
    for key, value in t.items():
        if isinstance(value, dict):
            sub = getattr(m, prefix + key)(**{snake(k): v for k, v in value.items()})
            kw[snake(key)] = sub
        else:
            kw[snake(key)] = value
    return getattr(m, prefix)(**kw)


def tea_create_dual(api, gw: str, local: str, remote: str, tunnels: list[dict], **top) -> dict:
    """CreateVpnConnectionRequest(tunnel_options_specification=[...]) sent by the Tea client."""
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

    m = tea_models()
    req = m.CreateVpnConnectionRequest(
        region_id=api.region, vpn_gateway_id=gw, local_subnet=local, remote_subnet=remote,
        tunnel_options_specification=[tea_tunnel(t) for t in tunnels],
        **{support._snake(k): v for k, v in top.items()},
    )
    try:
        resp = api.client.create_vpn_connection(req)
    except AlibabaCloudException as e:
        data = e.data if isinstance(e.data, dict) else None
        raise ApiError(e.status_code, e.code, (data or {}).get("Message", e.message), e.request_id,
                       body=data, client=api.kind) from None
    assert resp.status_code == 200
    return resp.body.to_map()


def create_dual(api, gw: str, local: str, remote: str, tunnels: list[dict], **top) -> dict:
    """A dual-tunnel create the way each client does it: classic and Tea with the SDK's request
    class and model (tunnels land in a form body), the raw signer with the flat form."""
    if api.kind.startswith("tea"):
        return tea_create_dual(api, gw, local, remote, tunnels, **top)
    return api.call("CreateVpnConnection", {"VpnGatewayId": gw, "LocalSubnet": local, "RemoteSubnet": remote,
                                            "TunnelOptionsSpecification": tunnels, **top})


# ---------------------------------------------------------------- single tunnel: create + describe


def test_single_tunnel_defaults(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    gw_ip = describe_gateway(api, gw)["InternetIp"]
    cgw = new_cgw(api, asn=65010)
    peer_ip = cgw_ip(api, cgw)
    remote = remote_net()
    t0 = now_ms()
    out = create(api, gw, cgw, local="10.1.0.0/24,10.1.1.0/24", remote=remote, Name="conn-defaults", wait=False)
    vco = out["VpnConnectionId"]
    assert VCO_ID_RE.match(vco), out
    assert out["Name"] == "conn-defaults", out
    assert isinstance(out["CreateTime"], int) and t0 - 5000 <= out["CreateTime"] <= now_ms() + 5000, out
    assert set(out) >= {"RequestId", "VpnConnectionId", "Name", "CreateTime"}, out
    wait_active(api, gw)

    d = describe(api, vco)
    assert (d["VpnConnectionId"], d["VpnGatewayId"], d["CustomerGatewayId"]) == (vco, gw, cgw), d
    assert (d["Name"], d["LocalSubnet"], d["RemoteSubnet"]) == ("conn-defaults", "10.1.0.0/24,10.1.1.0/24", remote)
    assert d["CreateTime"] == out["CreateTime"], d
    assert d["EffectImmediately"] is False, d
    assert d["EnableDpd"] is True and d["EnableNatTraversal"] is True, d
    assert d["State"] == "active", d
    # EffectImmediately=false and no health check: no reason to negotiate yet.
    assert d["Status"] == "ike_sa_not_established", d
    ike = d["IkeConfig"]
    assert isinstance(ike, dict), f"IkeConfig must be an object, not {ike!r}"
    assert {k: ike[k] for k in ("IkeVersion", "IkeMode", "IkeEncAlg", "IkeAuthAlg", "IkePfs", "IkeLifetime")} == \
        {"IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "md5", "IkePfs": "group2",
         "IkeLifetime": 86400}, ike
    assert ike["LocalId"] == gw_ip and ike["RemoteId"] == peer_ip, (ike, gw_ip, peer_ip)
    assert PSK_RE.match(ike["Psk"]), f"generated PSK must be 16 random characters: {ike['Psk']!r}"
    ipsec = d["IpsecConfig"]
    assert isinstance(ipsec, dict), ipsec
    assert ipsec == {"IpsecEncAlg": "aes", "IpsecAuthAlg": "md5", "IpsecPfs": "group2", "IpsecLifetime": 86400}, ipsec
    hc = d["VcoHealthCheck"]
    assert isinstance(hc, dict) and hc["Enable"] == "false", hc
    bgp = d["VpnBgpConfig"]
    assert isinstance(bgp, dict) and bgp["EnableBgp"] == "false", bgp
    # AutoConfigRoute defaults to true: one policy route per (LocalSubnet, RemoteSubnet) pair.
    assert pbr_routes(api, gw) == {("10.1.0.0/24", remote, vco, "published"),
                                   ("10.1.1.0/24", remote, vco, "published")}
    # Every generated PSK is different, and the same one is downloaded.
    assert download(api, vco)["IkeConfig"]["Psk"] == ike["Psk"]
    other = create(api, gw, new_cgw(api), local="10.2.0.0/24")["VpnConnectionId"]
    assert describe(api, other)["IkeConfig"]["Psk"] != ike["Psk"]


def test_single_tunnel_explicit_configs(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api, asn=65010)
    remote = remote_net()
    # Python's json.dumps puts spaces after ':' and ','; health-check keys are lower case.
    ike = json.dumps({"Psk": "s3cret-Key_1", "IkeVersion": "ikev2", "IkeMode": "aggressive", "IkeEncAlg": "aes256",
                      "IkeAuthAlg": "sha1", "IkePfs": "group14", "IkeLifetime": 3600, "LocalId": "gw.example.com",
                      "RemoteId": "branch.example.com"})
    ipsec = json.dumps({"IpsecEncAlg": "aes192", "IpsecAuthAlg": "sha1", "IpsecPfs": "group5", "IpsecLifetime": 1800})
    bgp = json.dumps({"EnableBgp": "true", "LocalAsn": "65001", "TunnelCidr": "169.254.11.0/30",
                      "LocalBgpIp": "169.254.11.1"})
    hc = json.dumps({"enable": "true", "dip": "192.168.10.1", "sip": "10.1.0.1", "interval": "5", "retry": "4"})
    assert ", " in ike and ": " in ike
    vco = create(api, gw, cgw, local="10.1.0.0/24", remote=remote, IkeConfig=ike, IpsecConfig=ipsec, BgpConfig=bgp,
                 HealthCheckConfig=hc, EnableDpd=False, EnableNatTraversal=False, EffectImmediately=True,
                 AutoConfigRoute=False)["VpnConnectionId"]
    d = describe(api, vco)
    assert d["IkeConfig"] == {"Psk": "s3cret-Key_1", "IkeVersion": "ikev2", "IkeMode": "aggressive",
                              "IkeEncAlg": "aes256", "IkeAuthAlg": "sha1", "IkePfs": "group14", "IkeLifetime": 3600,
                              "LocalId": "gw.example.com", "RemoteId": "branch.example.com"}, d["IkeConfig"]
    assert d["IpsecConfig"] == {"IpsecEncAlg": "aes192", "IpsecAuthAlg": "sha1", "IpsecPfs": "group5",
                                "IpsecLifetime": 1800}, d["IpsecConfig"]
    h = d["VcoHealthCheck"]
    assert isinstance(h, dict), h
    assert (h["Enable"], h["Dip"], h["Sip"], h["Interval"], h["Retry"]) == \
        ("true", "192.168.10.1", "10.1.0.1", 5, 4), h
    b = d["VpnBgpConfig"]
    assert isinstance(b, dict), b
    assert (b["EnableBgp"], b["LocalAsn"], b["TunnelCidr"], b["LocalBgpIp"]) == \
        ("true", 65001, "169.254.11.0/30", "169.254.11.1"), b
    # The peer's side: the customer gateway's ASN and the other host of the /30.
    assert (b["PeerAsn"], b["PeerBgpIp"]) == (65010, "169.254.11.2"), b
    assert (d["EnableDpd"], d["EnableNatTraversal"], d["EffectImmediately"]) == (False, False, True), d
    # No static routes for a connection that asked for none.
    assert pbr_routes(api, gw) == set()

    # The same values as JSON numbers and booleans are read alike.
    cgw2 = new_cgw(api, asn="65020")
    bgp2 = json.dumps({"EnableBgp": True, "LocalAsn": 4294967295, "TunnelCidr": "169.254.12.0/30"})
    hc2 = json.dumps({"enable": True, "dip": "192.168.20.1", "sip": "10.1.0.2", "interval": 3, "retry": 3})
    vco2 = create(api, gw, cgw2, local="10.1.0.0/24", BgpConfig=bgp2, HealthCheckConfig=hc2,
                  AutoConfigRoute=False)["VpnConnectionId"]
    d2 = describe(api, vco2)
    b2 = d2["VpnBgpConfig"]
    # LocalBgpIp defaults to the first host of the TunnelCidr.
    assert (b2["EnableBgp"], b2["LocalAsn"], b2["LocalBgpIp"], b2["PeerBgpIp"], b2["PeerAsn"]) == \
        ("true", 4294967295, "169.254.12.1", "169.254.12.2", 65020), b2
    h2 = d2["VcoHealthCheck"]
    assert (h2["Enable"], h2["Dip"], h2["Interval"], h2["Retry"]) == ("true", "192.168.20.1", 3, 3), h2


def test_describe_list_filters_and_paging(fresh_api, kind):
    api = fresh_api
    assert list_body(api)["TotalCount"] == 0
    gw1 = active_gateway(api)["VpnGatewayId"]
    gw2 = active_gateway(api)["VpnGatewayId"]
    a, b, c = new_cgw(api), new_cgw(api), new_cgw(api)
    on1 = [create(api, gw1, x, local="10.0.0.0/24", AutoConfigRoute=False)["VpnConnectionId"] for x in (a, b, c)]
    # The same customer gateway on another VPN gateway.
    on2 = [create(api, gw2, x, local="10.0.0.0/24", AutoConfigRoute=False)["VpnConnectionId"] for x in (a, b)]
    everything = set(on1 + on2)

    body = list_body(api)
    assert (body["TotalCount"], body["PageNumber"], body["PageSize"]) == (5, 1, 10), body
    got = items(body, "VpnConnections", "VpnConnection")
    assert {x["VpnConnectionId"] for x in got} == everything
    for x in got:
        # Nested objects, not JSON strings.
        for field in ("IkeConfig", "IpsecConfig", "VcoHealthCheck", "VpnBgpConfig"):
            assert isinstance(x[field], dict), (field, x)
        assert PSK_RE.match(x["IkeConfig"]["Psk"]), x
        assert x["VpnGatewayId"] in (gw1, gw2) and x["CustomerGatewayId"] in (a, b, c), x
    one = next(x for x in got if x["VpnConnectionId"] == on1[0])
    d = describe(api, on1[0])
    for field in ("VpnConnectionId", "VpnGatewayId", "CustomerGatewayId", "Name", "LocalSubnet", "RemoteSubnet",
                  "CreateTime", "EffectImmediately", "EnableDpd", "EnableNatTraversal", "Status", "State",
                  "IkeConfig", "IpsecConfig"):
        assert one[field] == d[field], (field, one[field], d[field])

    ids = lambda **f: {x["VpnConnectionId"] for x in listed(api, **f)}  # noqa: E731
    assert ids(VpnGatewayId=gw1) == set(on1)
    assert ids(VpnGatewayId=gw2) == set(on2)
    assert ids(CustomerGatewayId=a) == {on1[0], on2[0]}
    assert ids(CustomerGatewayId=c) == {on1[2]}
    assert ids(VpnConnectionId=on2[1]) == {on2[1]}
    assert ids(VpnGatewayId=gw2, CustomerGatewayId=a) == {on2[0]}
    assert ids(VpnGatewayId=gw2, CustomerGatewayId=c) == set()
    assert ids(VpnGatewayId=gw1, VpnConnectionId=on2[0]) == set()
    assert list_body(api, CustomerGatewayId=a)["TotalCount"] == 2
    # Unknown IDs narrow the list to nothing (no NotFound is documented for the list).
    assert list_body(api, VpnConnectionId=UNKNOWN_CONN)["TotalCount"] == 0
    assert list_body(api, VpnGatewayId=UNKNOWN_GW)["TotalCount"] == 0

    pages = [list_body(api, PageSize=2, PageNumber=n) for n in (1, 2, 3, 4)]
    lists = [items(p, "VpnConnections", "VpnConnection") for p in pages]
    assert [len(x) for x in lists] == [2, 2, 1, 0], pages
    assert all((p["TotalCount"], p["PageSize"]) == (5, 2) for p in pages), pages
    assert [p["PageNumber"] for p in pages] == [1, 2, 3, 4]
    paged = [x["VpnConnectionId"] for lst in lists for x in lst]
    assert sorted(paged) == sorted(everything), "pages overlap or miss connections"
    # Filters page too.
    p2 = list_body(api, CustomerGatewayId=a, PageSize=1, PageNumber=2)
    assert p2["TotalCount"] == 2 and len(items(p2, "VpnConnections", "VpnConnection")) == 1, p2


def test_list_shape_on_the_wire(server, root):
    """The raw JSON: {"VpnConnections": {"VpnConnection": [...]}} (clients.md 0.9)."""
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api))["VpnConnectionId"]
    raw = support.RawClient(server.endpoint, root.ak, root.secret)
    r = raw.rpc("DescribeVpnConnections", {"VpnGatewayId": gw})
    assert r.status == 200, r
    body = r.json()
    assert isinstance(body["VpnConnections"], dict), body
    assert [x["VpnConnectionId"] for x in body["VpnConnections"]["VpnConnection"]] == [vco]
    r = raw.rpc("DescribeVpnConnection", {"VpnConnectionId": vco})
    one = r.json()
    for field in ("IkeConfig", "IpsecConfig", "VcoHealthCheck", "VpnBgpConfig"):
        assert isinstance(one[field], dict), (field, one)
    assert one["VcoHealthCheck"]["Enable"] == "false" and one["VpnBgpConfig"]["EnableBgp"] == "false", one


# ---------------------------------------------------------------- dual tunnel


DUAL_KINDS = ("classic", "tea-acs3", "tea-v2")


@pytest.mark.parametrize("client_kind", DUAL_KINDS)
def test_dual_tunnel_create_in_a_form_body(server, root, proxy, client_kind):
    api = make_api(client_kind, proxy.endpoint, root)
    gw = dual_gateway(api)
    gw_id, ip1, ip2 = gw["VpnGatewayId"], gw["InternetIp"], gw["DisasterRecoveryInternetIp"]
    c1, c2 = new_cgw(api, asn=65010), new_cgw(api, asn=65020)
    c1_ip, c2_ip = cgw_ip(api, c1), cgw_ip(api, c2)
    remote = remote_net()
    tunnels = [
        tunnel("master", c1, EnableDpd=True, EnableNatTraversal=True,
               TunnelIkeConfig={"Psk": "master-psk-1", "IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes256",
                                "IkeAuthAlg": "sha256", "IkePfs": "group14", "IkeLifetime": 28800},
               TunnelIpsecConfig={"IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha512", "IpsecPfs": "disabled",
                                  "IpsecLifetime": 3600},
               TunnelBgpConfig={"LocalAsn": 65001, "TunnelCidr": "169.254.20.0/30", "LocalBgpIp": "169.254.20.1"}),
        tunnel("slave", c2, EnableDpd=False, EnableNatTraversal=False,
               TunnelIkeConfig={"Psk": "slave-psk-2"},
               TunnelBgpConfig={"LocalAsn": 65001, "TunnelCidr": "169.254.20.4/30"}),
    ]
    out = create_dual(api, gw_id, "10.3.0.0/24", remote, tunnels, EnableTunnelsBgp=True, EffectImmediately=True,
                      Name="dual-conn", AutoConfigRoute=False)
    vco = out["VpnConnectionId"]
    assert VCO_ID_RE.match(vco) and out["Name"] == "dual-conn", out

    # Where the parameters travelled: the tunnels in an x-www-form-urlencoded body, the rest in the query.
    sent = proxy.last("TunnelOptionsSpecification.1.Role")
    assert sent.method == "POST" and "x-www-form-urlencoded" in sent.content_type, sent
    assert sent.body["TunnelOptionsSpecification.1.Role"] == "master", sent.body
    assert sent.body["TunnelOptionsSpecification.2.TunnelIkeConfig.Psk"] == "slave-psk-2", sent.body
    assert sent.body["TunnelOptionsSpecification.1.TunnelBgpConfig.TunnelCidr"] == "169.254.20.0/30", sent.body
    assert not any(k.startswith("TunnelOptionsSpecification") for k in sent.query), sent.query
    assert sent.query["VpnGatewayId"] == gw_id and sent.query["LocalSubnet"] == "10.3.0.0/24", sent.query

    wait_active(api, gw_id)
    d = describe(api, vco)
    assert (d["VpnConnectionId"], d["VpnGatewayId"], d["Name"]) == (vco, gw_id, "dual-conn"), d
    assert (d["LocalSubnet"], d["RemoteSubnet"], d["State"]) == ("10.3.0.0/24", remote, "active"), d
    assert s(d["EnableTunnelsBgp"]) == "true", d
    t = by_role(d)
    m, sl = t["master"], t["slave"]
    # One tunnel per gateway IP, each with its own ID and its own negotiation status.
    assert (m["InternetIp"], sl["InternetIp"]) == (ip1, ip2), t
    assert m["TunnelId"] and sl["TunnelId"] and m["TunnelId"] != sl["TunnelId"], t
    assert (m["Status"], sl["Status"]) == ("ipsec_sa_established", "ipsec_sa_established"), t
    assert (m["CustomerGatewayId"], sl["CustomerGatewayId"]) == (c1, c2), t
    assert (s(m["EnableDpd"]), s(m["EnableNatTraversal"]), s(sl["EnableDpd"]), s(sl["EnableNatTraversal"])) == \
        ("true", "true", "false", "false"), t
    mi, si = m["TunnelIkeConfig"], sl["TunnelIkeConfig"]
    assert {k: s(v) for k, v in mi.items()} == {
        "Psk": "master-psk-1", "IkeVersion": "ikev2", "IkeMode": "main", "IkeEncAlg": "aes256", "IkeAuthAlg": "sha256",
        "IkePfs": "group14", "IkeLifetime": "28800", "LocalId": ip1, "RemoteId": c1_ip}, mi
    # The slave takes the defaults; its IDs default to its own IP and its own customer gateway's.
    assert {k: s(v) for k, v in si.items()} == {
        "Psk": "slave-psk-2", "IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes", "IkeAuthAlg": "md5",
        "IkePfs": "group2", "IkeLifetime": "86400", "LocalId": ip2, "RemoteId": c2_ip}, si
    assert {k: s(v) for k, v in m["TunnelIpsecConfig"].items()} == {
        "IpsecEncAlg": "aes256", "IpsecAuthAlg": "sha512", "IpsecPfs": "disabled", "IpsecLifetime": "3600"}
    assert {k: s(v) for k, v in sl["TunnelIpsecConfig"].items()} == {
        "IpsecEncAlg": "aes", "IpsecAuthAlg": "md5", "IpsecPfs": "group2", "IpsecLifetime": "86400"}
    mb, sb = m["TunnelBgpConfig"], sl["TunnelBgpConfig"]
    assert (mb["TunnelCidr"], mb["LocalBgpIp"], mb["PeerBgpIp"], s(mb["LocalAsn"]), s(mb["PeerAsn"])) == \
        ("169.254.20.0/30", "169.254.20.1", "169.254.20.2", "65001", "65010"), mb
    assert (sb["TunnelCidr"], sb["LocalBgpIp"], sb["PeerBgpIp"], s(sb["LocalAsn"]), s(sb["PeerAsn"])) == \
        ("169.254.20.4/30", "169.254.20.5", "169.254.20.6", "65001", "65020"), sb
    assert (mb["BgpStatus"], sb["BgpStatus"]) == ("success", "success"), (mb, sb)

    # The list shows the tunnels too.
    (x,) = listed(api, VpnGatewayId=gw_id)
    assert {r: tt["TunnelId"] for r, tt in by_role(x).items()} == {"master": m["TunnelId"], "slave": sl["TunnelId"]}

    # Download: one entry per tunnel, BGP peerings apart.
    cfg = download(api, vco)
    assert (cfg["LocalSubnet"], cfg["RemoteSubnet"]) == ("10.3.0.0/24", remote), cfg
    tcs = cfg["TunnelsConfig"]["TunnelConfig"]
    assert isinstance(tcs, list) and len(tcs) == 2, cfg
    by_id = {tc["TunnelId"]: tc for tc in tcs}
    assert set(by_id) == {m["TunnelId"], sl["TunnelId"]}, cfg
    tm, ts = by_id[m["TunnelId"]], by_id[sl["TunnelId"]]
    assert (tm["Local"], tm["Remote"], tm["IkeConfig"]["Psk"]) == (ip1, c1_ip, "master-psk-1"), tm
    assert (ts["Local"], ts["Remote"], ts["IkeConfig"]["Psk"]) == (ip2, c2_ip, "slave-psk-2"), ts
    assert tm["IpsecConfig"]["IpsecAuthAlg"] == "sha512" and ts["IpsecConfig"]["IpsecAuthAlg"] == "md5", cfg
    bgps = cfg["BgpConfigs"]["BgpConfig"]
    assert {(b["TunnelCidr"], b["LocalBgpIp"], b["PeerBgpIp"], s(b["PeerAsn"])) for b in bgps} == {
        ("169.254.20.0/30", "169.254.20.1", "169.254.20.2", "65010"),
        ("169.254.20.4/30", "169.254.20.5", "169.254.20.6", "65020")}, bgps


def test_dual_tunnel_classic_request_body_params(server, root):
    """The classic SDK's own request class puts TunnelOptionsSpecification.* in add_body_params."""
    api = make_api("classic", server.endpoint, root)
    gw = dual_gateway(api)["VpnGatewayId"]
    c1, c2 = new_cgw(api), new_cgw(api)
    req = api.request("CreateVpnConnection", {
        "VpnGatewayId": gw, "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": remote_net(),
        "TunnelOptionsSpecification": [tunnel("master", c1, TunnelIkeConfig={"Psk": "a-1"}),
                                       tunnel("slave", c2, TunnelIkeConfig={"Psk": "b-2"})]})
    body = req.get_body_params()
    assert body["TunnelOptionsSpecification.1.CustomerGatewayId"] == c1, body
    assert body["TunnelOptionsSpecification.2.TunnelIkeConfig.Psk"] == "b-2", body
    assert not any(k.startswith("TunnelOptionsSpecification") for k in req.get_query_params())
    out = json.loads(api._client(support.REGION).do_action_with_exception(req))
    wait_active(api, gw)
    t = by_role(describe(api, out["VpnConnectionId"]))
    assert (t["master"]["TunnelIkeConfig"]["Psk"], t["slave"]["TunnelIkeConfig"]["Psk"]) == ("a-1", "b-2"), t
    # Without EffectImmediately or a health check nothing negotiates: each tunnel says so.
    assert (t["master"]["Status"], t["slave"]["Status"]) == ("ike_sa_not_established", "ike_sa_not_established")


def test_dual_tunnel_wrong_mode_and_missing_tunnels(fresh_api, kind):
    api = fresh_api  # its own customer gateways: one takes the gateway's address
    dual = dual_gateway(api)
    gw = dual["VpnGatewayId"]
    single = active_gateway(api)["VpnGatewayId"]
    c1, c2 = new_cgw(api), new_cgw(api)
    two = [tunnel("master", c1), tunnel("slave", c2)]
    missing = "MissingParameter.TunnelOptionsSpecification"

    def dual_create(tunnels, **top):
        return create(api, gw, local="10.0.0.0/24", wait=False,
                      **({"TunnelOptionsSpecification": tunnels} if tunnels is not None else {}), **top)

    # A dual-tunnel gateway needs both tunnels.
    e = expect_error(lambda: dual_create(None), 400, missing)
    assert e.message == "The required parameters are missing when creating a tunnel for dual-tunnel VPN.", e.message
    expect_error(lambda: dual_create(two[:1]), 400, missing)
    expect_error(lambda: dual_create([tunnel("master", c1), {"Role": "slave"}]), 400, missing)
    expect_error(lambda: dual_create([{"CustomerGatewayId": c1}, tunnel("slave", c2)]), 400, missing)
    # ... and takes no single-tunnel parameters.
    expect_error(lambda: dual_create(None, CustomerGatewayId=c1), 400, "InvalidParameter")
    for name, value in [("CustomerGatewayId", c1), ("IkeConfig", json.dumps({"Psk": "abc"})),
                        ("IpsecConfig", json.dumps({"IpsecPfs": "group2"})),
                        ("BgpConfig", json.dumps({"EnableBgp": False})),
                        ("HealthCheckConfig", json.dumps({"enable": False}))]:
        e = expect_error(lambda: dual_create(two, **{name: value}), 400, "InvalidParameter")
        assert name in e.message, e.message
    # Roles: one master and one slave.
    expect_error(lambda: dual_create([tunnel("master", c1), tunnel("master", c2)]), 400, "InvalidParameter")
    expect_error(lambda: dual_create([tunnel("master", c1), tunnel("backup", c2)]), 400, "InvalidParameter")
    # A tunnel's customer gateway must exist.
    expect_error(lambda: dual_create([tunnel("master", c1), tunnel("slave", UNKNOWN_CGW)]), 404,
                 "InvalidCustomerGatewayInstanceId.NotFound")
    # The customer gateway of a tunnel may not have the tunnel's own address.
    clash = new_cgw(api, ip=dual["DisasterRecoveryInternetIp"])
    expect_error(lambda: dual_create([tunnel("master", c1), tunnel("slave", clash)]), 400,
                 "CustomerGateway.ConflictVpnIp")
    # Tunnel values follow the 000 lists.
    expect_error(lambda: dual_create([tunnel("master", c1, TunnelIpsecConfig={"IpsecPfs": "group24"}),
                                      tunnel("slave", c2)]), 400, "NotSupportVpnConnectionParameter.IpsecPfs")
    expect_error(lambda: dual_create([tunnel("master", c1, TunnelIkeConfig={"LocalId": "has space"}),
                                      tunnel("slave", c2)]), 400, "InvalidParameter")
    # Tunnel BGP: both tunnels need a CIDR, not a reserved one, and not the same one.
    expect_error(lambda: dual_create(two, EnableTunnelsBgp=True), 400, "MissingParameter.TunnelCidr")
    bgp = lambda cidr1, cidr2, **b: [  # noqa: E731
        tunnel("master", c1, TunnelBgpConfig={"TunnelCidr": cidr1, **b}),
        tunnel("slave", c2, TunnelBgpConfig={"TunnelCidr": cidr2})]
    expect_error(lambda: dual_create(bgp("169.254.30.0/30", "169.254.30.0/30"), EnableTunnelsBgp=True), 400,
                 "IllegalParam.TunnelCidr")
    expect_error(lambda: dual_create(bgp("169.254.30.0/30", "169.254.169.252/30"), EnableTunnelsBgp=True), 400,
                 "IllegalParam.TunnelCidr")
    expect_error(lambda: dual_create(bgp("169.254.30.0/30", "169.254.31.0/30", LocalBgpIp="169.254.31.1"),
                                     EnableTunnelsBgp=True), 400, "IllegalParam.LocalBgpIp")
    # The customer gateways have no ASN.
    expect_error(lambda: dual_create(bgp("169.254.30.0/30", "169.254.31.0/30"), EnableTunnelsBgp=True), 400,
                 "MissingParam.CustomerGatewayAsn")

    # A single-tunnel gateway takes no tunnels, and needs its customer gateway.
    expect_error(lambda: create(api, single, local="10.0.0.0/24", wait=False, TunnelOptionsSpecification=two),
                 400, "InvalidParameter")
    expect_error(lambda: create(api, single, local="10.0.0.0/24", wait=False), 400, "MissingCustomerGatewayId")

    # Nothing was created, and neither gateway left `active`.
    assert listed(api, VpnGatewayId=gw) == [] and listed(api, VpnGatewayId=single) == []
    assert describe_gateway(api, gw)["Status"] == "active" and describe_gateway(api, single)["Status"] == "active"


# ---------------------------------------------------------------- cross-resource rules


def test_ipsec_disabled(api):
    gw = active_gateway(api, EnableIpsec=False, EnableSsl=True)["VpnGatewayId"]
    e = expect_error(lambda: create(api, gw, new_cgw(api), wait=False), 400, "VpnGateway.IpsecVpnDisabled")
    assert e.message == "The vpn gateway does not enable IPSec VPN.", e.message
    assert listed(api, VpnGatewayId=gw) == []


def test_same_gateway_and_customer_gateway(api):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    ike = {"Psk": "shared-key-1", "IkeVersion": "ikev1"}
    first = create(api, gw, cgw, local="10.0.0.0/24", remote="192.168.0.0/24", IkeConfig=json.dumps(ike),
                   AutoConfigRoute=False)["VpnConnectionId"]

    def second(remote="192.168.1.0/24", local="10.0.0.0/24", ike_cfg: dict | None = ike):
        cfg = json.dumps(ike_cfg) if ike_cfg is not None else None
        return create(api, gw, cgw, local=local, remote=remote, IkeConfig=cfg, AutoConfigRoute=False)

    differ = "VpnConnectionParamInvalid.SameVpnAndCgwDifferentIkeConfigs"
    overlap = "VpnConnectionParamInvalid.SameVpnAndCgwTrafficSelectorOverlap"
    expect_error(lambda: second(ike_cfg={**ike, "Psk": "another-key"}), 400, differ)
    expect_error(lambda: second(ike_cfg={**ike, "IkeVersion": "ikev2"}), 400, differ)
    expect_error(lambda: second(ike_cfg={**ike, "IkeAuthAlg": "sha1"}), 400, differ)
    expect_error(lambda: second(ike_cfg=None), 400, differ)  # a generated PSK differs
    # The same IKE, and traffic selectors that overlap on both sides.
    expect_error(lambda: second(remote="192.168.0.128/25"), 400, overlap)
    expect_error(lambda: second(local="10.0.0.0/16", remote="192.168.0.0/24"), 400, overlap)
    expect_error(lambda: second(local="10.0.9.0/24,10.0.0.0/25", remote="192.168.7.0/24,192.168.0.0/16"), 400,
                 overlap)
    # Apart on either side: fine.
    ok = second(remote="192.168.1.0/24")["VpnConnectionId"]
    ok2 = second(local="10.9.0.0/24", remote="192.168.0.0/24")["VpnConnectionId"]
    assert describe(api, ok)["IkeConfig"]["Psk"] == describe(api, first)["IkeConfig"]["Psk"] == "shared-key-1"
    # Another customer gateway is not bound by any of it.
    create(api, gw, new_cgw(api), local="10.0.0.0/24", remote="192.168.0.0/24", AutoConfigRoute=False)
    # Modify is held to the same rules.
    modify = lambda **p: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": ok, **p})  # noqa: E731
    expect_error(lambda: modify(RemoteSubnet="192.168.0.0/23"), 400, overlap)
    expect_error(lambda: modify(IkeConfig=json.dumps({"Psk": "changed-key"})), 400, differ)
    assert {x["VpnConnectionId"] for x in listed(api, CustomerGatewayId=cgw)} == {first, ok, ok2}
    assert describe(api, ok)["RemoteSubnet"] == "192.168.1.0/24"


def test_customer_gateway_with_the_gateways_ip(fresh_api):
    api = fresh_api  # customer gateway IPs are unique per account; gateway IPs are reused once released
    gw = active_gateway(api)["VpnGatewayId"]
    ip = describe_gateway(api, gw)["InternetIp"]
    clash = new_cgw(api, ip=ip)
    e = expect_error(lambda: create(api, gw, clash, wait=False), 400, "CustomerGateway.ConflictVpnIp")
    assert e.message == ("The customer gateway associated with the IPSec connection should not have the same IP "
                         "address as the VPN gateway."), e.message
    assert listed(api, VpnGatewayId=gw) == []


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0.1/24", "10.0.0.0", "not-a-cidr", "10.0.0.0/24,,",
                                 "10.0.0.0/24;10.1.0.0/24", "300.0.0.0/8"])
def test_bad_subnets(server, root, bad):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    e = expect_error(lambda: create(api, gw, cgw, local=bad, wait=False), 400, "IllegalParam.LocalSubnet")
    assert bad in e.message and "LocalSubnet" in e.message, e.message
    e = expect_error(lambda: create(api, gw, cgw, remote=bad, wait=False), 400, "IllegalParam.RemoteSubnet")
    assert bad in e.message and "RemoteSubnet" in e.message, e.message
    assert listed(api, VpnGatewayId=gw) == []


def test_bad_subnets_through_every_sdk(api):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    e = expect_error(lambda: create(api, gw, cgw, local="10.0.0.0/24,10.1.0.0/33", wait=False), 400,
                     "IllegalParam.LocalSubnet")
    assert e.message == 'The specified "LocalSubnet" (10.0.0.0/24,10.1.0.0/33) is invalid.', e.message
    e = expect_error(lambda: create(api, gw, cgw, remote="192.168.0.0/99", wait=False), 400,
                     "IllegalParam.RemoteSubnet")
    assert "192.168.0.0/99" in e.message, e.message
    for missing in ("LocalSubnet", "RemoteSubnet", "VpnGatewayId"):
        params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
                  "RemoteSubnet": "192.168.0.0/24"}
        del params[missing]
        expect_error(lambda: api.call("CreateVpnConnection", params), 400, f"Missing{missing}")


def test_bgp_rules(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    with_asn, without_asn = new_cgw(api, asn=65010), new_cgw(api)

    def bgp_create(cfg, cgw=with_asn, **extra):
        text = cfg if isinstance(cfg, str) else json.dumps(cfg)
        return create(api, gw, cgw, BgpConfig=text, wait=False, **extra)

    on = {"EnableBgp": "true", "LocalAsn": "65001"}
    # TunnelCidr: a /30 inside 169.254.0.0/16, none of the reserved ones.
    for cidr in ["169.254.10.0/29", "169.254.10.0/31", "10.0.0.0/30", "169.255.0.0/30", *FORBIDDEN_TUNNEL_CIDRS]:
        expect_error(lambda: bgp_create({**on, "TunnelCidr": cidr}), 400, "IllegalParam.TunnelCidr")
    for cidr in ["not-a-cidr", "169.254.300.0/30"]:
        expect_error(lambda: bgp_create({**on, "TunnelCidr": cidr}), 400, "InvalidTunnelCidr.Malformed")
    e = expect_error(lambda: bgp_create(on), 400, "MissingParameter.TunnelCidr")
    assert e.message == "The parameter TunnelCidr is mandatory when BGP is enabled.", e.message
    # LocalBgpIp: a host of the TunnelCidr.
    for ip in ["169.254.14.1", "169.254.13.0", "169.254.13.3", "10.0.0.1"]:
        expect_error(lambda: bgp_create({**on, "TunnelCidr": "169.254.13.0/30", "LocalBgpIp": ip}), 400,
                     "IllegalParam.LocalBgpIp")
    expect_error(lambda: bgp_create({**on, "TunnelCidr": "169.254.13.0/30", "LocalBgpIp": "abc"}), 400,
                 "InvalidLocalBgpIp.Malformed")
    # LocalAsn: 1-4294967295.
    for asn in ["0", "4294967296", "-1", "abc", 0]:
        expect_error(lambda: bgp_create({"EnableBgp": "true", "LocalAsn": asn, "TunnelCidr": "169.254.13.0/30"}),
                     400, "IllegalParam.LocalAsn")
    # Not JSON, or not an object.
    for text in ["{not json", "[]", '"EnableBgp"']:
        expect_error(lambda: bgp_create(text), 400, "IllegalParam.BgpConfig")
    # The customer gateway must have an ASN.
    e = expect_error(lambda: bgp_create({**on, "TunnelCidr": "169.254.13.0/30"}, cgw=without_asn), 400,
                     "MissingParam.CustomerGatewayAsn")
    assert e.message == "Asn of customer gateway is mandatory when BGP is enabled.", e.message
    assert listed(api, VpnGatewayId=gw) == []

    # A tunnel CIDR is used once per VPN gateway.
    bgp_create({**on, "TunnelCidr": "169.254.13.0/30"}, AutoConfigRoute=False)
    wait_active(api, gw)
    other = new_cgw(api, asn=65020)
    expect_error(lambda: bgp_create({**on, "TunnelCidr": "169.254.13.0/30"}, cgw=other, local="10.9.0.0/24"), 400,
                 "IllegalParam.TunnelCidr")
    # On another gateway it is free.
    gw2 = active_gateway(api)["VpnGatewayId"]
    create(api, gw2, other, BgpConfig=json.dumps({**on, "TunnelCidr": "169.254.13.0/30"}))
    # BGP switched off: no TunnelCidr needed, no ASN needed.
    vco = create(api, gw, new_cgw(api), local="10.8.0.0/24", BgpConfig=json.dumps({"EnableBgp": "false"}))
    assert describe(api, vco["VpnConnectionId"])["VpnBgpConfig"]["EnableBgp"] == "false"


def test_national_standard_certificate(api, server, tmp_path):
    ns = active_gateway(api, VpnType="NationalStandard")["VpnGatewayId"]
    std = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    cert = "-----BEGIN CERTIFICATE----- MIIB7zCCAZWgAwIBAgIJAKJxCQK2n -----END CERTIFICATE-----"
    subject = json.dumps({"RemoteId": "CN=test,OU=test,O=test,C=CHN"})
    # A national-standard gateway negotiates with its own certificates: none associated, no connection.
    expect_error(lambda: create(api, ns, cgw, IkeConfig=subject, RemoteCaCertificate=cert, wait=False), 400,
                 "OperationFailed.MissCertificate")
    pem = tmp_path / "gw.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", "/CN=gateway", "-days", "30", "-keyout", str(tmp_path / "gw.key"), "-out", str(pem)],
                   check=True, capture_output=True, timeout=30)
    cert_id = server.cli("certificates", "add", str(pem), "--region", support.REGION).stdout.split()[-1]
    api.call("AssociateVpnGatewayWithCertificate",
             {"VpnGatewayId": ns, "CertificateType": "Signature", "CertificateId": cert_id})
    # The RemoteId of a national-standard connection is the certificate's subject: required.
    expect_error(lambda: create(api, ns, cgw, RemoteCaCertificate=cert, wait=False), 400, "MissingParam.RemoteId")
    expect_error(lambda: create(api, ns, cgw, IkeConfig=subject, wait=False), 400, "MissingRemoteCaCertificate")
    expect_error(lambda: create(api, std, cgw, RemoteCaCertificate=cert, wait=False), 400, "InvalidParameter")
    assert listed(api, VpnGatewayId=ns) == [] and listed(api, VpnGatewayId=std) == []
    vco = create(api, ns, cgw, IkeConfig=subject, RemoteCaCertificate=cert)["VpnConnectionId"]
    d = describe(api, vco)
    assert d["RemoteCaCertificate"] == cert, d
    ike, ipsec = d["IkeConfig"], d["IpsecConfig"]
    # SM gateways default to SM4/SM3 (002).
    assert (ike["IkeEncAlg"], ike["IkeAuthAlg"], ike["RemoteId"]) == ("sm4", "sm3", "CN=test,OU=test,O=test,C=CHN")
    assert (ipsec["IpsecEncAlg"], ipsec["IpsecAuthAlg"]) == ("sm4", "sm3"), ipsec
    # A standard connection keeps the certificate empty.
    assert describe(api, create(api, std, cgw)["VpnConnectionId"]).get("RemoteCaCertificate", "") == ""


def test_connection_quota(server_factory, root):
    srv = server_factory(["--transition-delay-ms", "0", "--quota-vpn-connections", "2"])
    api = make_api("tea-acs3", srv.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    a = create(api, gw, new_cgw(api), local="10.0.0.0/24")["VpnConnectionId"]
    create(api, gw, new_cgw(api), local="10.1.0.0/24")
    e = expect_error(lambda: create(api, gw, new_cgw(api), local="10.2.0.0/24", wait=False), 400,
                     "CreateVpnConnectionsQuotaFull.QuotaFull")
    assert e.message == "The number of VPN connections exceeds the quota limit.", e.message
    # Dual-tunnel connections count alike.
    dual = dual_gateway(api)["VpnGatewayId"]
    for i in range(2):
        create(api, dual, local=f"10.{i}.0.0/24",
               TunnelOptionsSpecification=[tunnel("master", new_cgw(api)), tunnel("slave", new_cgw(api))])
    expect_error(lambda: create(api, dual, local="10.5.0.0/24", wait=False, TunnelOptionsSpecification=[
        tunnel("master", new_cgw(api)), tunnel("slave", new_cgw(api))]), 400, "CreateVpnConnectionsQuotaFull.QuotaFull")
    # Deleting frees a slot.
    api.call("DeleteVpnConnection", {"VpnConnectionId": a})
    wait_active(api, gw)
    create(api, gw, new_cgw(api), local="10.2.0.0/24")
    assert len(listed(api, VpnGatewayId=gw)) == 2


def test_dry_run(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    e = expect_error(lambda: create(api, gw, cgw, DryRun=True, wait=False), 400, "DryRunOperation")
    assert e.message == "Request validation has been passed with DryRun flag set.", e.message
    # Nothing created, no route, and the gateway did not start an update.
    assert listed(api, VpnGatewayId=gw) == []
    assert pbr_routes(api, gw) == set()
    assert describe_gateway(api, gw)["Status"] == "active"
    # A request that would fail fails the same way under DryRun.
    expect_error(lambda: create(api, gw, cgw, local="10.0.0.0/33", DryRun=True, wait=False), 400,
                 "IllegalParam.LocalSubnet")
    expect_error(lambda: create(api, gw, UNKNOWN_CGW, DryRun=True, wait=False), 404,
                 "InvalidCustomerGatewayInstanceId.NotFound")
    # DryRun=false is a normal request.
    vco = create(api, gw, cgw, DryRun=False)["VpnConnectionId"]
    assert [x["VpnConnectionId"] for x in listed(api, VpnGatewayId=gw)] == [vco]


def test_client_token(api):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    params = {"VpnGatewayId": gw, "CustomerGatewayId": cgw, "LocalSubnet": "10.0.0.0/24",
              "RemoteSubnet": remote_net(), "Name": "once", "ClientToken": "vco-token-" + support.rand_suffix(12)}
    first = api.call("CreateVpnConnection", params)
    # A retry, even while the gateway is still applying the first: the same answer, no second connection.
    again = api.call("CreateVpnConnection", params)
    assert strip_request_id(first) == strip_request_id(again)
    wait_active(api, gw)
    assert [x["VpnConnectionId"] for x in listed(api, VpnGatewayId=gw)] == [first["VpnConnectionId"]]
    expect_error(lambda: api.call("CreateVpnConnection", dict(params, Name="twice")), 400,
                 "IdempotentParameterMismatch")
    # Without a token, a repeat is a new request.
    plain = {k: v for k, v in params.items() if k != "ClientToken"}
    plain["CustomerGatewayId"], plain["RemoteSubnet"] = new_cgw(api), remote_net()
    second = api.call("CreateVpnConnection", plain)["VpnConnectionId"]
    wait_active(api, gw)
    assert {x["VpnConnectionId"] for x in listed(api, VpnGatewayId=gw)} == {first["VpnConnectionId"], second}
    expect_error(lambda: api.call("CreateVpnConnection", dict(params, ClientToken="t" * 65)), 400,
                 "InvalidParameter")


def test_not_found_codes(api):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    e = expect_error(lambda: create(api, UNKNOWN_GW, cgw, wait=False), 404, "InvalidVpnGatewayInstanceId.NotFound")
    assert e.message == "The specified vpn gateway instance id does not exist.", e.message
    e = expect_error(lambda: create(api, gw, UNKNOWN_CGW, wait=False), 404, "InvalidCustomerGatewayInstanceId.NotFound")
    assert e.message == "The specified customer gateway instance id does not exist.", e.message
    for action, extra in [("DescribeVpnConnection", {}), ("DownloadVpnConnectionConfig", {}),
                          ("DeleteVpnConnection", {}), ("ModifyVpnConnectionAttribute", {"Name": "abc"})]:
        e = expect_error(lambda: api.call(action, {"VpnConnectionId": UNKNOWN_CONN, **extra}), 404,
                         "InvalidVpnConnectionInstanceId.NotFound")
        assert e.message == "The specified vpn connection instance id does not exist.", e.message
        expect_error(lambda: api.call(action, dict(extra)), 400, "MissingVpnConnectionId")
    assert describe_gateway(api, gw)["Status"] == "active"


def test_other_account_and_region_see_nothing(server, root, new_account, kind):
    mine = make_api("classic", server.endpoint, root)
    gw = active_gateway(mine)["VpnGatewayId"]
    cgw = new_cgw(mine)
    vco = create(mine, gw, cgw)["VpnConnectionId"]
    theirs = make_api(kind, server.endpoint, new_account())
    for action, extra in [("DescribeVpnConnection", {}), ("DownloadVpnConnectionConfig", {}),
                          ("ModifyVpnConnectionAttribute", {"Name": "stolen"}), ("DeleteVpnConnection", {})]:
        expect_error(lambda: theirs.call(action, {"VpnConnectionId": vco, **extra}), 404,
                     "InvalidVpnConnectionInstanceId.NotFound")
    assert list_body(theirs, VpnConnectionId=vco)["TotalCount"] == 0
    assert list_body(theirs, VpnGatewayId=gw)["TotalCount"] == 0
    assert list_body(theirs, CustomerGatewayId=cgw)["TotalCount"] == 0
    # Their request naming my gateway, or my customer gateway from their gateway.
    expect_error(lambda: create(theirs, gw, new_cgw(theirs), wait=False), 404, "InvalidVpnGatewayInstanceId.NotFound")
    their_gw = active_gateway(theirs)["VpnGatewayId"]
    expect_error(lambda: create(theirs, their_gw, cgw, wait=False), 404, "InvalidCustomerGatewayInstanceId.NotFound")
    # Another region of my own account: not there either.
    sh = make_api(kind, server.endpoint, root, region="cn-shanghai")
    expect_error(lambda: describe(sh, vco), 404, "InvalidVpnConnectionInstanceId.NotFound")
    assert list_body(sh, VpnConnectionId=vco)["TotalCount"] == 0
    # Untouched.
    d = describe(mine, vco)
    assert (d["Name"], d["State"]) == ("", "active"), d


# ---------------------------------------------------------------- modify


def test_modify_partial_update(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    gw_ip = describe_gateway(api, gw)["InternetIp"]
    cgw = new_cgw(api)
    remote = remote_net()
    ike = {"Psk": "orig-psk", "IkeVersion": "ikev2", "IkeLifetime": 3600, "IkePfs": "group5"}
    hc = {"enable": "true", "dip": "192.168.50.1", "sip": "10.0.0.1", "interval": "6", "retry": "7"}
    vco = create(api, gw, cgw, local="10.0.0.0/24", remote=remote, Name="before", IkeConfig=json.dumps(ike),
                 IpsecConfig=json.dumps({"IpsecPfs": "group5", "IpsecLifetime": 7200}),
                 HealthCheckConfig=json.dumps(hc))["VpnConnectionId"]
    before = strip_request_id(describe(api, vco))

    def modify(**p) -> dict:
        out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, **p})
        wait_active(api, gw)
        return out

    # Name only: the answer is the whole connection; nothing else changed.
    out = modify(Name="after")
    for field in ("VpnConnectionId", "VpnGatewayId", "CustomerGatewayId", "LocalSubnet", "RemoteSubnet", "CreateTime",
                  "EffectImmediately", "EnableDpd", "EnableNatTraversal", "IkeConfig", "IpsecConfig"):
        assert out[field] == before[field], (field, out[field], before[field])
    assert out["Name"] == "after", out
    for field in ("IkeConfig", "IpsecConfig", "VcoHealthCheck", "VpnBgpConfig"):
        assert isinstance(out[field], dict), (field, out)
    assert (out["VcoHealthCheck"]["Enable"], out["VcoHealthCheck"]["Dip"]) == ("true", "192.168.50.1"), out
    after = strip_request_id(describe(api, vco))
    assert after["Name"] == "after"
    assert {k: v for k, v in after.items() if k not in ("Name", "Status", "VcoHealthCheck", "VpnBgpConfig", "State")} \
        == {k: v for k, v in before.items() if k not in ("Name", "Status", "VcoHealthCheck", "VpnBgpConfig", "State")}

    # One IKE field: the rest of IKE, the PSK included, is kept.
    out = modify(IkeConfig=json.dumps({"IkeAuthAlg": "sha1"}))
    assert out["IkeConfig"] == {**before["IkeConfig"], "IkeAuthAlg": "sha1"}, out["IkeConfig"]
    assert describe(api, vco)["IkeConfig"]["Psk"] == "orig-psk"
    assert out["IkeConfig"]["LocalId"] == gw_ip
    # The PSK changes when given.
    out = modify(IkeConfig=json.dumps({"Psk": "new-psk"}))
    assert (out["IkeConfig"]["Psk"], out["IkeConfig"]["IkeVersion"], out["IkeConfig"]["IkeLifetime"]) == \
        ("new-psk", "ikev2", 3600), out["IkeConfig"]
    assert download(api, vco)["IkeConfig"]["Psk"] == "new-psk"
    # One IPsec field.
    out = modify(IpsecConfig=json.dumps({"IpsecLifetime": 600}))
    assert out["IpsecConfig"] == {"IpsecEncAlg": "aes", "IpsecAuthAlg": "md5", "IpsecPfs": "group5",
                                  "IpsecLifetime": 600}, out["IpsecConfig"]
    # Flags one at a time.
    out = modify(EnableDpd=False)
    assert (out["EnableDpd"], out["EnableNatTraversal"]) == (False, True), out
    out = modify(EnableNatTraversal=False)
    assert (out["EnableDpd"], out["EnableNatTraversal"]) == (False, False), out
    # Health check: one key.
    out = modify(HealthCheckConfig=json.dumps({"retry": "9"}))
    h = out["VcoHealthCheck"]
    assert (h["Enable"], h["Dip"], h["Sip"], h["Interval"], h["Retry"]) == \
        ("true", "192.168.50.1", "10.0.0.1", 6, 9), h
    final = describe(api, vco)
    assert (final["Name"], final["LocalSubnet"], final["RemoteSubnet"], final["CreateTime"]) == \
        ("after", "10.0.0.0/24", remote, before["CreateTime"]), final
    assert final["IkeConfig"]["IkePfs"] == "group5" and final["IkeConfig"]["IkeAuthAlg"] == "sha1", final


def test_modify_subnets_recreate_auto_routes(api):
    gw = active_gateway(api)["VpnGatewayId"]
    remote = remote_net()
    vco = create(api, gw, new_cgw(api), local="10.0.0.0/24", remote=remote)["VpnConnectionId"]
    assert pbr_routes(api, gw) == {("10.0.0.0/24", remote, vco, "published")}
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "LocalSubnet": "10.0.5.0/24,10.0.6.0/24"})
    assert out["LocalSubnet"] == "10.0.5.0/24,10.0.6.0/24" and out["RemoteSubnet"] == remote, out
    wait_active(api, gw)
    assert pbr_routes(api, gw) == {("10.0.5.0/24", remote, vco, "published"),
                                   ("10.0.6.0/24", remote, vco, "published")}
    remote2 = remote_net()
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "RemoteSubnet": remote2})
    wait_active(api, gw)
    assert pbr_routes(api, gw) == {("10.0.5.0/24", remote2, vco, "published"),
                                   ("10.0.6.0/24", remote2, vco, "published")}
    d = describe(api, vco)
    assert (d["LocalSubnet"], d["RemoteSubnet"]) == ("10.0.5.0/24,10.0.6.0/24", remote2), d


def test_modify_bad_input(api):
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api, asn=65010), local="10.0.0.0/24")["VpnConnectionId"]
    before = strip_request_id(describe(api, vco))

    def modify(**p):
        return api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, **p})

    e = expect_error(lambda: modify(LocalSubnet="10.0.0.0/40"), 400, "IllegalParam.LocalSubnet")
    assert "10.0.0.0/40" in e.message, e.message
    e = expect_error(lambda: modify(RemoteSubnet="bogus"), 400, "IllegalParam.RemoteSubnet")
    assert "bogus" in e.message, e.message
    expect_error(lambda: modify(IkeConfig=json.dumps({"IkeVersion": "ikev3"})), 400, "InvalidParameter")
    expect_error(lambda: modify(IkeConfig=json.dumps({"IkeLifetime": 86401})), 400, "InvalidParameter")
    expect_error(lambda: modify(IkeConfig=json.dumps({"Psk": "x" * 101})), 400, "InvalidParameter")
    expect_error(lambda: modify(IkeConfig="{not json"), 400, "InvalidParameter")
    expect_error(lambda: modify(IkeConfig=json.dumps({"NoSuchKey": 1})), 400, "InvalidParameter")
    expect_error(lambda: modify(IpsecConfig=json.dumps({"IpsecPfs": "group99"})), 400,
                 "NotSupportVpnConnectionParameter.IpsecPfs")
    expect_error(lambda: modify(IpsecConfig=json.dumps({"IpsecAuthAlg": "sha999"})), 400,
                 "NotSupportVpnConnectionParameter.IpsecAuthAlg")
    expect_error(lambda: modify(BgpConfig=json.dumps({"EnableBgp": "true"})), 400, "MissingParameter.TunnelCidr")
    expect_error(lambda: modify(BgpConfig=json.dumps({"EnableBgp": "true", "TunnelCidr": "169.254.5.0/30"})), 400,
                 "IllegalParam.TunnelCidr")
    expect_error(lambda: modify(BgpConfig=json.dumps({"LocalAsn": "0"})), 400, "IllegalParam.LocalAsn")
    expect_error(lambda: modify(HealthCheckConfig=json.dumps({"enable": "true", "dip": "not-an-ip"})), 400,
                 "InvalidParameter")
    # A standard gateway's connection takes no certificate.
    expect_error(lambda: modify(RemoteCaCertificate="-----BEGIN CERTIFICATE----- x"), 400, "InvalidParameter")
    # Nothing changed, and no update was started.
    assert strip_request_id(describe(api, vco)) == before
    assert describe_gateway(api, gw)["Status"] == "active"


def test_modify_invalid_name(api):
    """ModifyVpnConnectionAttribute.yaml (errors; semantics): an invalid Name is 400 InvalidName."""
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api))["VpnConnectionId"]
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco,
                                                                   "Name": "http://example.com"}), 400, "InvalidName")
    assert describe(api, vco)["Name"] == ""


def test_modify_enable_bgp_later(api):
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api, asn=65030), local="10.0.0.0/24")["VpnConnectionId"]
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "BgpConfig": json.dumps(
        {"EnableBgp": "true", "LocalAsn": 65001, "TunnelCidr": "169.254.40.0/30"})})
    b = out["VpnBgpConfig"]
    assert (b["EnableBgp"], b["LocalAsn"], b["TunnelCidr"], b["LocalBgpIp"], b["PeerBgpIp"], b["PeerAsn"]) == \
        ("true", 65001, "169.254.40.0/30", "169.254.40.1", "169.254.40.2", 65030), b
    wait_active(api, gw)
    assert describe(api, vco)["VpnBgpConfig"]["TunnelCidr"] == "169.254.40.0/30"
    # Without an ASN on the customer gateway, BGP cannot be switched on.
    vco2 = create(api, gw, new_cgw(api), local="10.1.0.0/24")["VpnConnectionId"]
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco2, "BgpConfig": json.dumps(
        {"EnableBgp": "true", "TunnelCidr": "169.254.41.0/30"})}), 400, "MissingParam.CustomerGatewayAsn")
    # The CIDR is taken on this gateway.
    vco3 = create(api, gw, new_cgw(api, asn=65040), local="10.2.0.0/24")["VpnConnectionId"]
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco3, "BgpConfig": json.dumps(
        {"EnableBgp": "true", "TunnelCidr": "169.254.40.0/30"})}), 400, "IllegalParam.TunnelCidr")


def test_modify_dual_tunnel_in_a_form_body(server, root, proxy):
    api = make_api("classic", proxy.endpoint, root)
    gw = dual_gateway(api)["VpnGatewayId"]
    c1, c2 = new_cgw(api), new_cgw(api)
    vco = create(api, gw, local="10.0.0.0/24", TunnelOptionsSpecification=[
        tunnel("master", c1, TunnelIkeConfig={"Psk": "m-1"}), tunnel("slave", c2, TunnelIkeConfig={"Psk": "s-1"})]
    )["VpnConnectionId"]
    before = by_role(describe(api, vco))
    out = api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "TunnelOptionsSpecification": [
        {"Role": "slave", "TunnelIkeConfig": {"Psk": "s-2", "IkeVersion": "ikev2"}, "EnableDpd": False}]})
    sent = proxy.last("TunnelOptionsSpecification.1.Role")
    assert sent.body.get("TunnelOptionsSpecification.1.TunnelIkeConfig.Psk") == "s-2", sent
    t = by_role(out)
    assert (t["slave"]["TunnelIkeConfig"]["Psk"], t["slave"]["TunnelIkeConfig"]["IkeVersion"]) == ("s-2", "ikev2")
    assert s(t["slave"]["EnableDpd"]) == "false", t
    # The master, and the slave's other settings, are kept.
    assert t["master"] == {**before["master"], "State": t["master"]["State"]}, (t["master"], before["master"])
    assert t["slave"]["TunnelId"] == before["slave"]["TunnelId"]
    assert t["slave"]["TunnelIkeConfig"]["LocalId"] == before["slave"]["TunnelIkeConfig"]["LocalId"]
    wait_active(api, gw)
    # Single-tunnel parameters do not apply to a dual-tunnel connection.
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco,
                                                                   "IkeConfig": json.dumps({"Psk": "x"})}),
                 400, "InvalidParameter")


# ---------------------------------------------------------------- download


def test_download_config(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    gw_ip = describe_gateway(api, gw)["InternetIp"]
    cgw = new_cgw(api, asn=65050)
    peer_ip = cgw_ip(api, cgw)
    remote = remote_net()
    vco = create(api, gw, cgw, local="10.4.0.0/24,10.4.1.0/24", remote=remote,
                 IkeConfig=json.dumps({"Psk": "download-psk", "IkeAuthAlg": "sha1"}),
                 IpsecConfig=json.dumps({"IpsecEncAlg": "aes256"}))["VpnConnectionId"]
    cfg = download(api, vco)
    assert (cfg["Local"], cfg["Remote"]) == (gw_ip, peer_ip), cfg
    assert (cfg["LocalSubnet"], cfg["RemoteSubnet"]) == ("10.4.0.0/24,10.4.1.0/24", remote), cfg
    assert cfg["IkeConfig"] == {"Psk": "download-psk", "IkeVersion": "ikev1", "IkeMode": "main", "IkeEncAlg": "aes",
                                "IkeAuthAlg": "sha1", "IkePfs": "group2", "IkeLifetime": 86400, "LocalId": gw_ip,
                                "RemoteId": peer_ip}, cfg["IkeConfig"]
    assert cfg["IpsecConfig"] == {"IpsecEncAlg": "aes256", "IpsecAuthAlg": "md5", "IpsecPfs": "group2",
                                  "IpsecLifetime": 86400}, cfg["IpsecConfig"]
    assert "BgpConfigs" not in cfg or not cfg["BgpConfigs"].get("BgpConfig"), cfg
    # It mirrors Describe.
    d = describe(api, vco)
    assert cfg["IkeConfig"] == d["IkeConfig"] and cfg["IpsecConfig"] == d["IpsecConfig"]
    # With BGP, the peering is there too.
    api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": vco, "BgpConfig": json.dumps(
        {"EnableBgp": "true", "LocalAsn": 65001, "TunnelCidr": "169.254.50.0/30", "LocalBgpIp": "169.254.50.2"})})
    wait_active(api, gw)
    cfg = download(api, vco)
    (b,) = cfg["BgpConfigs"]["BgpConfig"]
    assert (b["TunnelCidr"], b["LocalBgpIp"], b["PeerBgpIp"], s(b["LocalAsn"]), s(b["PeerAsn"])) == \
        ("169.254.50.0/30", "169.254.50.2", "169.254.50.1", "65001", "65050"), b
    expect_error(lambda: download(api, UNKNOWN_CONN), 404, "InvalidVpnConnectionInstanceId.NotFound")


def test_download_xml(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api), IkeConfig=json.dumps({"Psk": "xml-psk"}))["VpnConnectionId"]
    raw = support.RawClient(server.endpoint, root.ak, root.secret)
    r = raw.rpc("DownloadVpnConnectionConfig", {"VpnConnectionId": vco}, fmt="XML")
    assert r.status == 200, r
    x = r.xml()
    assert x.tag == "DownloadVpnConnectionConfigResponse", r
    assert x.findtext("./VpnConnectionConfig/IkeConfig/Psk") == "xml-psk", r
    assert x.findtext("./VpnConnectionConfig/Local") == describe_gateway(api, gw)["InternetIp"], r


# ---------------------------------------------------------------- delete


def test_delete(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    vco = create(api, gw, cgw)["VpnConnectionId"]
    keep = create(api, gw, new_cgw(api), local="10.1.0.0/24")["VpnConnectionId"]
    out = api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    assert strip_request_id(out) == {} and out["RequestId"], out
    wait_active(api, gw)
    expect_error(lambda: describe(api, vco), 404, "InvalidVpnConnectionInstanceId.NotFound")
    expect_error(lambda: api.call("DeleteVpnConnection", {"VpnConnectionId": vco}), 404,
                 "InvalidVpnConnectionInstanceId.NotFound")
    assert [x["VpnConnectionId"] for x in listed(api, VpnGatewayId=gw)] == [keep]
    assert {r[2] for r in pbr_routes(api, gw)} == {keep}
    # The customer gateway is free again.
    api.call("DeleteCustomerGateway", {"CustomerGatewayId": cgw})


# ---------------------------------------------------------------- tags


def test_tags_on_connections(api, kind):
    gw = active_gateway(api)["VpnGatewayId"]
    marker = "m" + support.rand_suffix(10)
    vco = create(api, gw, new_cgw(api), Tags=[{"Key": "env", "Value": "prod"}, {"Key": "marker", "Value": marker}]
                 )["VpnConnectionId"]
    assert tags_of(describe(api, vco)) == {"env": "prod", "marker": marker}

    def bindings(**p) -> set:
        body = api.call("ListTagResources", {"ResourceType": "VpnConnection", **p})
        out = set()
        for tr in items(body, "TagResources", "TagResource"):
            assert tr["ResourceType"] == "VpnConnection", tr
            out.add((tr["ResourceId"], tr["TagKey"], tr["TagValue"]))
        return out

    assert bindings(ResourceId=[vco]) == {(vco, "env", "prod"), (vco, "marker", marker)}
    api.call("TagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco],
                              "Tag": [{"Key": "owner", "Value": "net-team"}]})
    api.call("UnTagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco], "TagKey": ["env"]})
    assert tags_of(describe(api, vco)) == {"marker": marker, "owner": "net-team"}
    assert bindings(Tag=[{"Key": "marker", "Value": marker}]) == {(vco, "marker", marker)}
    # Tags go with the connection.
    api.call("DeleteVpnConnection", {"VpnConnectionId": vco})
    wait_active(api, gw)
    assert bindings(Tag=[{"Key": "marker", "Value": marker}]) == set()
    assert bindings(ResourceId=[vco]) == set()
    expect_error(lambda: api.call("TagResources", {"ResourceType": "VpnConnection", "ResourceId": [vco],
                                                   "Tag": [{"Key": "a", "Value": "b"}]}),
                 404, "InvalidResourceId.NotFound")


def test_create_tag_rules(server, root):
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    bad = lambda tags, code: expect_error(  # noqa: E731
        lambda: create(api, gw, cgw, Tags=tags, wait=False), 400, code)
    bad([{"Key": "aliyun-key", "Value": "v"}], "InvalidParameter.TagKey")
    bad([{"Key": "k" * 65, "Value": "v"}], "InvalidParameter.TagKey")
    bad([{"Key": "k", "Value": "v" * 129}], "InvalidParameter.TagValue")
    bad([{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}], "Duplicated.TagKey")
    assert listed(api, VpnGatewayId=gw) == []
    vco = create(api, gw, cgw, Tags=[{"Key": f"k{i}", "Value": ""} for i in range(20)])["VpnConnectionId"]
    assert len(tags_of(describe(api, vco))) == 20


def test_create_more_than_20_tags(server, root):
    """CreateVpnConnection.yaml (000): at most 20 tags per call; SizeLimitExceeded.TagNum."""
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    expect_error(lambda: create(api, gw, new_cgw(api), Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(21)],
                                wait=False), 400, "SizeLimitExceeded.TagNum")
    assert listed(api, VpnGatewayId=gw) == []


def test_list_tags_through_tea(server, root):
    """The Tea SDK's DescribeVpnConnections model reads each connection's tags from
    `Tag: {"Tag": [...]}` (DescribeVpnConnections.yaml open_questions: newer versions return Tag);
    DescribeVpnConnection's model reads `Tags: {"Tag": [...]}`."""
    api = make_api("tea-acs3", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    vco = create(api, gw, new_cgw(api), Tags=[{"Key": "env", "Value": "list"}])["VpnConnectionId"]
    assert tags_of(describe(api, vco)) == {"env": "list"}
    (x,) = listed(api, VpnGatewayId=gw)
    assert x.get("Tag") == {"Tag": [{"Key": "env", "Value": "list"}]}, x


# ---------------------------------------------------------------- value rules


@pytest.mark.parametrize("name,ok", [("a", True), ("x" * 100, True), ("conn.1_a-b", True), ("x" * 101, False),
                                     ("http://conn", False), ("https://conn", False)])
def test_create_name_rule(server, root, name, ok):
    """000: 1-100 characters, not starting with http:// or https://."""
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    if ok:
        out = create(api, gw, new_cgw(api), Name=name)
        assert out["Name"] == name and describe(api, out["VpnConnectionId"])["Name"] == name
    else:
        expect_error(lambda: create(api, gw, new_cgw(api), Name=name, wait=False), 400,
                     "InvalidParameter.VpnConnectionName")


def test_lifetime_ranges(server, root):
    """IkeLifetime and IpsecLifetime: 0-86400 seconds."""
    api = make_api("classic", server.endpoint, root)
    gw = active_gateway(api)["VpnGatewayId"]
    cgw = new_cgw(api)
    for bad in (86401, -1, "abc"):
        expect_error(lambda: create(api, gw, cgw, IkeConfig=json.dumps({"IkeLifetime": bad}), wait=False), 400,
                     "InvalidParameter")
        expect_error(lambda: create(api, gw, cgw, IpsecConfig=json.dumps({"IpsecLifetime": bad}), wait=False), 400,
                     "InvalidParameter")
    vco = create(api, gw, cgw, IkeConfig=json.dumps({"Psk": "edge-psk", "IkeLifetime": 0}),
                 IpsecConfig=json.dumps({"IpsecLifetime": 86400}))["VpnConnectionId"]
    d = describe(api, vco)
    assert (d["IkeConfig"]["IkeLifetime"], d["IpsecConfig"]["IpsecLifetime"]) == (0, 86400), d


def test_dual_tunnel_rejects_single_tunnel_flags(server, root):
    """000: on a dual-tunnel gateway only ClientToken, Name, EffectImmediately, AutoConfigRoute, Tags,
    TunnelOptionsSpecification and EnableTunnelsBgp may be set besides the required parameters;
    EnableDpd and EnableNatTraversal are per tunnel there. The server refuses the other
    single-tunnel parameters with InvalidParameter; these two are no different."""
    api = make_api("classic", server.endpoint, root)
    gw = dual_gateway(api)["VpnGatewayId"]
    two = [tunnel("master", new_cgw(api)), tunnel("slave", new_cgw(api))]
    for flag in ("EnableDpd", "EnableNatTraversal"):
        e = expect_error(lambda: create(api, gw, local="10.0.0.0/24", wait=False, TunnelOptionsSpecification=two,
                                        **{flag: False}), 400, "InvalidParameter")
        assert flag in e.message, e.message
    assert listed(api, VpnGatewayId=gw) == []
