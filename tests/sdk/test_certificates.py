"""Certificates of national-standard (SM) VPN gateways, through the official Python SDKs (classic,
Tea ACS3, Tea v2), and two rules that came with them: a subscription gateway needs its Period,
and no route may send the SSL-VPN client pool into a tunnel (VpnRouteEntry.ConflictSSL).

Spec: shared/spec/actions/{AssociateVpnGatewayWithCertificate,DissociateVpnGatewayWithCertificate,
ListVpnCertificateAssociations,CreateVpnGateway,CreateVpnRouteEntry,CreateVpnPbrRouteEntry,
CreateVpnConnection}.yaml.

The real service takes certificates from its certificate service; here an operator registers a
PEM certificate with `gatehouse certificates add FILE --region R [--name N] [--account A]`, which
prints the CertificateId the API then takes (`certificates list` shows them). Where the documents
are silent the tests pin the server's documented choices (src/actions/certificates.rs,
src/actions/vpn_gateways.rs, src/actions/vpn_routes.rs, src/actions/ssl_vpn/mod.rs):
- only NationalStandard gateways take certificates (400 OperationUnsupported.VpnType); an unknown
  certificate is 404 InvalidCertificateId.NotFound; a gateway holds one certificate per type and
  associating another of that type replaces it; a passed DryRun answers a plain RequestId;
- dissociating what is not associated is a successful no-op;
- ListVpnCertificateAssociations lists newest first and filters by CertificateType, and by the
  SDKs' repeated VpnGatewayId / CertificateId lists;
- a national-standard gateway without any certificate takes no IPsec connection
  (400 OperationFailed.MissCertificate);
- InstanceChargeType=PREPAY without Period is 400 MissingPeriod.
"""

from __future__ import annotations

import calendar
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import support
from support import (
    active_gateway,
    create_gateway,
    describe_gateway,
    expect_error,
    items,
    make_api,
    now_ms,
    public_ip,
    wait_for,
    wait_status,
)

UNKNOWN_GW = "vpn-" + "z" * 21
CERT_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
RELATION_FIELDS = {"VpnGatewayId", "CertificateType", "CertificateId", "AssociationTime", "RegionId"}
SUBJECT = '{"RemoteId": "CN=peer,O=test,C=CN"}'


# ---------------------------------------------------------------- helpers


def make_pem(d: Path, cn: str) -> Path:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", f"/CN={cn}", "-days", "30", "-keyout", str(d / f"{cn}.key"), "-out", str(d / f"{cn}.pem")],
                   check=True, capture_output=True, timeout=30)
    return d / f"{cn}.pem"


@pytest.fixture(scope="module")
def pems(tmp_path_factory) -> list[Path]:
    """Four self-signed P-256 certificates (PEM); each `<cn>.key` beside it."""
    d = tmp_path_factory.mktemp("certs")
    return [make_pem(d, f"cert{i}") for i in range(4)]


def register(server, pem: Path, account: str = "root", region: str = support.REGION, name: str | None = None) -> str:
    """`gatehouse certificates add`: the printed CertificateId."""
    args = ["certificates", "add", str(pem), "--region", region, "--account", account]
    if name is not None:
        args += ["--name", name]
    lines = [x.strip() for x in server.cli(*args).stdout.splitlines() if x.strip()]
    assert lines and CERT_ID_RE.match(lines[-1]), lines
    return lines[-1]


def registered(server, account: str) -> list[list[str]]:
    out = server.cli("certificates", "list", "--account", account).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def cli_fails(server, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(support.BIN), *args, "--data-dir", str(server.data_dir)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=server.env, stdin=subprocess.DEVNULL)
    assert res.returncode != 0, f"{cmd} should have failed: stdout={res.stdout!r}"
    assert res.stderr.strip(), f"{cmd} failed without saying why"
    return res


@pytest.fixture
def account(server, kind, new_account):
    """A brand-new account: (its client for this SDK flavour, its name for the CLI)."""
    creds = new_account()
    return make_api(kind, server.endpoint, creds), creds.account


def ns_gateway(api, **over) -> str:
    return active_gateway(api, VpnType="NationalStandard", **over)["VpnGatewayId"]


