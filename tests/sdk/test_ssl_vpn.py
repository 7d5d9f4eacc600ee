"""SSL-VPN through the official Python SDKs: servers, client certificates, the server's log, the
PKI behind them (checked with the openssl CLI) and, as root, a stock OpenVPN server and client
run from nothing but what Gatehouse hands out.

Spec: shared/spec/actions/{CreateSslVpnServer,ModifySslVpnServer,DescribeSslVpnServers,
DeleteSslVpnServer,CreateSslVpnClientCert,ModifySslVpnClientCert,DescribeSslVpnClientCerts,
DeleteSslVpnClientCert,DescribeVpnSslServerLogs}.yaml. DescribeSslVpnClientCert (singular) is not
in the spec; it answers what the SDK models carry (CaCert, ClientCert, ClientKey, ClientConfig).

Where the documents are silent, the tests pin the server's choices (src/actions/ssl_vpn/):
- a gateway needs EnableSsl (400 VpnGateway.SslVpnDisabled), takes one server
  (400 Resource.QuotaFull) and as many certificates per server as its SslConnections;
- unknown resources: 404 InvalidVpnGatewayInstanceId.NotFound, InvalidSslVpnServerId.NotFound,
  InvalidSslVpnClientCertId.NotFound;
- ClientIpPool /16-/29 (IllegalParam.ClientIpPool), not overlapping LocalSubnet
  (InvalidParameter.ClientIpPoolConflict); LocalSubnet 1-5 CIDRs (IllegalParam.LocalSubnet);
  two-factor authentication needs both IDaaS ids (MissingParam.IDaaSInstanceId);
- creating, changing or deleting a server or a certificate puts the gateway in `updating`
  (VpnGateway.Configuring meanwhile); renaming a certificate changes nothing the data plane
  runs and leaves the gateway alone;
- deleting a server deletes its certificates and its log; client certificates are valid
  3 years; a deleted certificate is revoked onto the server's CRL;
- DescribeVpnSslServerLogs: From+To, From/To+MinutePeriod or MinutePeriod alone
  (MissingParam.To / MissingParam.From / MissingParam.MinutePeriod otherwise).

The OpenVPN test needs root, network namespaces, /dev/net/tun and the `openvpn` package
(scripts/test.sh installs it when it runs as root). Elsewhere it is skipped, loudly; with
GATEHOUSE_REQUIRE_DATAPLANE=1 a machine that cannot run it fails instead.
"""

from __future__ import annotations

import calendar
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

import support
from support import (
    ApiError,
    active_gateway,
    create_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    now_ms,
    wait_status,
)

VSS_ID_RE = re.compile(r"^vss-[a-z0-9]{21}$")
VSC_ID_RE = re.compile(r"^vsc-[a-z0-9]{21}$")
UNKNOWN_GW = "vpn-" + "z" * 21
UNKNOWN_VSS = "vss-" + "z" * 21
UNKNOWN_VSC = "vsc-" + "z" * 21

POOL = "192.168.100.0/24"
LOCAL = "10.0.0.0/8"
FORBIDDEN_PORTS = (22, 2222, 22222, 9000, 9001, 9002, 7505, 80, 443, 53, 68, 123, 4510, 4560, 500, 4500)
CERT_DAYS = 3 * 365
DAY_MS = 24 * 3600 * 1000

SERVER_FIELDS = {"SslVpnServerId", "RegionId", "VpnGatewayId", "Name", "ClientIpPool", "LocalSubnet", "Proto",
                 "Cipher", "Port", "Compress", "EnableMultiFactorAuth", "IDaaSInstanceId", "IDaaSRegionId",
                 "InternetIp", "Connections", "MaxConnections", "CreateTime"}
CERT_KEY_FIELDS = {"SslVpnClientCertId", "SslVpnServerId", "RegionId", "Name", "Status", "CreateTime", "EndTime"}

# "Fri Dec  4 07:58:08 2026 us=157340 <message>": OpenVPN's own log format.
LOG_LINE_RE = re.compile(
    r"^(?P<wd>Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(?P<day>[ 123]\d) (?P<hms>\d\d:\d\d:\d\d) (?P<year>\d{4}) us=(?P<us>\d{1,6}) (?P<msg>.+)$")

OPENVPN_CANDIDATES = ("/usr/sbin/openvpn", "/usr/bin/openvpn")


# ----------------------------------------------------------------------------- helpers


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=15)


def ssl_gateway(api, **over) -> dict:
    """An active gateway with SSL-VPN enabled (SslConnections 5 unless told)."""
    params = {"EnableSsl": True, "SslConnections": 5}
    params.update(over)
    g = active_gateway(api, **params)
    g.update(describe_gateway(api, g["VpnGatewayId"]))
    return g


def new_server(api, gw: str, **params) -> dict:
    """CreateSslVpnServer (POOL/LOCAL unless told), then wait for the gateway to settle."""
    body = {"VpnGatewayId": gw, "ClientIpPool": POOL, "LocalSubnet": LOCAL}
    body.update(params)
    out = api.call("CreateSslVpnServer", body)
    assert VSS_ID_RE.match(out.get("SslVpnServerId", "")), out
    wait_active(api, gw)
    return out


def new_cert(api, gw: str, vss: str, **params) -> str:
    out = api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss, **params})
    assert VSC_ID_RE.match(out.get("SslVpnClientCertId", "")), out
    wait_active(api, gw)
    return out["SslVpnClientCertId"]


def delete_cert(api, gw: str, vsc: str) -> None:
    api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": vsc})
    wait_active(api, gw)


def servers(api, **filters) -> list[dict]:
    return items(api.call("DescribeSslVpnServers", filters), "SslVpnServers", "SslVpnServer")


def server_of(api, vss: str) -> dict:
    found = servers(api, SslVpnServerId=vss)
    assert len(found) == 1, found
    return found[0]


def cert_keys(api, **filters) -> list[dict]:
    return items(api.call("DescribeSslVpnClientCerts", filters), "SslVpnClientCertKeys", "SslVpnClientCertKey")


def cert(api, vsc: str) -> dict:
    return api.call("DescribeSslVpnClientCert", {"SslVpnClientCertId": vsc})


def server_logs(api, vss: str, **params) -> dict:
    body = api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, **params})
    assert isinstance(body.get("Data"), dict), body
    logs = body["Data"].get("Logs", [])
    assert isinstance(logs, list), body
    body["_logs"] = logs
    return body


def messages(lines: list[str]) -> list[str]:
    """The messages of OpenVPN log lines (each line checked for the format)."""
    out = []
    for line in lines:
        m = LOG_LINE_RE.match(line)
        assert m, f"not an OpenVPN log line: {line!r}"
        out.append(m.group("msg"))
    return out


def line_time(line: str) -> float:
    """A log line's time (UNIX seconds, UTC)."""
    m = LOG_LINE_RE.match(line)
    assert m, line
    t = time.strptime(f"{m.group('mon')} {m.group('day').strip()} {m.group('hms')} {m.group('year')}",
                      "%b %d %H:%M:%S %Y")
    return calendar.timegm(t) + int(m.group("us")) / 1e6


def server_config(server, vss: str, account: str = "root") -> str:
    return server.cli("ssl-server-config", vss, "--account", account).stdout


def inline(conf: str, tag: str) -> str:
    """The PEM of an inline <tag>…</tag> block of an OpenVPN configuration."""
    m = re.search(rf"^<{tag}>\n(.*?)\n</{tag}>$", conf, re.S | re.M)
    assert m, f"no <{tag}> block in:\n{conf}"
    return m.group(1).strip() + "\n"


def directives(conf: str) -> list[str]:
    """The configuration's directive lines (inline blocks left out)."""
    out, block = [], None
    for line in conf.splitlines():
        if block:
            if line == f"</{block}>":
                block = None
            continue
        m = re.match(r"^<([a-z-]+)>$", line)
        if m:
            block = m.group(1)
            continue
        if line.strip() and not line.startswith(("#", ";")):
            out.append(line.strip())
    return out


