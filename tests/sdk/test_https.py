"""HTTPS: `gatehouse serve --tls-listen ADDR` beside the plain listener, with a self-signed
certificate made into the data directory (path and fingerprint printed) or the operator's own
(`--tls-cert/--tls-key`). The official SDKs speak HTTPS to it once they trust the certificate:
the classic SDK through `AcsClient(verify=CA_BUNDLE)`, the Tea SDK through the runtime option
`ca`.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import support
from support import KINDS, Creds, GatehouseServer, ROOT_AK, ROOT_SECRET, create_gateway, make_api, tls_of

ROOT = Creds(ROOT_AK, ROOT_SECRET, "root")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    srv = GatehouseServer(tmp_path_factory.mktemp("gh-tls") / "data",
                          ["--transition-delay-ms", "0", "--tls-listen", "127.0.0.1:0"], name="tls")
    srv.start()
    yield srv
    srv.stop()


def test_the_generated_certificate_is_printed_private_and_reused(tls_server, tmp_path):
    port, cert, fingerprint = tls_of(tls_server)
    assert cert == tls_server.data_dir / "tls" / "cert.pem"
    assert (cert.parent / "key.pem").stat().st_mode & 0o777 == 0o600
    out = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256", "-ext",
                          "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert fingerprint in out, out
    assert "DNS:localhost" in out and "IP Address:127.0.0.1" in out, out
    # A second start keeps the same certificate, so clients keep trusting it.
    tls_server.stop()
    tls_server.start()
    port2, _, fingerprint2 = tls_of(tls_server)
    assert fingerprint2 == fingerprint and port2 != 0


@pytest.mark.parametrize("kind", KINDS)
def test_official_sdks_over_https(tls_server, kind):
    port, cert, _ = tls_of(tls_server)
    api = make_api(kind, f"127.0.0.1:{port}", ROOT, ca=str(cert))
    gw = create_gateway(api)["VpnGatewayId"]
    assert api.call("DescribeVpnGateway", {"VpnGatewayId": gw})["VpnGatewayId"] == gw
    # The same resource over plain HTTP: one service, two listeners.
    plain = make_api(kind, tls_server.endpoint, ROOT)
    assert plain.call("DescribeVpnGateway", {"VpnGatewayId": gw})["VpnGatewayId"] == gw


def test_an_untrusting_client_and_plain_http_are_refused(tls_server):
    port, cert, _ = tls_of(tls_server)
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ssl.create_default_context(), timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError), refused.value
    trusted = ssl.create_default_context(cafile=str(cert))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/?Action=DescribeRegions", context=trusted, timeout=5)
    assert e.value.code == 400 and b"MissingVersion" in e.value.read()
    # Plain HTTP on the TLS port is not an API request.
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()


def test_the_operators_certificate(tmp_path, server_factory):
    key, cert = tmp_path / "op.key", tmp_path / "op.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", "/CN=gatehouse.test", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    srv = server_factory(["--tls-listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key)])
    port, printed, _ = tls_of(srv)
    assert printed == cert
    assert not (srv.data_dir / "tls").exists()
    api = make_api("classic", f"127.0.0.1:{port}", ROOT, ca=str(cert))
    assert api.call("DescribeRegions", {})["Regions"]


def test_a_key_without_a_certificate_is_refused(tmp_path):
    res = subprocess.run([str(support.BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
                          "--tls-listen", "127.0.0.1:0", "--tls-key", str(tmp_path / "k.pem")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0 and "--tls-cert" in res.stderr, res.stderr