def associate(api, gw: str, kind: str, cert: str, **extra) -> dict:
    out = api.call("AssociateVpnGatewayWithCertificate",
                   {"VpnGatewayId": gw, "CertificateType": kind, "CertificateId": cert, **extra})
    tick()
    return out


def tick() -> None:
    """Lets the millisecond clock move on (at most ~1 ms), so that associations made one after the
    other have distinct times and "newest first" is a strict order."""
    t = now_ms()
    wait_for(lambda: now_ms() > t, timeout=1.0, interval=0.0005, what="the clock to tick")


def dissociate(api, gw: str, kind: str, cert: str, **extra) -> dict:
    return api.call("DissociateVpnGatewayWithCertificate",
                    {"VpnGatewayId": gw, "CertificateType": kind, "CertificateId": cert, **extra})


def list_body(api, **filters) -> dict:
    body = api.call("ListVpnCertificateAssociations", filters)
    assert isinstance(body.get("VpnCertificateRelations"), list), f"VpnCertificateRelations must be a flat list: {body}"
    return body


def relations(api, **filters) -> list[tuple[str, str, str]]:
    """(VpnGatewayId, CertificateType, CertificateId) in the order listed."""
    return [(r["VpnGatewayId"], r["CertificateType"], r["CertificateId"])
            for r in list_body(api, MaxResults=20, **filters)["VpnCertificateRelations"]]


def iso_seconds(s: str) -> int:
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


def wait_active(api, gw: str) -> dict:
    return wait_status(api, gw, "active", timeout=10)


def new_cgw(api) -> str:
    return api.call("CreateCustomerGateway", {"IpAddress": public_ip()})["CustomerGatewayId"]


# ---------------------------------------------------------------- the CLI


def test_cli_register_and_list(server, pems, tmp_path, new_account):
    acct = new_account().account
    other = new_account().account
    a = register(server, pems[0], acct, name="branch-sig")
    b = register(server, pems[1], acct, region="cn-shanghai")
    # The same PEM registered again is another certificate.
    c = register(server, pems[0], acct)
    assert len({a, b, c}) == 3
    assert sorted(registered(server, acct)) == sorted([[a, support.REGION, "branch-sig"], [b, "cn-shanghai", ""],
                                                      [c, support.REGION, ""]])
    assert registered(server, other) == []

    # What is not exactly one X.509 certificate is refused, saying so.
    key = pems[0].with_suffix(".key")
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a certificate\n")
    two = tmp_path / "two.pem"
    two.write_text(pems[0].read_text() + pems[1].read_text())
    fake = tmp_path / "fake.pem"
    fake.write_text("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n")
    for bad in (key, text, two, fake):
        res = cli_fails(server, "certificates", "add", str(bad), "--region", support.REGION, "--account", acct)
        assert "certificate" in res.stderr.lower(), (bad.name, res.stderr)
        assert not res.stdout.strip(), res.stdout
    cli_fails(server, "certificates", "add", str(tmp_path / "missing.pem"), "--region", support.REGION,
              "--account", acct)
    cli_fails(server, "certificates", "add", str(pems[0]), "--region", support.REGION,
              "--account", "no-such-account-" + uuid.uuid4().hex[:8])
    # Nothing was registered by the refusals.
    assert len(registered(server, acct)) == 3


# ---------------------------------------------------------------- associate / list / dissociate