def pool_line(pool: str) -> str:
    """What OpenVPN 2.x logs for `server <pool>` with `topology subnet`: its pool is the
    subnet's second address up to the last before the broadcast (a /24: .2-.254, 253 addresses;
    test_openvpn_connection checks this against the real daemon)."""
    net = ipaddress.ip_network(pool)
    return f"IFCONFIG POOL IPv4: base={net[2]} size={net.num_addresses - 3}"


def strip_request_id(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "RequestId"}


# -- openssl


def openssl(*args: Any, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["openssl", *[str(a) for a in args]]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed rc={res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


@pytest.fixture
def ossl():
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (Debian: openssl): the PKI checks need it")
    return openssl


def x509_date(text: str, field: str) -> float:
    m = re.search(rf"^{field}=(.+)$", text, re.M)
    assert m, text
    return calendar.timegm(time.strptime(m.group(1).strip(), "%b %d %H:%M:%S %Y %Z"))


def x509_serial(path: Path) -> str:
    out = openssl("x509", "-in", path, "-noout", "-serial").stdout.strip()
    assert out.startswith("serial="), out
    return out.split("=", 1)[1].upper()


def hex_serial(s: str) -> str:
    """A serial as openssl prints it, without leading zeros (what the server log prints)."""
    return s.lstrip("0") or "0"


# ----------------------------------------------------------------------------- servers (every SDK)


def test_server_lifecycle(api, kind):
    """Create with only the required parameters (the defaults), describe, modify, delete."""
    gw = ssl_gateway(api, SslConnections=10)
    g = gw["VpnGatewayId"]
    t0 = now_ms()
    out = api.call("CreateSslVpnServer", {"VpnGatewayId": g, "ClientIpPool": POOL, "LocalSubnet": LOCAL})
    t1 = now_ms()
    vss = out["SslVpnServerId"]
    assert VSS_ID_RE.match(vss), out
    assert out["Name"] == vss, "Name defaults to the server's id"
    wait_active(api, g)

    s = server_of(api, vss)
    assert SERVER_FIELDS <= set(s), f"missing {SERVER_FIELDS - set(s)}: {s}"
    assert s == {**s, "SslVpnServerId": vss, "RegionId": support.REGION, "VpnGatewayId": g, "Name": vss,
                 "ClientIpPool": POOL, "LocalSubnet": LOCAL, "Proto": "UDP", "Cipher": "AES-128-CBC",
                 "Port": 1194, "Compress": False, "EnableMultiFactorAuth": False,
                 "InternetIp": gw["InternetIp"], "Connections": 0, "MaxConnections": 10}
    assert not s["IDaaSInstanceId"] and not s["IDaaSRegionId"], s
    assert t0 - 1000 <= s["CreateTime"] <= t1 + 1000, (t0, s["CreateTime"], t1)
    # The gateway's own view agrees.
    assert describe_gateway(api, g)["SslMaxConnections"] == 10

    # Modify: the answer is the whole server (without IDaaSRegionId); omitted settings stay.
    mod = api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Name": "office.vpn-1", "Port": 1195,
                                          "Proto": "TCP", "Cipher": "AES-256-CBC", "Compress": True,
                                          "LocalSubnet": "10.0.0.0/8,172.16.0.0/16"})
    assert "IDaaSRegionId" not in mod, mod
    assert SERVER_FIELDS - {"IDaaSRegionId"} <= set(mod), f"missing {SERVER_FIELDS - set(mod)}: {mod}"
    expected = {**{k: v for k, v in s.items() if k != "IDaaSRegionId"}, "Name": "office.vpn-1", "Port": 1195,
                "Proto": "TCP", "Cipher": "AES-256-CBC", "Compress": True,
                "LocalSubnet": "10.0.0.0/8,172.16.0.0/16"}
    assert strip_request_id(mod) == expected
    wait_active(api, g)
    assert server_of(api, vss) == {**s, **expected}

    # Delete: the gateway applies it, then the server is gone.
    api.call("DeleteSslVpnServer", {"SslVpnServerId": vss})
    wait_active(api, g)
    body = api.call("DescribeSslVpnServers", {"SslVpnServerId": vss})
    assert body["TotalCount"] == 0 and items(body, "SslVpnServers", "SslVpnServer") == [], body
    assert servers(api, VpnGatewayId=g) == []
    expect_error(lambda: api.call("DeleteSslVpnServer", {"SslVpnServerId": vss}), 404,
                 "InvalidSslVpnServerId.NotFound")
    # The gateway takes a new server again.
    new_server(api, g)


def test_create_server_with_every_setting(api, kind):
    g = ssl_gateway(api)["VpnGatewayId"]
    out = new_server(api, g, Name="中文-vpn.server_1", ClientIpPool="10.200.0.0/16",
                     LocalSubnet="172.16.0.0/24, 172.16.1.0/24,192.168.0.0/16", Proto="tcp", Cipher="none",
                     Port=65535, Compress=True, EnableMultiFactorAuth=True,
                     IDaaSInstanceId="idaas-cn-hangzhou-abc", IDaaSRegionId="cn-hangzhou")
    assert out["Name"] == "中文-vpn.server_1"
    s = server_of(api, out["SslVpnServerId"])
    assert {k: s[k] for k in ("Name", "ClientIpPool", "LocalSubnet", "Proto", "Cipher", "Port", "Compress",
                              "EnableMultiFactorAuth", "IDaaSInstanceId", "IDaaSRegionId", "MaxConnections")} == {
        "Name": "中文-vpn.server_1", "ClientIpPool": "10.200.0.0/16",
        "LocalSubnet": "172.16.0.0/24,172.16.1.0/24,192.168.0.0/16", "Proto": "TCP", "Cipher": "none",
        "Port": 65535, "Compress": True, "EnableMultiFactorAuth": True, "IDaaSInstanceId": "idaas-cn-hangzhou-abc",
        "IDaaSRegionId": "cn-hangzhou", "MaxConnections": 5}


# ----------------------------------------------------------------------------- certificates (every SDK)


def test_client_cert_lifecycle(api, kind):
    gw = ssl_gateway(api)
    g = gw["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]
    t0 = now_ms()
    out = api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss, "Name": "alice.laptop"})
    t1 = now_ms()
    a = out["SslVpnClientCertId"]
    assert VSC_ID_RE.match(a) and out["Name"] == "alice.laptop", out
    wait_active(api, g)
    b = new_cert(api, g, vss)

    keys = {c["SslVpnClientCertId"]: c for c in cert_keys(api, SslVpnServerId=vss)}
    assert set(keys) == {a, b}
    for c in keys.values():
        assert set(c) >= CERT_KEY_FIELDS, c
        assert c["SslVpnServerId"] == vss and c["RegionId"] == support.REGION and c["Status"] == "normal", c
        assert c["EndTime"] - c["CreateTime"] == CERT_DAYS * DAY_MS, "client certificates are valid 3 years"
    assert keys[a]["Name"] == "alice.laptop" and keys[b]["Name"] == b, "Name defaults to the id"
    assert t0 - 1000 <= keys[a]["CreateTime"] <= t1 + 1000

    one = cert(api, a)
    assert {k: one[k] for k in CERT_KEY_FIELDS} == keys[a]
    for f in ("CaCert", "ClientCert"):
        assert one[f].startswith("-----BEGIN CERTIFICATE-----\n") and one[f].rstrip().endswith(
            "-----END CERTIFICATE-----"), one[f]
    assert re.match(r"^-----BEGIN (EC |RSA )?PRIVATE KEY-----\n", one["ClientKey"]), "a PEM private key"
    conf = one["ClientConfig"]
    d = directives(conf)
    assert "client" in d and "dev tun" in d and "proto udp" in d, conf
    assert f"remote {gw['InternetIp']} 1194" in d, conf
    assert inline(conf, "ca") == one["CaCert"].strip() + "\n"
    assert inline(conf, "cert") == one["ClientCert"].strip() + "\n"
    assert inline(conf, "key") == one["ClientKey"].strip() + "\n"
    # Both certificates come from the server's one CA; each has its own key.
    other = cert(api, b)
    assert other["CaCert"] == one["CaCert"]
    assert other["ClientCert"] != one["ClientCert"] and other["ClientKey"] != one["ClientKey"]

    # Filters.
    assert [c["SslVpnClientCertId"] for c in cert_keys(api, SslVpnClientCertId=a)] == [a]
    assert [c["SslVpnClientCertId"] for c in cert_keys(api, Name="alice.laptop", SslVpnServerId=vss)] == [a]
    assert cert_keys(api, SslVpnServerId=vss, Name="nobody") == []

    # Rename: only the name changes.
    mod = api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": a, "Name": "bob-phone"})
    assert strip_request_id(mod) == {"SslVpnClientCertId": a, "Name": "bob-phone"}
    renamed = cert(api, a)
    assert renamed["Name"] == "bob-phone"
    assert {k: renamed[k] for k in ("ClientCert", "ClientKey", "CreateTime", "EndTime")} == \
        {k: one[k] for k in ("ClientCert", "ClientKey", "CreateTime", "EndTime")}

    # Delete: gone from the list and from the singular describe.
    delete_cert(api, g, a)
    assert [c["SslVpnClientCertId"] for c in cert_keys(api, SslVpnServerId=vss)] == [b]
    expect_error(lambda: cert(api, a), 404, "InvalidSslVpnClientCertId.NotFound")
    expect_error(lambda: api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": a}), 404,
                 "InvalidSslVpnClientCertId.NotFound")


def test_client_config_follows_the_server(api, kind, server):
    """ClientConfig (and the server's own configuration) is rendered from the server's current
    settings: fetched again after ModifySslVpnServer, it follows the change."""
    gw = ssl_gateway(api)
    g, ip = gw["VpnGatewayId"], gw["InternetIp"]
    vss = new_server(api, g)["SslVpnServerId"]
    vsc = new_cert(api, g, vss)
    before = directives(cert(api, vsc)["ClientConfig"])
    assert "proto udp" in before and f"remote {ip} 1194" in before and "cipher AES-128-CBC" in before, before
    assert not any(d.startswith("comp-lzo") for d in before), before
    srv = directives(server_config(server, vss))
    assert "port 1194" in srv and "proto udp" in srv and "cipher AES-128-CBC" in srv, srv
    assert "server 192.168.100.0 255.255.255.0" in srv and 'push "route 10.0.0.0 255.0.0.0"' in srv, srv
    assert "max-clients 5" in srv, srv

    api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1443, "Proto": "TCP", "Cipher": "AES-256-CBC",
                                    "Compress": True})
    wait_active(api, g)
    after = directives(cert(api, vsc)["ClientConfig"])
    assert "proto tcp-client" in after and f"remote {ip} 1443" in after, after
    assert "cipher AES-256-CBC" in after and "comp-lzo" in after, after
    assert "proto udp" not in after and f"remote {ip} 1194" not in after and "cipher AES-128-CBC" not in after
    srv = directives(server_config(server, vss))
    assert "port 1443" in srv and "proto tcp-server" in srv and "cipher AES-256-CBC" in srv and "comp-lzo" in srv

    api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Proto": "UDP", "Compress": False, "Cipher": "AES-192-CBC"})
    wait_active(api, g)
    again = directives(cert(api, vsc)["ClientConfig"])
    assert "proto udp" in again and f"remote {ip} 1443" in again and "cipher AES-192-CBC" in again, again
    assert not any(d.startswith("comp-lzo") for d in again), again


# ----------------------------------------------------------------------------- the log (every SDK)


def test_server_logs(api, kind):
    gw = ssl_gateway(api)
    g, ip = gw["VpnGatewayId"], gw["InternetIp"]
    t0 = time.time()
    vss = new_server(api, g)["SslVpnServerId"]
    a = new_cert(api, g, vss)
    b = new_cert(api, g, vss)
    delete_cert(api, g, a)
    api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1195})
    wait_active(api, g)
    t1 = time.time()

    body = server_logs(api, vss, MinutePeriod=10)
    lines = body["_logs"]
    assert body["Count"] == 13 and len(lines) == 10 and body["IsCompleted"] is True, body
    assert body["PageNumber"] == 1 and body["PageSize"] == 10, body
    # Default page size 10: ask for everything.
    full = server_logs(api, vss, MinutePeriod=10, PageSize=50)
    lines = full["_logs"]
    assert full["Count"] == len(lines) == 13, lines
    assert lines[:10] == body["_logs"]
    msgs = messages(lines)
    serial = {}
    for vsc in (a, b):
        issued = [m for m in msgs if m.startswith(f"{vsc} certificate issued, serial ")]
        assert len(issued) == 1, msgs
        serial[vsc] = issued[0].rsplit(" ", 1)[1]
        assert re.fullmatch(r"[0-9A-F]+", serial[vsc]), issued
    pool = re.compile(r"^IFCONFIG POOL IPv4: base=192\.168\.100\.2 size=\d+$")
    expected: list[Callable[[str], bool]] = [
        lambda m: m == f"UDPv4 link local (bound): [AF_INET]{ip}:1194",
        lambda m: bool(pool.match(m)),
        lambda m: m.startswith("Data Channel: cipher 'AES-128-CBC'"),
        lambda m: m == "Initialization Sequence Completed",
        lambda m: m == f"{a} certificate issued, serial {serial[a]}",
        lambda m: m == f"{b} certificate issued, serial {serial[b]}",
        lambda m: m.startswith("CRL: loaded 1 CRLs"),
        lambda m: m.startswith(f"{a} certificate revoked, serial {serial[a]}"),
        lambda m: m == "SIGHUP[hard,] received, process restarting",
        lambda m: m == f"UDPv4 link local (bound): [AF_INET]{ip}:1195",
        lambda m: bool(pool.match(m)),
        lambda m: m.startswith("Data Channel: cipher 'AES-128-CBC'"),
        lambda m: m == "Initialization Sequence Completed",
    ]
    for i, (check, m) in enumerate(zip(expected, msgs)):
        assert check(m), f"line {i} is unexpected: {m!r}\nall:\n" + "\n".join(lines)
    times = [line_time(line) for line in lines]
    assert times == sorted(times), lines
    assert t0 - 2 <= times[0] and times[-1] <= t1 + 2, (t0, times, t1)

    # One certificate's lines.
    only_a = server_logs(api, vss, MinutePeriod=10, SslVpnClientCertId=a)
    assert only_a["Count"] == 2 and messages(only_a["_logs"]) == [msgs[4], msgs[7]], only_a
    only_b = server_logs(api, vss, MinutePeriod=10, SslVpnClientCertId=b)
    assert only_b["Count"] == 1 and messages(only_b["_logs"]) == [msgs[5]], only_b
    assert server_logs(api, vss, MinutePeriod=10, SslVpnClientCertId=UNKNOWN_VSC)["Count"] == 0

    # Pages of 2: Count is always the total, and the pages add up to the whole log.
    paged: list[str] = []
    for page in range(1, 9):
        p = server_logs(api, vss, MinutePeriod=10, PageSize=2, PageNumber=page)
        assert p["Count"] == 13 and p["PageNumber"] == page and p["PageSize"] == 2, p
        assert len(p["_logs"]) == (2 if page <= 6 else 1 if page == 7 else 0), p
        paged += p["_logs"]
    assert paged == lines

    # Windows: From/To, From+MinutePeriod, To+MinutePeriod; the past holds nothing.
    now = int(time.time())
    assert server_logs(api, vss, From=int(t0) - 5, To=now + 5, PageSize=50)["_logs"] == lines
    assert server_logs(api, vss, From=int(t0) - 5, MinutePeriod=10, PageSize=50)["_logs"] == lines
    assert server_logs(api, vss, To=now + 5, MinutePeriod=10, PageSize=50)["_logs"] == lines
    past = server_logs(api, vss, From=now - 7200, To=now - 3600)
    assert past["Count"] == 0 and past["_logs"] == [], past
    past = server_logs(api, vss, To=now - 3600, MinutePeriod=30)
    assert past["Count"] == 0 and past["_logs"] == [], past