def test_associate_list_dissociate(server, pems, account):
    api, acct = account
    gw = ns_gateway(api)
    sig1, enc1, sig2 = (register(server, p, acct) for p in pems[:3])
    before = int(time.time())

    out = associate(api, gw, "Signature", sig1)
    assert set(out) == {"RequestId"}, out
    associate(api, gw, "Encryption", enc1)

    body = list_body(api)
    assert (body["TotalCount"], body["MaxResults"], body["NextToken"]) == (2, 10, ""), body
    rels = body["VpnCertificateRelations"]
    for r in rels:
        assert set(r) == RELATION_FIELDS, r
        assert (r["VpnGatewayId"], r["RegionId"]) == (gw, support.REGION), r
        assert ISO_RE.match(r["AssociationTime"]), r
        assert before - 5 <= iso_seconds(r["AssociationTime"]) <= time.time() + 5, r
    # Newest first.
    assert [(r["CertificateType"], r["CertificateId"]) for r in rels] == [("Encryption", enc1), ("Signature", sig1)]
    assert relations(api, CertificateType="Signature") == [(gw, "Signature", sig1)]
    assert relations(api, CertificateType="Encryption") == [(gw, "Encryption", enc1)]

    # The same association again changes nothing.
    associate(api, gw, "Signature", sig1)
    assert relations(api) == [(gw, "Encryption", enc1), (gw, "Signature", sig1)]
    # Another certificate of a type replaces the one the gateway had.
    associate(api, gw, "Signature", sig2)
    assert relations(api) == [(gw, "Signature", sig2), (gw, "Encryption", enc1)]
    assert list_body(api)["TotalCount"] == 2

    # Dissociating what is not associated (any more) is a no-op success.
    out = dissociate(api, gw, "Signature", sig1)
    assert set(out) == {"RequestId"}, out
    dissociate(api, gw, "Encryption", sig2)
    assert relations(api) == [(gw, "Signature", sig2), (gw, "Encryption", enc1)]
    dissociate(api, gw, "Signature", sig2)
    assert relations(api) == [(gw, "Encryption", enc1)]
    dissociate(api, gw, "Signature", sig2)
    assert relations(api) == [(gw, "Encryption", enc1)]
    # A dry run only checks.
    assert set(dissociate(api, gw, "Encryption", enc1, DryRun=True)) == {"RequestId"}
    assert relations(api) == [(gw, "Encryption", enc1)]
    dissociate(api, gw, "Encryption", enc1)
    body = list_body(api)
    assert (body["TotalCount"], body["VpnCertificateRelations"], body["NextToken"]) == (0, [], ""), body
    # The gateway can take them again.
    associate(api, gw, "Signature", sig1)
    assert relations(api) == [(gw, "Signature", sig1)]


def test_list_filters_by_gateway_and_certificate(server, pems, account):
    """The SDKs send VpnGatewayId and CertificateId as repeated lists (VpnGatewayId.1=...)."""
    api, acct = account
    g1, g2 = ns_gateway(api), ns_gateway(api)
    a, b = register(server, pems[0], acct), register(server, pems[1], acct)
    associate(api, g1, "Signature", a)
    associate(api, g1, "Encryption", b)
    associate(api, g2, "Signature", b)
    assert len(relations(api)) == 3

    assert relations(api, VpnGatewayId=[g1]) == [(g1, "Encryption", b), (g1, "Signature", a)]
    assert relations(api, VpnGatewayId=[g2]) == [(g2, "Signature", b)]
    assert relations(api, CertificateId=[b]) == [(g2, "Signature", b), (g1, "Encryption", b)]
    assert relations(api, CertificateId=[a]) == [(g1, "Signature", a)]
    assert relations(api, VpnGatewayId=[g1], CertificateType="Signature") == [(g1, "Signature", a)]
    assert relations(api, CertificateId=[a], CertificateType="Encryption") == []
    assert relations(api, VpnGatewayId=[UNKNOWN_GW]) == []
    assert relations(api, CertificateId=[str(uuid.uuid4())]) == []
    # Several values: any of them.
    assert len(relations(api, VpnGatewayId=[g1, g2])) == 3
    assert relations(api, VpnGatewayId=[g2], CertificateId=[a, b]) == [(g2, "Signature", b)]
    assert list_body(api, VpnGatewayId=[g1])["TotalCount"] == 2