def test_log_pool_line_is_openvpns(server, root):
    """The simulated server logs its address pool as OpenVPN does for the same configuration
    (`server <net> <mask>`, `topology subnet`): base = second address, size = all but the
    network, the server's own address and the broadcast address."""
    api = make_api("classic", server.endpoint, root)
    for pool in ("192.168.100.0/24", "172.31.8.0/29"):
        g = ssl_gateway(api)["VpnGatewayId"]
        vss = new_server(api, g, ClientIpPool=pool)["SslVpnServerId"]
        msgs = messages(server_logs(api, vss, MinutePeriod=10)["_logs"])
        got = [m for m in msgs if m.startswith("IFCONFIG POOL IPv4:")]
        assert got == [pool_line(pool)], f"{pool}: {got}"


# ----------------------------------------------------------------------------- error paths


def test_create_server_errors(server, root):
    api = make_api("classic", server.endpoint, root)
    raw = make_api("raw", server.endpoint, root)
    plain = active_gateway(api)["VpnGatewayId"]   # SSL-VPN not enabled
    g = ssl_gateway(api)["VpnGatewayId"]
    base = {"VpnGatewayId": g, "ClientIpPool": POOL, "LocalSubnet": LOCAL}

    def create(**over):
        return api.call("CreateSslVpnServer", {**base, **over})

    expect_error(lambda: create(VpnGatewayId=plain), 400, "VpnGateway.SslVpnDisabled")
    expect_error(lambda: create(VpnGatewayId=UNKNOWN_GW), 404, "InvalidVpnGatewayInstanceId.NotFound")
    for missing in ("VpnGatewayId", "ClientIpPool", "LocalSubnet"):
        params = {k: v for k, v in base.items() if k != missing}
        expect_error(lambda: raw.call("CreateSslVpnServer", params), 400, f"Missing{missing}")
    for port in (*FORBIDDEN_PORTS, 0, 65536, -1, "abc"):
        expect_error(lambda: raw.call("CreateSslVpnServer", {**base, "Port": port}), 400, "InvalidParameter")
    for pool in ("192.168.0.0/15", "10.0.0.0/8", "192.168.100.0/30", "192.168.100.1/32", "192.168.100.5/24",
                 "not-a-cidr", "192.168.300.0/24"):
        expect_error(lambda: create(ClientIpPool=pool), 400, "IllegalParam.ClientIpPool")
    for pool, local in (("10.1.0.0/16", "10.0.0.0/8"), ("192.168.0.0/16", "192.168.100.0/24"),
                        ("172.16.5.0/24", "10.0.0.0/8,172.16.0.0/16"), ("192.168.100.0/24", "192.168.100.0/24")):
        expect_error(lambda: create(ClientIpPool=pool, LocalSubnet=local), 400,
                     "InvalidParameter.ClientIpPoolConflict")
    six = ",".join(f"10.{i}.0.0/16" for i in range(6))
    for local in (six, "10.0.0.0/33", "10.0.0.1/8", "nonsense", "10.0.0.0/8,"):
        expect_error(lambda: create(LocalSubnet=local), 400, "IllegalParam.LocalSubnet")
    for name in ("a", "1abc", "_abc", ".abc", "-abc", "has space", "x" * 129, "http://example", "a/b", "ab@c"):
        expect_error(lambda: create(Name=name), 400, "InvalidName")
    expect_error(lambda: create(EnableMultiFactorAuth=True), 400, "MissingParam.IDaaSInstanceId")
    expect_error(lambda: create(EnableMultiFactorAuth=True, IDaaSInstanceId="idaas-x"), 400,
                 "MissingParam.IDaaSInstanceId")
    expect_error(lambda: create(EnableMultiFactorAuth=True, IDaaSRegionId="cn-hangzhou"), 400,
                 "MissingParam.IDaaSInstanceId")
    expect_error(lambda: raw.call("CreateSslVpnServer", {**base, "Proto": "SCTP"}), 400, "InvalidParameter")
    expect_error(lambda: raw.call("CreateSslVpnServer", {**base, "Cipher": "AES-512-CBC"}), 400,
                 "InvalidParameter")
    expect_error(lambda: raw.call("CreateSslVpnServer", {**base, "Compress": "maybe"}), 400, "InvalidParameter")
    # Nothing was created by any of that, and the gateway never left `active`.
    assert servers(api, VpnGatewayId=g) == [] and servers(api, VpnGatewayId=plain) == []
    assert describe_gateway(api, g)["Status"] == "active"

    # The extremes that are allowed: a /16 and a /29 pool, 5 local subnets, a 128-character
    # name, ports next to forbidden ones.
    first = new_server(api, g, ClientIpPool="172.31.0.0/16", Name="N" + "a" * 127, Port=1,
                       LocalSubnet=",".join(f"10.{i}.0.0/16" for i in range(5)))
    other = ssl_gateway(api)["VpnGatewayId"]
    new_server(api, other, ClientIpPool="192.168.100.8/29", Port=4501)
    assert server_of(api, first["SslVpnServerId"])["Name"] == "N" + "a" * 127

    # One server per gateway.
    expect_error(lambda: create(), 400, "Resource.QuotaFull")
    assert len(servers(api, VpnGatewayId=g)) == 1


def test_modify_server_errors(server, root):
    api = make_api("classic", server.endpoint, root)
    raw = make_api("raw", server.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]
    vss = new_server(api, g, LocalSubnet="10.0.0.0/8,172.16.0.0/16")["SslVpnServerId"]
    before = server_of(api, vss)

    def modify(**over):
        return api.call("ModifySslVpnServer", {"SslVpnServerId": vss, **over})

    expect_error(lambda: api.call("ModifySslVpnServer", {"SslVpnServerId": UNKNOWN_VSS, "Port": 1195}), 404,
                 "InvalidSslVpnServerId.NotFound")
    expect_error(lambda: raw.call("ModifySslVpnServer", {"Port": 1195}), 400, "MissingSslVpnServerId")
    for port in FORBIDDEN_PORTS + (0, 65536):
        expect_error(lambda: raw.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": port}), 400,
                     "InvalidParameter")
    # A new pool against the kept LocalSubnet, a new LocalSubnet against the kept pool.
    expect_error(lambda: modify(ClientIpPool="172.16.8.0/24"), 400, "InvalidParameter.ClientIpPoolConflict")
    expect_error(lambda: modify(LocalSubnet="192.168.0.0/16"), 400, "InvalidParameter.ClientIpPoolConflict")
    expect_error(lambda: modify(ClientIpPool="192.168.0.0/30"), 400, "IllegalParam.ClientIpPool")
    expect_error(lambda: modify(LocalSubnet=",".join(f"10.{i}.0.0/16" for i in range(6))), 400,
                 "IllegalParam.LocalSubnet")
    expect_error(lambda: modify(Name="9lives"), 400, "InvalidName")
    expect_error(lambda: modify(EnableMultiFactorAuth=True), 400, "MissingParam.IDaaSInstanceId")
    expect_error(lambda: modify(EnableMultiFactorAuth=True, IDaaSRegionId="cn-hangzhou"), 400,
                 "MissingParam.IDaaSInstanceId")
    expect_error(lambda: raw.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Cipher": "DES"}), 400,
                 "InvalidParameter")
    # Nothing changed, and nothing was handed to the gateway.
    assert server_of(api, vss) == before
    assert describe_gateway(api, g)["Status"] == "active"

    # A modification that changes nothing answers the server and leaves the gateway alone.
    same = modify(Port=before["Port"], Proto=before["Proto"])
    assert strip_request_id(same) == {k: v for k, v in before.items() if k != "IDaaSRegionId"}
    assert describe_gateway(api, g)["Status"] == "active"

    # Both IDaaS ids: two-factor authentication is on; Modify's answer leaves IDaaSRegionId out.
    mod = modify(EnableMultiFactorAuth=True, IDaaSInstanceId="idaas-cn-hangzhou-1", IDaaSRegionId="cn-hangzhou")
    assert mod["EnableMultiFactorAuth"] is True and mod["IDaaSInstanceId"] == "idaas-cn-hangzhou-1", mod
    assert "IDaaSRegionId" not in mod, mod
    wait_active(api, g)
    s = server_of(api, vss)
    assert (s["EnableMultiFactorAuth"], s["IDaaSInstanceId"], s["IDaaSRegionId"]) == \
        (True, "idaas-cn-hangzhou-1", "cn-hangzhou")
    # The kept IDaaS ids satisfy a later change.
    modify(Name="still-2fa")
    wait_active(api, g)
    assert server_of(api, vss)["EnableMultiFactorAuth"] is True


def test_client_cert_errors_and_quota(server, root):
    api = make_api("classic", server.endpoint, root)
    raw = make_api("raw", server.endpoint, root)
    g = ssl_gateway(api, SslConnections=5)["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]

    expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": UNKNOWN_VSS}), 404,
                 "InvalidSslVpnServerId.NotFound")
    expect_error(lambda: raw.call("CreateSslVpnClientCert", {}), 400, "MissingSslVpnServerId")
    for name in ("a", "1abc", ".abc", "a b", "y" * 129):
        expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss, "Name": name}), 400,
                     "InvalidName")
    for action in ("ModifySslVpnClientCert", "DescribeSslVpnClientCert", "DeleteSslVpnClientCert"):
        params = {"SslVpnClientCertId": UNKNOWN_VSC}
        if action == "ModifySslVpnClientCert":
            params["Name"] = "valid-name"
        expect_error(lambda: api.call(action, params), 404, "InvalidSslVpnClientCertId.NotFound")
        expect_error(lambda: raw.call(action, {}), 400, "MissingSslVpnClientCertId")
    assert cert_keys(api, SslVpnServerId=vss) == []

    # As many certificates as the gateway takes clients (SslConnections 5).
    ids = [new_cert(api, g, vss, Name=f"user{i}") for i in range(5)]
    expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss}), 400, "Resource.QuotaFull")
    assert len(cert_keys(api, SslVpnServerId=vss)) == 5
    expect_error(lambda: api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": ids[0], "Name": "x"}), 400,
                 "InvalidName")
    assert cert(api, ids[0])["Name"] == "user0"
    # A deleted certificate frees its place.
    delete_cert(api, g, ids[0])
    new_cert(api, g, vss)
    expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss}), 400, "Resource.QuotaFull")

    # Paging of the list (PageSize 1-50).
    page1 = api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": vss, "PageSize": 2, "PageNumber": 1})
    page3 = api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": vss, "PageSize": 2, "PageNumber": 3})
    assert page1["TotalCount"] == page3["TotalCount"] == 5
    assert len(items(page1, "SslVpnClientCertKeys", "SslVpnClientCertKey")) == 2
    assert len(items(page3, "SslVpnClientCertKeys", "SslVpnClientCertKey")) == 1
    all_ids = []
    for n in (1, 2, 3):
        all_ids += [c["SslVpnClientCertId"] for c in items(
            api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": vss, "PageSize": 2, "PageNumber": n}),
            "SslVpnClientCertKeys", "SslVpnClientCertKey")]
    assert sorted(all_ids) == sorted(c["SslVpnClientCertId"] for c in cert_keys(api, SslVpnServerId=vss))
    assert len(set(all_ids)) == 5
    api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": vss, "PageSize": 50})
    for bad in ({"PageSize": 51}, {"PageSize": 0}, {"PageNumber": 0}):
        expect_error(lambda: api.call("DescribeSslVpnClientCerts", {"SslVpnServerId": vss, **bad}), 400,
                     "InvalidParameter")


def test_log_errors(server, root):
    api = make_api("classic", server.endpoint, root)
    raw = make_api("raw", server.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]
    now = int(time.time())

    def logs(**params):
        return api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, **params})

    expect_error(lambda: logs(), 400, "MissingParam.MinutePeriod")
    expect_error(lambda: logs(From=now - 60), 400, "MissingParam.To")
    expect_error(lambda: logs(To=now), 400, "MissingParam.From")
    expect_error(lambda: raw.call("DescribeVpnSslServerLogs", {"MinutePeriod": 10}), 400, "MissingVpnSslServerId")
    # The other SSL-VPN actions' parameter name is not this one's.
    expect_error(lambda: raw.call("DescribeVpnSslServerLogs", {"SslVpnServerId": vss, "MinutePeriod": 10}), 400,
                 "MissingVpnSslServerId")
    expect_error(lambda: api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": UNKNOWN_VSS, "MinutePeriod": 10}),
                 404, "InvalidSslVpnServerId.NotFound")
    expect_error(lambda: logs(MinutePeriod=0), 400, "InvalidParameter")
    expect_error(lambda: logs(From=now, To=now - 60), 400, "InvalidParameter")
    expect_error(lambda: logs(MinutePeriod=10, PageSize=51), 400, "InvalidParameter")
    expect_error(lambda: raw.call("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, "From": "yesterday",
                                                               "To": now}), 400, "InvalidParameter")
    assert logs(MinutePeriod=10, PageSize=50)["Count"] == 4


def test_changes_wait_for_the_gateway(server_factory, root):
    """Each server or certificate change puts the gateway in `updating`; meanwhile the next
    change is refused (VpnGateway.Configuring). Renaming a certificate is no such change."""
    srv = server_factory(["--transition-delay-ms", "500"])
    api = make_api("classic", srv.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]

    def refused(action, params):
        expect_error(lambda: api.call(action, params), 400, "VpnGateway.Configuring")

    vss = api.call("CreateSslVpnServer", {"VpnGatewayId": g, "ClientIpPool": POOL,
                                          "LocalSubnet": LOCAL})["SslVpnServerId"]
    assert describe_gateway(api, g)["Status"] == "updating"
    refused("CreateSslVpnClientCert", {"SslVpnServerId": vss})
    refused("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1195})
    refused("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1194})   # no change: still not now
    refused("DeleteSslVpnServer", {"SslVpnServerId": vss})
    # Reading is fine meanwhile.
    assert server_of(api, vss)["Port"] == 1194
    wait_active(api, g)

    a = api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss})["SslVpnClientCertId"]
    assert describe_gateway(api, g)["Status"] == "updating"
    refused("CreateSslVpnClientCert", {"SslVpnServerId": vss})
    refused("DeleteSslVpnClientCert", {"SslVpnClientCertId": a})
    # A rename touches nothing the gateway runs.
    api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": a, "Name": "renamed"})
    assert cert(api, a)["Name"] == "renamed"
    wait_active(api, g)
    api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": a, "Name": "renamed-again"})
    assert describe_gateway(api, g)["Status"] == "active"

    api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1195})
    assert describe_gateway(api, g)["Status"] == "updating"
    refused("DeleteSslVpnClientCert", {"SslVpnClientCertId": a})
    wait_active(api, g)

    api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": a})
    assert describe_gateway(api, g)["Status"] == "updating"
    refused("DeleteSslVpnServer", {"SslVpnServerId": vss})
    wait_active(api, g)

    api.call("DeleteSslVpnServer", {"SslVpnServerId": vss})
    assert describe_gateway(api, g)["Status"] == "updating"
    wait_active(api, g)
    assert servers(api, VpnGatewayId=g) == []