def test_list_paging(server, pems, account):
    api, acct = account
    g1, g2 = ns_gateway(api), ns_gateway(api)
    certs = [register(server, p, acct) for p in pems]
    made = []
    for gw, kind, cert in ((g1, "Signature", certs[0]), (g1, "Encryption", certs[1]), (g2, "Signature", certs[2]),
                           (g2, "Encryption", certs[3])):
        associate(api, gw, kind, cert)
        made.append((gw, kind, cert))
    newest_first = made[::-1]

    p1 = list_body(api, MaxResults=3)
    assert (len(p1["VpnCertificateRelations"]), p1["TotalCount"], p1["MaxResults"]) == (3, 4, 3), p1
    assert p1["NextToken"], p1
    p2 = list_body(api, MaxResults=3, NextToken=p1["NextToken"])
    assert (len(p2["VpnCertificateRelations"]), p2["TotalCount"], p2["NextToken"]) == (1, 4, ""), p2
    got = [(r["VpnGatewayId"], r["CertificateType"], r["CertificateId"])
           for r in p1["VpnCertificateRelations"] + p2["VpnCertificateRelations"]]
    assert got == newest_first
    assert relations(api) == newest_first
    assert list_body(api, MaxResults=20)["MaxResults"] == 20

    # Filters page too.
    e1 = list_body(api, CertificateType="Encryption", MaxResults=1)
    assert (e1["TotalCount"], len(e1["VpnCertificateRelations"])) == (2, 1), e1
    e2 = list_body(api, CertificateType="Encryption", MaxResults=1, NextToken=e1["NextToken"])
    assert e2["NextToken"] == "", e2
    assert [r["CertificateId"] for r in e1["VpnCertificateRelations"] + e2["VpnCertificateRelations"]] == \
        [certs[3], certs[1]]

    expect_error(lambda: list_body(api, MaxResults=21), 400, "InvalidParameter")
    expect_error(lambda: list_body(api, MaxResults=0), 400, "InvalidParameter")
    expect_error(lambda: list_body(api, NextToken="garbage"), 400, "InvalidNextToken")
    expect_error(lambda: list_body(api, CertificateType="Authentication"), 400, "InvalidParameter")


@pytest.mark.parametrize("kind", ["tea-acs3"])
def test_associate_errors(server, pems, account):
    api, acct = account
    ns = ns_gateway(api)
    normal = active_gateway(api)["VpnGatewayId"]
    cert = register(server, pems[0], acct)
    elsewhere = register(server, pems[1], acct, region="cn-shanghai")

    e = expect_error(lambda: associate(api, normal, "Signature", cert), 400, "OperationUnsupported.VpnType")
    assert e.message, e
    e = expect_error(lambda: associate(api, ns, "Signature", str(uuid.uuid4())), 404, "InvalidCertificateId.NotFound")
    assert e.message == "The specified certificate does not exist.", e.message
    # A certificate is registered for one region.
    expect_error(lambda: associate(api, ns, "Signature", elsewhere), 404, "InvalidCertificateId.NotFound")
    e = expect_error(lambda: associate(api, UNKNOWN_GW, "Signature", cert), 404,
                     "InvalidVpnGatewayInstanceId.NotFound")
    assert e.message == "The specified vpn gateway instance id does not exist.", e.message
    expect_error(lambda: associate(api, ns, "Authentication", cert), 400, "InvalidParameter")
    expect_error(lambda: api.call("AssociateVpnGatewayWithCertificate",
                                  {"VpnGatewayId": ns, "CertificateId": cert}), 400, "MissingCertificateType")
    expect_error(lambda: api.call("AssociateVpnGatewayWithCertificate",
                                  {"VpnGatewayId": ns, "CertificateType": "Signature"}), 400, "MissingCertificateId")
    # A dry run checks everything, then answers a plain RequestId and associates nothing.
    expect_error(lambda: associate(api, ns, "Signature", str(uuid.uuid4()), DryRun=True), 404,
                 "InvalidCertificateId.NotFound")
    expect_error(lambda: associate(api, normal, "Signature", cert, DryRun=True), 400, "OperationUnsupported.VpnType")
    out = associate(api, ns, "Signature", cert, DryRun=True)
    assert set(out) == {"RequestId"}, out
    assert relations(api) == []

    expect_error(lambda: dissociate(api, UNKNOWN_GW, "Signature", cert), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: dissociate(api, ns, "Authentication", cert), 400, "InvalidParameter")
    assert relations(api) == []


# ---------------------------------------------------------------- connections need a certificate