def test_describe_servers_paging_and_filters(server, new_account):
    creds = new_account()
    api = make_api("tea-acs3", server.endpoint, creds)
    gws = [create_gateway(api, EnableSsl=True, SslConnections=s)["VpnGatewayId"] for s in (5, 10, 20)]
    for g in gws:
        wait_active(api, g)
    ids = []
    for i, g in enumerate(gws):
        ids.append(api.call("CreateSslVpnServer", {"VpnGatewayId": g, "ClientIpPool": f"192.168.{i}.0/24",
                                                   "LocalSubnet": LOCAL, "Name": f"srv{i}"})["SslVpnServerId"])
    for g in gws:
        wait_active(api, g)

    body = api.call("DescribeSslVpnServers", {})
    assert body["TotalCount"] == 3 and body["PageNumber"] == 1 and body["PageSize"] == 10, body
    listed = items(body, "SslVpnServers", "SslVpnServer")
    assert sorted(s["SslVpnServerId"] for s in listed) == sorted(ids)
    assert {s["SslVpnServerId"]: s["MaxConnections"] for s in listed} == dict(zip(ids, (5, 10, 20)))
    p1 = api.call("DescribeSslVpnServers", {"PageSize": 2, "PageNumber": 1})
    p2 = api.call("DescribeSslVpnServers", {"PageSize": 2, "PageNumber": 2})
    p3 = api.call("DescribeSslVpnServers", {"PageSize": 2, "PageNumber": 3})
    assert (p1["TotalCount"], p2["TotalCount"], p3["TotalCount"]) == (3, 3, 3)
    got = [s["SslVpnServerId"] for p in (p1, p2) for s in items(p, "SslVpnServers", "SslVpnServer")]
    assert sorted(got) == sorted(ids) and len(items(p1, "SslVpnServers", "SslVpnServer")) == 2
    assert items(p3, "SslVpnServers", "SslVpnServer") == []
    assert api.call("DescribeSslVpnServers", {"PageSize": 50})["TotalCount"] == 3
    for bad in ({"PageSize": 51}, {"PageSize": 0}, {"PageNumber": 0}):
        expect_error(lambda: api.call("DescribeSslVpnServers", bad), 400, "InvalidParameter")

    assert [s["SslVpnServerId"] for s in servers(api, VpnGatewayId=gws[1])] == [ids[1]]
    assert [s["SslVpnServerId"] for s in servers(api, SslVpnServerId=ids[2])] == [ids[2]]
    assert [s["SslVpnServerId"] for s in servers(api, Name="srv0")] == [ids[0]]
    assert servers(api, Name="srv") == [], "Name is an exact match"
    assert servers(api, SslVpnServerId=UNKNOWN_VSS) == []
    assert servers(api, VpnGatewayId=gws[0], SslVpnServerId=ids[1]) == [], "filters combine"
    # Another region holds none of them.
    assert servers(make_api("tea-acs3", server.endpoint, creds, region="cn-shanghai")) == []


def test_xml_answers(server, root, raw):
    api = make_api("classic", server.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]
    r = raw.rpc("DescribeSslVpnServers", {"SslVpnServerId": vss}, fmt="XML")
    assert r.status == 200, r
    root_el = r.xml()
    assert root_el.tag == "DescribeSslVpnServersResponse"
    entries = root_el.findall("./SslVpnServers/SslVpnServer")
    assert len(entries) == 1 and entries[0].findtext("SslVpnServerId") == vss
    assert entries[0].findtext("Port") == "1194" and entries[0].findtext("Compress") == "false"
    r = raw.rpc("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, "MinutePeriod": 10}, fmt="XML")
    assert r.status == 200, r
    logs = [e.text for e in r.xml().findall("./Data/Logs")]
    assert r.xml().findtext("Count") == str(len(logs)) == "4", r
    assert messages(logs)[-1] == "Initialization Sequence Completed"


# ----------------------------------------------------------------------------- cascades and isolation


def test_deleting_a_server_deletes_its_certificates(server, root):
    api = make_api("classic", server.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]
    certs = [new_cert(api, g, vss) for _ in range(2)]
    api.call("DeleteSslVpnServer", {"SslVpnServerId": vss})
    wait_active(api, g)
    assert cert_keys(api, SslVpnServerId=vss) == []
    for c in certs:
        assert cert_keys(api, SslVpnClientCertId=c) == []
        expect_error(lambda: cert(api, c), 404, "InvalidSslVpnClientCertId.NotFound")
        expect_error(lambda: api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": c}), 404,
                     "InvalidSslVpnClientCertId.NotFound")
    expect_error(lambda: api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, "MinutePeriod": 10}), 404,
                 "InvalidSslVpnServerId.NotFound")
    expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss}), 404,
                 "InvalidSslVpnServerId.NotFound")
    with pytest.raises(AssertionError):
        server_config(server, vss)
    # A new server on the gateway starts afresh: a new CA, no certificates, a new log.
    vss2 = new_server(api, g)["SslVpnServerId"]
    assert vss2 != vss and cert_keys(api, SslVpnServerId=vss2) == []
    assert server_logs(api, vss2, MinutePeriod=10)["Count"] == 4


def test_deleting_the_gateway_leaves_no_orphans(server, new_account):
    """A gateway with an SSL-VPN server and certificates is deleted (or the deletion is refused
    until the server is gone). Either way, once the gateway is gone no server or certificate of
    it remains, and the account's lists keep working. (In a fresh account: if this fails, the
    orphan breaks only that account's listings.)"""
    api = make_api("classic", server.endpoint, new_account())
    g = ssl_gateway(api)["VpnGatewayId"]
    vss = new_server(api, g)["SslVpnServerId"]
    vsc = new_cert(api, g, vss)
    try:
        api.call("DeleteVpnGateway", {"VpnGatewayId": g})
    except ApiError as e:
        # Refusing is a fine answer too, as long as it says why and the server can then go.
        assert e.status == 400, e
        api.call("DeleteSslVpnServer", {"SslVpnServerId": vss})
        wait_active(api, g)
        api.call("DeleteVpnGateway", {"VpnGatewayId": g})
    support.wait_gone(api, g, timeout=15)
    body = api.call("DescribeSslVpnServers", {})
    assert body["TotalCount"] == 0 and items(body, "SslVpnServers", "SslVpnServer") == [], body
    assert cert_keys(api) == []
    expect_error(lambda: cert(api, vsc), 404, "InvalidSslVpnClientCertId.NotFound")


def test_other_accounts_see_nothing(server, root, new_account):
    mine = make_api("classic", server.endpoint, root)
    creds = new_account()
    theirs = make_api("tea-acs3", server.endpoint, creds)
    g = ssl_gateway(mine)["VpnGatewayId"]
    vss = new_server(mine, g)["SslVpnServerId"]
    vsc = new_cert(mine, g, vss)

    # Another account: nothing to see, nothing to touch.
    assert servers(theirs) == [] and servers(theirs, SslVpnServerId=vss) == []
    assert servers(theirs, VpnGatewayId=g) == []
    assert cert_keys(theirs) == [] and cert_keys(theirs, SslVpnServerId=vss) == []
    assert cert_keys(theirs, SslVpnClientCertId=vsc) == []
    nf_vss, nf_vsc = (404, "InvalidSslVpnServerId.NotFound"), (404, "InvalidSslVpnClientCertId.NotFound")
    for api in (theirs, make_api("classic", server.endpoint, root, region="cn-shanghai")):
        expect_error(lambda: api.call("CreateSslVpnServer", {"VpnGatewayId": g, "ClientIpPool": "10.9.0.0/24",
                                                             "LocalSubnet": "172.20.0.0/16"}),
                     404, "InvalidVpnGatewayInstanceId.NotFound")
        expect_error(lambda: api.call("ModifySslVpnServer", {"SslVpnServerId": vss, "Port": 1195}), *nf_vss)
        expect_error(lambda: api.call("DeleteSslVpnServer", {"SslVpnServerId": vss}), *nf_vss)
        expect_error(lambda: api.call("CreateSslVpnClientCert", {"SslVpnServerId": vss}), *nf_vss)
        expect_error(lambda: api.call("DescribeVpnSslServerLogs", {"VpnSslServerId": vss, "MinutePeriod": 10}),
                     *nf_vss)
        expect_error(lambda: cert(api, vsc), *nf_vsc)
        expect_error(lambda: api.call("ModifySslVpnClientCert", {"SslVpnClientCertId": vsc, "Name": "mine"}),
                     *nf_vsc)
        expect_error(lambda: api.call("DeleteSslVpnClientCert", {"SslVpnClientCertId": vsc}), *nf_vsc)
    with pytest.raises(AssertionError):
        server_config(server, vss, account=creds.account)

    # The owner's resources are untouched.
    s = server_of(mine, vss)
    assert s["Port"] == 1194 and s["Name"] == vss
    assert [c["SslVpnClientCertId"] for c in cert_keys(mine, SslVpnServerId=vss)] == [vsc]
    assert cert(mine, vsc)["Name"] == vsc
    assert describe_gateway(mine, g)["Status"] == "active"


def test_client_token(server, root):
    api = make_api("classic", server.endpoint, root)
    g = ssl_gateway(api)["VpnGatewayId"]
    params = {"VpnGatewayId": g, "ClientIpPool": POOL, "LocalSubnet": LOCAL,
              "ClientToken": "vss-" + support.rand_suffix(12)}
    first = api.call("CreateSslVpnServer", params)
    # A retry (even while the gateway is still updating) is the same request.
    again = api.call("CreateSslVpnServer", params)
    assert strip_request_id(first) == strip_request_id(again)
    expect_error(lambda: api.call("CreateSslVpnServer", dict(params, Port=1195)), 400,
                 "IdempotentParameterMismatch")
    wait_active(api, g)
    assert len(servers(api, VpnGatewayId=g)) == 1
    vss = first["SslVpnServerId"]
    cparams = {"SslVpnServerId": vss, "ClientToken": "vsc-" + support.rand_suffix(12)}
    c1 = api.call("CreateSslVpnClientCert", cparams)
    c2 = api.call("CreateSslVpnClientCert", cparams)
    assert strip_request_id(c1) == strip_request_id(c2)
    wait_active(api, g)
    assert [c["SslVpnClientCertId"] for c in cert_keys(api, SslVpnServerId=vss)] == [c1["SslVpnClientCertId"]]


# ----------------------------------------------------------------------------- the PKI (openssl)


class Pki:
    """A server with two certificates, their material written to files."""

    def __init__(self, api, server, tmp: Path):
        self.api, self.server, self.tmp = api, server, tmp
        gw = ssl_gateway(api)
        self.gw = gw["VpnGatewayId"]
        self.vss = new_server(api, self.gw)["SslVpnServerId"]
        self.a = new_cert(api, self.gw, self.vss, Name="alice")
        self.b = new_cert(api, self.gw, self.vss, Name="bob")
        self.certs = {c: cert(api, c) for c in (self.a, self.b)}
        self.ca = self.write("ca.pem", self.certs[self.a]["CaCert"])
        self.files = {}
        for c, d in self.certs.items():
            self.files[c] = (self.write(f"{c}.crt", d["ClientCert"]), self.write(f"{c}.key", d["ClientKey"]))
        self.refresh_server()

    def write(self, name: str, text: str) -> Path:
        p = self.tmp / name
        p.write_text(text if text.endswith("\n") else text + "\n")
        return p

    def refresh_server(self) -> None:
        self.conf = server_config(self.server, self.vss)
        self.server_cert = self.write("server.crt", inline(self.conf, "cert"))
        self.server_key = self.write("server.key", inline(self.conf, "key"))
        self.crl = self.write("crl.pem", inline(self.conf, "crl-verify"))


@pytest.fixture
def pki(server, root, tmp_path, ossl) -> Pki:
    return Pki(make_api("classic", server.endpoint, root), server, tmp_path)


def test_client_certificates_chain_to_the_servers_ca(pki, ossl):
    ca_text = ossl("x509", "-in", pki.ca, "-noout", "-subject", "-ext", "basicConstraints,keyUsage").stdout
    assert re.search(r"CA:TRUE", ca_text), ca_text
    assert "Certificate Sign" in ca_text and "CRL Sign" in ca_text, ca_text
    assert pki.vss in ca_text, "the CA names its server"
    for vsc, (crt, key) in pki.files.items():
        res = ossl("verify", "-CAfile", pki.ca, crt)
        assert res.stdout.strip() == f"{crt}: OK", res.stdout
        text = ossl("x509", "-in", crt, "-noout", "-subject", "-ext", "extendedKeyUsage", "-dates", "-serial").stdout
        assert re.search(rf"CN\s*=\s*{vsc}\s*$", text, re.M), f"CN must be the certificate's id:\n{text}"
        assert "TLS Web Client Authentication" in text and "TLS Web Server Authentication" not in text, text
        start, end = x509_date(text, "notBefore"), x509_date(text, "notAfter")
        keys = cert_keys(pki.api, SslVpnClientCertId=vsc)[0]
        assert abs(end - keys["EndTime"] / 1000) <= 1, "notAfter is the API's EndTime"
        assert abs((end - start) - CERT_DAYS * 86400) <= 600, "valid ~3 years"
        assert start <= time.time() <= end
        # The key is the certificate's.
        pub_key = ossl("pkey", "-in", key, "-pubout").stdout
        pub_cert = ossl("x509", "-in", crt, "-noout", "-pubkey").stdout
        assert pub_key.strip() == pub_cert.strip() and "BEGIN PUBLIC KEY" in pub_key
        # The log names the serial the certificate carries.
        serial = x509_serial(crt)
        msgs = messages(server_logs(pki.api, pki.vss, MinutePeriod=10, SslVpnClientCertId=vsc)["_logs"])
        assert msgs == [f"{vsc} certificate issued, serial {hex_serial(serial)}"], msgs
    # The server's own certificate: serverAuth, from the same CA, with its key.
    res = ossl("verify", "-CAfile", pki.ca, pki.server_cert)
    assert res.stdout.strip().endswith(": OK"), res.stdout
    text = ossl("x509", "-in", pki.server_cert, "-noout", "-subject", "-ext", "extendedKeyUsage").stdout
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" not in text, text
    assert pki.vss in text
    assert ossl("pkey", "-in", pki.server_key, "-pubout").stdout.strip() == \
        ossl("x509", "-in", pki.server_cert, "-noout", "-pubkey").stdout.strip()
    # The server's configuration carries the same CA the clients get.
    assert inline(pki.conf, "ca") == pki.ca.read_text()
    # The initial CRL is the CA's, and revokes nothing.
    crl = ossl("crl", "-in", pki.crl, "-CAfile", pki.ca, "-noout", "-text")
    assert "verify OK" in (crl.stdout + crl.stderr), crl
    assert "No Revoked Certificates" in crl.stdout, crl.stdout
    for crt, _ in pki.files.values():
        ossl("verify", "-crl_check", "-CRLfile", pki.crl, "-CAfile", pki.ca, crt)


def test_serials_are_unique_per_issuer(pki, ossl):
    """RFC 5280 4.1.2.2: an issuer gives each certificate it issues its own serial number. The
    server's CA issues itself (self-signed), the server certificate and the client certificates;
    no two of them may share a serial (NSS refuses a reused issuer+serial, and a CRL entry for
    one would revoke the other)."""
    serials = {"CA": x509_serial(pki.ca), "server": x509_serial(pki.server_cert)}
    serials.update({vsc: x509_serial(crt) for vsc, (crt, _) in pki.files.items()})
    issuers = {ossl("x509", "-in", p, "-noout", "-issuer").stdout.strip()
               for p in (pki.ca, pki.server_cert, *(crt for crt, _ in pki.files.values()))}
    assert len(issuers) == 1, issuers
    assert len(set(serials.values())) == len(serials), f"serials reused by one issuer: {serials}"