@pytest.mark.parametrize("kind", ["classic"])
def test_connection_needs_a_certificate(server, pems, account):
    api, acct = account
    gw = ns_gateway(api)
    ca = pems[3].read_text()

    def create(cgw: str, remote: str, **extra):
        return api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": cgw,
                                                "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": remote, **extra})

    cgw = new_cgw(api)
    e = expect_error(lambda: create(cgw, "192.168.1.0/24", IkeConfig=SUBJECT, RemoteCaCertificate=ca), 400,
                     "OperationFailed.MissCertificate")
    assert e.message == "The VPN gateway has not associated any certificates.", e.message

    cert = register(server, pems[0], acct)
    associate(api, gw, "Signature", cert)
    # With a certificate, the connection rules of a national-standard gateway apply.
    expect_error(lambda: create(cgw, "192.168.1.0/24", IkeConfig=SUBJECT), 400, "MissingRemoteCaCertificate")
    expect_error(lambda: create(cgw, "192.168.1.0/24", RemoteCaCertificate=ca), 400, "MissingParam.RemoteId")
    vco = create(cgw, "192.168.1.0/24", IkeConfig=SUBJECT, RemoteCaCertificate=ca)["VpnConnectionId"]
    wait_active(api, gw)
    d = api.call("DescribeVpnConnection", {"VpnConnectionId": vco})
    assert d["RemoteCaCertificate"] == ca, d
    assert d["IkeConfig"]["RemoteId"] == "CN=peer,O=test,C=CN", d

    # Without any certificate again, no new connection.
    dissociate(api, gw, "Signature", cert)
    assert relations(api) == []
    expect_error(lambda: create(new_cgw(api), "192.168.2.0/24", IkeConfig=SUBJECT, RemoteCaCertificate=ca), 400,
                 "OperationFailed.MissCertificate")
    # An encryption certificate alone is a certificate too.
    associate(api, gw, "Encryption", cert)
    create(new_cgw(api), "192.168.2.0/24", IkeConfig=SUBJECT, RemoteCaCertificate=ca)
    wait_active(api, gw)


# ---------------------------------------------------------------- subscription period


@pytest.mark.parametrize("kind", ["tea-v2"])
def test_prepay_needs_a_period(api):
    e = expect_error(lambda: create_gateway(api, InstanceChargeType="PREPAY"), 400, "MissingPeriod")
    assert "Period" in e.message, e.message
    prepay = create_gateway(api, InstanceChargeType="PREPAY", Period=1)["VpnGatewayId"]
    postpay = create_gateway(api, InstanceChargeType="POSTPAY")["VpnGatewayId"]
    default = create_gateway(api)["VpnGatewayId"]
    assert describe_gateway(api, prepay)["ChargeType"] == "Prepay"
    assert describe_gateway(api, postpay)["ChargeType"] == "Postpay"
    assert describe_gateway(api, default)["ChargeType"] == "Prepay"
    for gw in (prepay, postpay, default):
        wait_active(api, gw)


# ---------------------------------------------------------------- routes vs the SSL-VPN client pool