def test_deleted_certificates_are_revoked(pki, ossl):
    api, a, b = pki.api, pki.a, pki.b
    serial_a = x509_serial(pki.files[a][0])
    delete_cert(api, pki.gw, a)
    pki.refresh_server()
    crl = ossl("crl", "-in", pki.crl, "-CAfile", pki.ca, "-noout", "-text")
    assert "verify OK" in (crl.stdout + crl.stderr), crl
    listed = re.findall(r"Serial Number:\s*([0-9A-F]+)", crl.stdout)
    assert [hex_serial(s) for s in listed] == [hex_serial(serial_a)], crl.stdout
    # The deleted certificate no longer verifies against the CA with its CRL; the live one does.
    dead = ossl("verify", "-crl_check", "-CRLfile", pki.crl, "-CAfile", pki.ca, pki.files[a][0], check=False)
    assert dead.returncode != 0 and "certificate revoked" in (dead.stdout + dead.stderr), dead
    live = ossl("verify", "-crl_check", "-CRLfile", pki.crl, "-CAfile", pki.ca, pki.files[b][0])
    assert live.stdout.strip().endswith(": OK"), live.stdout
    # The server's log says so too.
    msgs = messages(server_logs(api, pki.vss, MinutePeriod=10, SslVpnClientCertId=a)["_logs"])
    assert msgs[-1].startswith(f"{a} certificate revoked, serial {hex_serial(serial_a)}"), msgs
    # A second revocation adds to the list.
    serial_b = x509_serial(pki.files[b][0])
    delete_cert(api, pki.gw, b)
    pki.refresh_server()
    crl = ossl("crl", "-in", pki.crl, "-noout", "-text").stdout
    assert sorted(hex_serial(s) for s in re.findall(r"Serial Number:\s*([0-9A-F]+)", crl)) == \
        sorted([hex_serial(serial_a), hex_serial(serial_b)]), crl


# ----------------------------------------------------------------------------- a real OpenVPN (root)




def openvpn_binary() -> str | None:
    for c in OPENVPN_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("openvpn")


def _openvpn_problem() -> str | None:
    if os.geteuid() != 0:
        return "not running as root (network namespaces, bridges and TUN devices need root)"
    for tool in ("ip", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if openvpn_binary() is None:
        return "openvpn is not installed (Debian: openvpn)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    import secrets
    probe = f"tprobe{secrets.token_hex(3)}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        return f"`ip netns add` fails: {res.stderr.strip()}"
    try:
        res = subprocess.run(["ip", "link", "add", f"{probe}b", "type", "bridge"], capture_output=True, text=True,
                             timeout=10)
        if res.returncode != 0:
            return f"cannot create a bridge: {res.stderr.strip()}"
        subprocess.run(["ip", "link", "del", f"{probe}b"], capture_output=True, timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


@pytest.fixture
def vpn_lab(request):
    """A lab.Lab (bridges, namespaces, processes by PID), removed at teardown."""
    from lab import Lab, skip_loudly

    problem = _openvpn_problem()
    if problem is not None:
        skip_loudly(request, "SSL-VPN end-to-end tests", problem, "root, network namespaces, /dev/net/tun and OpenVPN")

    lab = Lab()
    try:
        yield lab
    finally:
        problems = lab.cleanup()
        if problems:
            warnings.warn(f"lab cleanup: {problems}")


class OpenVpn:
    """One `openvpn --config <file>` in a namespace of the lab: started with lab.spawn (its PID
    recorded by the lab, so cleanup kills it even if the test fails), output in ``log``."""

    def __init__(self, lab, ns: str, conf: Path, log: Path):
        self.lab, self.ns, self.conf, self.log = lab, ns, conf, log
        self.proc = lab.spawn(ns, [openvpn_binary(), "--config", conf], log)

    def text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except OSError:
            return ""

    def wait_for(self, needle: str, timeout: float, other: "OpenVpn | None" = None) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None:
                raise AssertionError(f"openvpn ({self.conf.name}) exited rc={self.proc.returncode} before "
                                     f"{needle!r}:\n{self.text()[-3000:]}")
            if time.monotonic() >= deadline:
                msg = f"no {needle!r} from openvpn ({self.conf.name}) within {timeout}s:\n{self.text()[-3000:]}"
                if other is not None:
                    msg += f"\n--- {other.conf.name}:\n{other.text()[-3000:]}"
                raise AssertionError(msg)
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM by PID (only while it lives in its namespace), SIGKILL after 5 s."""
        p = self.proc
        if p.poll() is None:
            self.lab.signal_pid(p.pid, signal.SIGTERM, {self.ns})
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.lab.signal_pid(p.pid, signal.SIGKILL, {self.ns})
                p.wait(timeout=5)


def test_openvpn_connection(server, root, vpn_lab, tmp_path):
    """A stock OpenVPN server runs `gatehouse ssl-server-config` unchanged, in a namespace that
    holds the gateway's InternetIp; a stock client runs ClientConfig unchanged from another
    namespace on the same segment. The tunnel comes up and carries pings. After
    DeleteSslVpnClientCert, the server run with its re-rendered configuration (the new CRL)
    refuses that certificate, while another, live certificate still connects."""
    lab = vpn_lab
    api = make_api("classic", server.endpoint, root)
    gw = ssl_gateway(api)
    g, ip = gw["VpnGatewayId"], gw["InternetIp"]
    vss = new_server(api, g, ClientIpPool=POOL, LocalSubnet=LOCAL)["SslVpnServerId"]
    a = new_cert(api, g, vss, Name="alice")
    b = new_cert(api, g, vss, Name="bob")
    profiles = {}
    for c in (a, b):
        profiles[c] = tmp_path / f"{c}.ovpn"
        profiles[c].write_text(cert(api, c)["ClientConfig"])
    conf1 = tmp_path / "server1.conf"
    conf1.write_text(server_config(server, vss))

    # The segment: the emulator's public pool is 198.18.0.0/15; both ends take the pool's prefix
    # length (any InternetIp is then a host address), the client a free address in the same /24.
    pool = support.INTERNET_IP_POOL
    assert ipaddress.ip_address(ip) in pool, ip
    prefix = ip.rsplit(".", 1)[0]
    client_ip = next(f"{prefix}.{n}" for n in (250, 251, 252) if f"{prefix}.{n}" != ip)
    bridge = lab.bridge("s")
    server_ns = lab.host("ovs", bridge, f"{ip}/{pool.prefixlen}")
    client_ns = lab.host("ovc", bridge, f"{client_ip}/{pool.prefixlen}")
    assert lab.ping(client_ns, ip, timeout=3), "the segment does not carry pings"
    tunnel_server = str(ipaddress.ip_network(POOL)[1])   # the server's address in the pool

    srv = OpenVpn(lab, server_ns, conf1, tmp_path / "server1.log")
    srv.wait_for("Initialization Sequence Completed", 30)
    # The real daemon's pool is what the simulated log claims for it (see pool_line).
    assert pool_line(POOL) in srv.text(), srv.text()[-2000:]
    cli = OpenVpn(lab, client_ns, profiles[a], tmp_path / "client-a1.log")
    cli.wait_for("Initialization Sequence Completed", 30, other=srv)
    assert lab.ping(client_ns, tunnel_server, count=2, timeout=5), \
        f"no ping through the tunnel\n{cli.text()[-2000:]}\n{srv.text()[-2000:]}"
    assert f"CN={a}" in srv.text() or f"[{a}] Peer Connection Initiated" in srv.text(), srv.text()[-2000:]
    cli.stop()
    srv.stop()

    # Revoke alice; the server restarts with the configuration rendered now (the new CRL).
    delete_cert(api, g, a)
    conf2 = tmp_path / "server2.conf"
    conf2.write_text(server_config(server, vss))
    assert inline(conf2.read_text(), "crl-verify") != inline(conf1.read_text(), "crl-verify")
    srv = OpenVpn(lab, server_ns, conf2, tmp_path / "server2.log")
    srv.wait_for("Initialization Sequence Completed", 30)
    cli = OpenVpn(lab, client_ns, profiles[a], tmp_path / "client-a2.log")
    srv.wait_for("certificate revoked", 30, other=cli)
    assert re.search(rf"VERIFY ERROR: depth=0, error=certificate revoked: .*CN={a}", srv.text()), srv.text()[-2000:]
    # Bounded: the client is refused and never completes (the server keeps refusing it).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert "Initialization Sequence Completed" not in cli.text(), cli.text()[-2000:]
        time.sleep(0.1)
    assert not lab.ping(client_ns, tunnel_server, count=1, timeout=1)
    cli.stop()

    # Bob's certificate is still good with the same server.
    cli = OpenVpn(lab, client_ns, profiles[b], tmp_path / "client-b.log")
    cli.wait_for("Initialization Sequence Completed", 30, other=srv)
    assert lab.ping(client_ns, tunnel_server, count=2, timeout=5), cli.text()[-2000:]
    cli.stop()
    srv.stop()