@pytest.mark.parametrize("kind", ["tea-acs3"])
def test_routes_conflicting_with_ssl_vpn_pool(api):
    gw = active_gateway(api, EnableSsl=True)["VpnGatewayId"]
    api.call("CreateSslVpnServer", {"VpnGatewayId": gw, "ClientIpPool": "192.168.100.0/24",
                                    "LocalSubnet": "10.0.0.0/8"})
    wait_active(api, gw)

    def conn(remote: str, **extra) -> str:
        return api.call("CreateVpnConnection", {"VpnGatewayId": gw, "CustomerGatewayId": new_cgw(api),
                                                "LocalSubnet": "10.0.0.0/24", "RemoteSubnet": remote,
                                                **extra})["VpnConnectionId"]

    def dbr(dest: str, hop: str):
        return api.call("CreateVpnRouteEntry", {"VpnGatewayId": gw, "RouteDest": dest, "NextHop": hop, "Weight": 100,
                                                "PublishVpc": False})

    def pbr(source: str, dest: str, hop: str):
        return api.call("CreateVpnPbrRouteEntry", {"VpnGatewayId": gw, "RouteSource": source, "RouteDest": dest,
                                                   "NextHop": hop, "Weight": 100, "PublishVpc": False})

    conflict = "VpnRouteEntry.ConflictSSL"
    # A connection whose automatic routes would send the pool into its tunnel (AutoConfigRoute
    # defaults to true), whatever the overlap.
    for remote in ("192.168.100.0/24", "192.168.100.64/26", "192.168.0.0/16", "172.30.0.0/24,192.168.100.0/25"):
        e = expect_error(lambda: conn(remote), 400, conflict)
        assert e.message == "The specified route entry has conflict with SSL client.", e.message
        expect_error(lambda: conn(remote, AutoConfigRoute=True), 400, conflict)
    assert describe_gateway(api, gw)["Status"] == "active"
    assert items(api.call("DescribeVpnConnections", {"VpnGatewayId": gw}), "VpnConnections", "VpnConnection") == []

    vco = conn("172.31.0.0/24", AutoConfigRoute=False)
    wait_active(api, gw)
    for dest in ("192.168.100.0/24", "192.168.100.128/25", "192.168.100.7/32", "192.168.0.0/16"):
        expect_error(lambda: dbr(dest, vco), 400, conflict)
        expect_error(lambda: pbr("10.0.0.0/24", dest, vco), 400, conflict)
    assert describe_gateway(api, gw)["Status"] == "active"
    assert items(api.call("DescribeVpnRouteEntries", {"VpnGatewayId": gw}), "VpnRouteEntries",
                 "VpnRouteEntry") == []
    assert items(api.call("DescribeVpnPbrRouteEntries", {"VpnGatewayId": gw}), "VpnPbrRouteEntries",
                 "VpnPbrRouteEntry") == []
    # A neighbouring destination is fine.
    dbr("192.168.101.0/24", vco)
    wait_active(api, gw)
    pbr("10.0.0.0/24", "192.168.101.0/24", vco)
    wait_active(api, gw)
    # A connection's remote subnet changed onto the pool meets the same rule.
    auto = conn("172.29.0.0/24")
    wait_active(api, gw)
    expect_error(lambda: api.call("ModifyVpnConnectionAttribute", {"VpnConnectionId": auto,
                                                                   "RemoteSubnet": "192.168.100.0/24"}), 400, conflict)
    # Without the SSL-VPN server, the same routes are fine.
    other = active_gateway(api, EnableSsl=True)["VpnGatewayId"]
    hop = api.call("CreateVpnConnection", {"VpnGatewayId": other, "CustomerGatewayId": new_cgw(api),
                                           "LocalSubnet": "10.0.0.0/24",
                                           "RemoteSubnet": "192.168.100.0/24"})["VpnConnectionId"]
    wait_active(api, other)
    api.call("CreateVpnRouteEntry", {"VpnGatewayId": other, "RouteDest": "192.168.100.0/25", "NextHop": hop,
                                     "Weight": 100, "PublishVpc": False})
    wait_active(api, other)


# ---------------------------------------------------------------- accounts


def test_account_isolation(server, kind, pems, new_account):
    me, them = new_account(), new_account()
    mine, theirs = make_api(kind, server.endpoint, me), make_api(kind, server.endpoint, them)
    my_gw, their_gw = ns_gateway(mine), ns_gateway(theirs)
    cert = register(server, pems[0], me.account)
    associate(mine, my_gw, "Signature", cert)

    # Another account can neither use the certificate nor touch the gateway, and sees nothing.
    expect_error(lambda: associate(theirs, their_gw, "Signature", cert), 404, "InvalidCertificateId.NotFound")
    expect_error(lambda: associate(theirs, my_gw, "Signature", cert), 404, "InvalidVpnGatewayInstanceId.NotFound")
    expect_error(lambda: dissociate(theirs, my_gw, "Signature", cert), 404, "InvalidVpnGatewayInstanceId.NotFound")
    body = list_body(theirs)
    assert (body["TotalCount"], body["VpnCertificateRelations"]) == (0, []), body
    assert relations(theirs, CertificateId=[cert]) == []
    assert cert not in [row[0] for row in registered(server, them.account)]

    assert relations(mine) == [(my_gw, "Signature", cert)]
