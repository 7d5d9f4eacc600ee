"""Shared machinery for the gatehouse SDK integration tests.

* ``GatehouseServer`` runs the real ``gatehouse serve`` binary on an ephemeral
  127.0.0.1 port and stops it by PID. ``STORE`` says where it keeps its data: ``sqlite``
  (the embedded store in its data dir) or, with ``GATEHOUSE_TEST_STORE=postgres``, a database
  of its own on a PostgreSQL instance (``pg_instance()``).
* ``ClassicApi`` / ``TeaApi`` / ``RawApi`` give one interface,
  ``call(action, params) -> dict`` raising ``ApiError``, over the official
  classic Python SDK (aliyun-python-sdk-core + aliyun-python-sdk-vpc), the Tea
  SDK (alibabacloud-vpc20160428, ACS3 or RPC v1 "v2" signatures) and a
  hand-rolled signer used for negative protocol tests.
* ``rpc_v1_*`` / ``acs3_*`` implement the two Alibaba signature schemes exactly
  as shared/spec/clients.md section 2 describes them.

Parameters use API names.  Repeated parameters are Python lists
(``{"ResourceId": ["vpn-..."], "Tag": [{"Key": "k", "Value": "v"}]}``); every
client flattens them the way the corresponding SDK does (``Tag.1.Key``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import queue
import random
import re
import signal
import string
import subprocess
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pg

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("GATEHOUSE_BIN", REPO / "target" / "release" / "gatehouse"))

ROOT_AK = "LTAI5tGatehouseRootTest"
ROOT_SECRET = "gatehouse-root-secret~0123456789abcdef"
VERSION = "2016-04-28"
REGION = "cn-hangzhou"

LISTEN_RE = re.compile(r"^gatehouse listening on http://127\.0\.0\.1:(\d+)\s*$")
HTTPS_RE = re.compile(r"gatehouse listening on https://127\.0\.0\.1:(\d+)")
CERT_RE = re.compile(r"gatehouse TLS certificate (\S+) \(SHA-256 ([0-9A-F:]+)\)")
STARTUP_TIMEOUT = 10.0

VPN_ID_RE = re.compile(r"^vpn-[a-z0-9]{21}$")
CGW_ID_RE = re.compile(r"^cgw-[a-z0-9]{21}$")
REQUEST_ID_RE = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
INTERNET_IP_POOL = ipaddress.ip_network("198.18.0.0/15")

ERROR_FIELDS = ("RequestId", "HostId", "Code", "Message", "Recommend")


# --------------------------------------------------------------------------
# small helpers


def rand_suffix(n: int = 21) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def vpc_id() -> str:
    """A realistic, unique VPC id (the emulator has no VPC resource)."""
    return "vpc-" + rand_suffix()


def vsw_id() -> str:
    return "vsw-" + rand_suffix()


def public_ip() -> str:
    """A random, syntactically public IPv4 address (stored only, never contacted)."""
    return "%d.%d.%d.%d" % (
        random.choice([39, 45, 47, 101, 106, 114, 120, 139]),
        random.randint(0, 255),
        random.randint(0, 255),
        random.randint(1, 254),
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(fn: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Bounded poll: return fn()'s first truthy value, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# the store


STORE = os.environ.get("GATEHOUSE_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgres"):
    raise RuntimeError(f"GATEHOUSE_TEST_STORE={STORE!r}: sqlite or postgres")

_pg: pg.Instance | None = None
_pg_owned = False


def pg_instance() -> pg.Instance:
    """The run's PostgreSQL instance: the one scripts/test.sh exported, else one started for
    this session (stopped by ``stop_pg_instance`` at its end)."""
    global _pg, _pg_owned
    if _pg is None:
        _pg = pg.Instance.from_env()
        if _pg is None:
            _pg, _pg_owned = pg.Instance.create(tied=True), True
    return _pg


def stop_pg_instance() -> None:
    global _pg
    if _pg is not None and _pg_owned:
        _pg.remove()
        _pg = None


def new_database(prefix: str = "gh") -> str:
    """A fresh, empty database on the run's instance; its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    pg_instance().create_database(name)
    return name


# Under postgres each data dir gets its own database, made the first time a server or a CLI
# command uses that dir in this process, so a restart or a second server object on the same dir
# finds the same data.
_databases: dict[Path, str] = {}
_databases_lock = threading.Lock()


def database_for(data_dir: Path) -> str:
    key = Path(data_dir).resolve()
    with _databases_lock:
        if key not in _databases:
            _databases[key] = new_database()
        return _databases[key]


# --------------------------------------------------------------------------
# the server process


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the test process dies without cleaning up."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # not Linux/glibc: teardown by PID still applies
        pass


@dataclass
class Creds:
    ak: str
    secret: str
    account: str = "root"


class GatehouseServer:
    """One ``gatehouse serve`` process (restartable on the same data dir)."""

    def __init__(self, data_dir: Path, args: Iterable[str] = (), env: dict | None = None, name: str = "server",
                 preexec: Callable[[], None] | None = None):
        """``preexec`` runs in the child before exec (after the parent-death signal is set): to
        lower its resource limits or set its umask, say."""
        self.preexec = preexec
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.args = [str(a) for a in args]
        self.name = name
        self.env = dict(os.environ)
        # The store is the suite's choice (STORE, or a URL the caller passes in ``env``), never
        # one the shell happened to export.
        self.env.pop("GATEHOUSE_DATABASE_URL", None)
        self.env.update(
            {
                "GATEHOUSE_ROOT_ACCESS_KEY_ID": ROOT_AK,
                "GATEHOUSE_ROOT_ACCESS_KEY_SECRET": ROOT_SECRET,
            }
        )
        if env:
            self.env.update(env)
        # The database this server uses (postgres only): its own, unless the caller names one;
        # --ephemeral is the throwaway embedded store by definition.
        self.database: str | None = None
        self._own_database = (STORE == "postgres" and "GATEHOUSE_DATABASE_URL" not in self.env
                              and "--ephemeral" not in self.args)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.{name}.log"
        self._starts = 0

    def _use_database(self) -> None:
        if self._own_database and self.database is None:
            self.database = database_for(self.data_dir)
            self.env["GATEHOUSE_DATABASE_URL"] = pg_instance().url(self.database)

    def _preexec(self) -> None:
        _die_with_parent()
        if self.preexec is not None:
            self.preexec()

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "GatehouseServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not BIN.exists():
            raise RuntimeError(f"{BIN} does not exist: build it with `cargo build --release --bins`")
        self._use_database()
        self._starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n==== start #{self._starts}: {BIN} serve {' '.join(self.args)}\n".encode())
        log.flush()
        cmd = [str(BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir), *self.args]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self.env,
            cwd=str(self.data_dir.parent),
            preexec_fn=self._preexec,
        )
        lines: "queue.Queue[bytes | None]" = queue.Queue()

        def pump() -> None:
            # Keep draining stdout for the whole life of the process so it can
            # never block on a full pipe; copy everything to the log.
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw)
                log.write(b"[stdout] " + raw)
                log.flush()
            lines.put(None)
            log.close()

        threading.Thread(target=pump, name=f"gatehouse-stdout-{proc.pid}", daemon=True).start()
        self.proc = proc
        deadline = time.monotonic() + timeout
        first = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill_quietly()
                raise RuntimeError(f"gatehouse did not print its listening line within {timeout}s; log: {self.log_tail()}")
            try:
                raw = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if raw is None:
                self._kill_quietly()
                raise RuntimeError(f"gatehouse exited before listening (rc={proc.poll()}); log: {self.log_tail()}")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if first is None:
                first = text
            m = LISTEN_RE.match(text)
            if m:
                self.port = int(m.group(1))
                return self
            # The contract says the listening line is the only stdout line;
            # anything before it is reported on failure via the log.

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``timeout``), by PID."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_quietly()

    def kill9(self) -> None:
        p = self.proc
        assert p is not None and p.poll() is None, "server is not running"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def restart(self, hard: bool = False) -> "GatehouseServer":
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def _kill_quietly(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-n:]
        except OSError:
            return "<no log>"

    # -- addresses -----------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """host:port (what the SDKs want, without scheme)."""
        assert self.port, "server not started"
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    # -- CLI -------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        self._use_database()
        cmd = [str(BIN), *args, "--data-dir", str(self.data_dir)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env,
                             stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed rc={res.returncode}\nstdout={res.stdout}\nstderr={res.stderr}")
        return res

    def create_key(self, account: str) -> Creds:
        out = self.cli("keys", "create", "--account", account, "--json").stdout
        obj = None
        for line in out.splitlines()[::-1]:
            line = line.strip()
            if line.startswith("{"):
                obj = json.loads(line)
                break
        if obj is None:
            obj = json.loads(out)
        assert obj["AccountName"] == account, obj
        return Creds(ak=obj["AccessKeyId"], secret=obj["AccessKeySecret"], account=account)

    def create_account(self, name: str | None = None) -> Creds:
        name = name or ("acct" + uuid.uuid4().hex[:12])
        self.cli("accounts", "create", name)
        return self.create_key(name)

    def disable_key(self, ak: str) -> None:
        self.cli("keys", "disable", ak)


def tls_of(srv: "GatehouseServer") -> tuple[int, Path, str]:
    """The HTTPS port, the certificate's path and its printed fingerprint, from the server's output."""
    deadline = time.monotonic() + 10
    while True:
        log = Path(srv.log_path).read_text()
        # The last start's banner (a restarted server has several).
        start = log.rfind("==== start #")
        port, cert = HTTPS_RE.search(log, start), CERT_RE.search(log, start)
        if port and cert:
            return int(port.group(1)), Path(cert.group(1)), cert.group(2)
        assert time.monotonic() < deadline, f"no HTTPS banner in {log[-2000:]}"
        time.sleep(0.05)


# --------------------------------------------------------------------------
# errors and the uniform client interface


class ApiError(Exception):
    def __init__(self, status: int | None, code: str | None, message: str | None,
                 request_id: str | None = None, body: Any = None, client: str = ""):
        super().__init__(f"[{client}] HTTP {status} {code}: {message} (RequestId {request_id})")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.body = body
        self.client = client


def flatten(params: dict | None) -> dict[str, str]:
    """API-name params with lists -> flat wire params (1-based, Tag.1.Key)."""
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            for i, item in enumerate(v, 1):
                if isinstance(item, dict):
                    for sk, sv in item.items():
                        if sv is not None:
                            out[f"{k}.{i}.{sk}"] = wire_str(sv)
                else:
                    out[f"{k}.{i}"] = wire_str(item)
        else:
            out[k] = wire_str(v)
    return out


def wire_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class ClassicApi:
    """aliyun-python-sdk-core 2.16.1 + aliyun-python-sdk-vpc 3.0.48."""

    kind = "classic"

    def __init__(self, endpoint: str, ak: str, secret: str, region: str = REGION, ca: str | None = None):
        """``ca``: speak HTTPS, trusting this CA bundle (the SDK's ``verify``)."""
        self.endpoint, self.ak, self.secret, self.region, self.ca = endpoint, ak, secret, region, ca
        self._clients: dict[str, Any] = {}

    def _client(self, region: str):
        from aliyunsdkcore.client import AcsClient

        c = self._clients.get(region)
        if c is None:
            c = AcsClient(self.ak, self.secret, region, auto_retry=False, verify=self.ca)
            self._clients[region] = c
        return c

    def request(self, action: str, params: dict | None = None):
        import importlib

        mod = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{action}Request")
        req = getattr(mod, f"{action}Request")()
        for k, v in (params or {}).items():
            if v is None or k == "RegionId":
                continue
            if isinstance(v, (list, tuple)):
                setter = getattr(req, f"set_{k}s", None) or getattr(req, f"set_{k}", None)
            else:
                setter = getattr(req, f"set_{k}", None)
            if setter is None:
                raise TypeError(f"classic {action}Request has no setter for {k}")
            setter(list(v) if isinstance(v, (list, tuple)) else v)
        req.set_endpoint(self.endpoint)
        req.set_protocol_type("https" if self.ca else "http")
        return req

    def call(self, action: str, params: dict | None = None) -> dict:
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        params = dict(params or {})
        region = params.get("RegionId") or self.region
        req = self.request(action, params)
        try:
            body = self._client(region).do_action_with_exception(req)
        except ServerException as e:
            raise ApiError(e.get_http_status(), e.get_error_code(), e.get_error_msg(), e.get_request_id(),
                           client=self.kind) from None
        out = json.loads(body)
        assert isinstance(out, dict), out
        check_success_body(out)
        return out


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


class TeaApi:
    """alibabacloud-vpc20160428 7.2.2 on alibabacloud-tea-openapi 0.4.6."""

    def __init__(self, endpoint: str, ak: str, secret: str, region: str = REGION, v2: bool = False,
                 ca: str | None = None):
        """``ca``: speak HTTPS, trusting this CA bundle (the runtime option ``ca``)."""
        from alibabacloud_tea_openapi import models as open_api_models
        from alibabacloud_tea_util import models as util_models
        from alibabacloud_vpc20160428.client import Client as VpcClient

        self.kind = "tea-v2" if v2 else "tea-acs3"
        self.region = region
        self.runtime = util_models.RuntimeOptions(ca=ca) if ca else None
        config = open_api_models.Config(
            access_key_id=ak,
            access_key_secret=secret,
            endpoint=endpoint,
            protocol="https" if ca else "http",
            region_id=region,
        )
        if v2:
            config.signature_algorithm = "v2"
        self.client = VpcClient(config)

    def call(self, action: str, params: dict | None = None) -> dict:
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
        from alibabacloud_vpc20160428 import models

        params = dict(params or {})
        req_cls = getattr(models, f"{action}Request")
        req = req_cls()
        if hasattr(req, "region_id") and "RegionId" not in params:
            params["RegionId"] = self.region
        req = req.from_map(params)
        # from_map silently drops names the model does not know: refuse that,
        # so that a test never believes it sent a parameter it did not.
        sent = req.to_map()
        missing = [k for k in params if params[k] is not None and k not in sent]
        if missing:
            raise TypeError(f"Tea {action}Request does not carry {missing}")
        try:
            if self.runtime is None:
                resp = getattr(self.client, _snake(action))(req)
            else:
                resp = getattr(self.client, f"{_snake(action)}_with_options")(req, self.runtime)
        except AlibabaCloudException as e:
            data = e.data if isinstance(e.data, dict) else None
            msg = (data or {}).get("Message", e.message)
            raise ApiError(e.status_code, e.code, msg, e.request_id, body=data, client=self.kind) from None
        assert resp.status_code == 200, resp.status_code
        return resp.body.to_map()


# --------------------------------------------------------------------------
# signatures (clients.md section 2)


def pct(s: Any) -> str:
    """RFC 3986 percent-encoding: keep A-Z a-z 0-9 - _ . ~, upper-case hex."""
    return urllib.parse.quote(str(s), safe="-_.~", encoding="utf-8")


def rpc_v1_canonical(params: dict[str, str]) -> str:
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items(), key=lambda kv: pct(kv[0])) if k != "Signature")


def rpc_v1_string_to_sign(method: str, params: dict[str, str]) -> str:
    return f"{method.upper()}&%2F&{pct(rpc_v1_canonical(params))}"


def rpc_v1_sign(method: str, params: dict[str, str], secret: str) -> str:
    sts = rpc_v1_string_to_sign(method, params)
    mac = hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def acs3_canonical_request(method: str, query: dict[str, str], headers: dict[str, str],
                           signed_headers: list[str], body: bytes, path: str = "/") -> str:
    cq = "&".join(sorted(f"{pct(k)}={pct(v)}" for k, v in query.items()))
    lower = {k.lower(): v for k, v in headers.items()}
    ch = "".join(f"{h}:{str(lower[h]).strip()}\n" for h in signed_headers)
    return "\n".join([method.upper(), path, cq, ch, ";".join(signed_headers), hashlib.sha256(body).hexdigest()])


def acs3_sign(method: str, query: dict[str, str], headers: dict[str, str], signed_headers: list[str],
              body: bytes, secret: str, path: str = "/") -> str:
    cr = acs3_canonical_request(method, query, headers, signed_headers, body, path)
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(cr.encode()).hexdigest()
    return hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()


def iso_timestamp(dt: _dt.datetime | None = None) -> str:
    dt = dt or _dt.datetime.now(_dt.timezone.utc)
    return dt.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_nonce() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------
# raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    sent_params: dict[str, str] = field(default_factory=dict)
    string_to_sign: str = ""

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8"))

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self) -> str:
        return f"RawResponse(status={self.status}, body={self.body[:600]!r})"


def _encode(params: dict[str, str], style: str = "rfc3986") -> str:
    """Wire encodings the real clients use (the signature never depends on them).

    rfc3986: space %20, * %2A (classic SDK, pop-core); plus: space +, ~ raw
    (Tea python, form bodies); loose: %20 but * ! ' ( ) left raw (Tea Node).
    """
    if style == "plus":
        return urllib.parse.urlencode(list(params.items()), quote_via=urllib.parse.quote_plus)
    safe = "-_.~" if style == "rfc3986" else "-_.~*!'()"
    return "&".join(f"{urllib.parse.quote(k, safe=safe)}={urllib.parse.quote(v, safe=safe)}" for k, v in params.items())


class RawClient:
    """Hand-signed requests for the negative protocol tests (RPC v1 and ACS3)."""

    def __init__(self, endpoint: str, ak: str = ROOT_AK, secret: str = ROOT_SECRET, region: str = REGION):
        self.endpoint, self.ak, self.secret, self.region = endpoint, ak, secret, region
        host, port = endpoint.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def send(self, method: str, target: str, body: bytes | Iterable[bytes] | None = None,
             headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None,
             chunked: bool = False) -> RawResponse:
        own = conn is None
        conn = conn or self.connection()
        try:
            hdrs = {"Host": self.endpoint, "Accept-Encoding": "identity"}
            hdrs.update(headers or {})
            if chunked:
                data = body if body is not None else b""
                if isinstance(data, (bytes, bytearray)):
                    half = max(1, len(data) // 2)
                    data = [bytes(data[:half]), bytes(data[half:])]
                conn.request(method, target, body=iter([c for c in data if c]), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, target, body=body, headers=hdrs)
            resp = conn.getresponse()
            return RawResponse(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            if own:
                conn.close()

    # -- RPC v1 -------------------------------------------------------------

    def rpc_params(self, action: str | None, params: dict | None = None, *, fmt: str | None = "JSON",
                   version: str | None = VERSION, timestamp: str | None = None, nonce: str | None = None,
                   region: str | None = "default", ak: str | None = None, omit: Iterable[str] = ()) -> dict[str, str]:
        p: dict[str, str] = {}
        if action is not None:
            p["Action"] = action
        if version is not None:
            p["Version"] = version
        if fmt is not None:
            p["Format"] = fmt
        p["AccessKeyId"] = ak or self.ak
        p["SignatureMethod"] = "HMAC-SHA1"
        p["SignatureVersion"] = "1.0"
        p["SignatureNonce"] = nonce or new_nonce()
        p["Timestamp"] = timestamp or iso_timestamp()
        if region == "default":
            region = self.region
        if region is not None:
            p["RegionId"] = region
        p.update(flatten(params))
        for k in omit:
            p.pop(k, None)
        return p

    def rpc(self, action: str | None, params: dict | None = None, *, method: str = "POST",
            placement: str = "query", secret: str | None = None, signature: str | None = None,
            sign_method: str | None = None, style: str = "rfc3986", chunked: bool = False,
            headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None,
            **common) -> RawResponse:
        """Signed RPC v1 request.

        placement: "query" (classic SDK / pop-core GET), "body" (pop-core POST:
        everything incl. Signature in a form body), "split" (common params in
        the query, action params in the body).
        """
        p = self.rpc_params(action, params, **common)
        sts = rpc_v1_string_to_sign(sign_method or method, p)
        sig = signature if signature is not None else rpc_v1_sign(sign_method or method, p, secret or self.secret)
        signed = dict(p)
        signed["Signature"] = sig
        common_names = {"Action", "Version", "Format", "AccessKeyId", "SignatureMethod", "SignatureVersion",
                        "SignatureNonce", "Timestamp", "Signature", "RegionId"}
        if placement == "query":
            q, b = signed, {}
        elif placement == "body":
            q, b = {}, signed
        elif placement == "split":
            q = {k: v for k, v in signed.items() if k in common_names}
            b = {k: v for k, v in signed.items() if k not in common_names}
        else:
            raise ValueError(placement)
        target = "/" + ("?" + _encode(q, style) if q else "")
        hdrs = {"x-acs-action": p.get("Action", ""), "x-acs-version": p.get("Version", "")}
        body: bytes | None = None
        if b:
            body = _encode(b, style).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif method.upper() == "POST":
            body = b""
        hdrs.update(headers or {})
        r = self.send(method, target, body, hdrs, conn=conn, chunked=chunked)
        r.sent_params = p
        r.string_to_sign = sts
        return r

    # -- ACS3 ------------------------------------------------------------------

    def acs3(self, action: str, params: dict | None = None, *, method: str = "POST", region: str | None = "default",
             date: str | None = None, nonce: str | None = None, secret: str | None = None, ak: str | None = None,
             version: str = VERSION, body_params: dict | None = None, content_sha256: str | None = None,
             conn: http.client.HTTPConnection | None = None, chunked: bool = False,
             wire_body: bytes | None = None, signed_extra: dict[str, str] | None = None,
             path: str = "/", signed_path: str | None = None) -> RawResponse:
        """Signed ACS3-HMAC-SHA256 request (what both Tea SDKs send by default).

        wire_body: send these bytes instead of the signed body (tamper test).
        path: where it goes (the control API's `/_gatehouse/<operation>`); signed_path: the
        canonical URI signed, when not `path` (tamper test).
        """
        q = {}
        if region == "default":
            region = self.region
        if region is not None:
            q["RegionId"] = region
        q.update(flatten(params))
        body = _encode(flatten(body_params)).encode() if body_params else b""
        headers = {
            "host": self.endpoint,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": date or iso_timestamp(),
            "x-acs-signature-nonce": nonce or new_nonce(),
            "x-acs-content-sha256": content_sha256 or hashlib.sha256(body).hexdigest(),
            "accept": "application/json",
        }
        if body:
            headers["content-type"] = "application/x-www-form-urlencoded"
        headers.update(signed_extra or {})
        signed = sorted(headers)
        sig = acs3_sign(method, q, headers, signed, body, secret or self.secret, signed_path or path)
        headers["Authorization"] = (
            f"ACS3-HMAC-SHA256 Credential={ak or self.ak},SignedHeaders={';'.join(signed)},Signature={sig}"
        )
        target = path + ("?" + _encode(q) if q else "")
        send_headers = {k: v for k, v in headers.items() if k != "host"}
        if wire_body is not None:
            body = wire_body
        return self.send(method, target, body if method.upper() == "POST" or body else None, send_headers,
                         conn=conn, chunked=chunked)


class RawApi:
    """The uniform interface over RawClient (RPC v1, pop-core-like POST form body)."""

    kind = "raw"

    def __init__(self, endpoint: str, ak: str, secret: str, region: str = REGION, placement: str = "body"):
        self.raw = RawClient(endpoint, ak, secret, region)
        self.placement = placement

    def call(self, action: str, params: dict | None = None) -> dict:
        params = dict(params or {})
        region = params.pop("RegionId", self.raw.region)
        r = self.raw.rpc(action, params, placement=self.placement, region=region)
        obj = r.json()
        if r.status >= 300:
            raise ApiError(r.status, obj.get("Code"), obj.get("Message"), obj.get("RequestId"), body=obj,
                           client=self.kind)
        assert r.status == 200, r
        check_success_body(obj)
        return obj


def make_api(kind: str, endpoint: str, creds: Creds, region: str = REGION, ca: str | None = None):
    """``ca``: over HTTPS to ``endpoint`` (host:port), trusting that CA bundle."""
    if kind == "classic":
        return ClassicApi(endpoint, creds.ak, creds.secret, region, ca=ca)
    if kind == "tea-acs3":
        return TeaApi(endpoint, creds.ak, creds.secret, region, ca=ca)
    if kind == "tea-v2":
        return TeaApi(endpoint, creds.ak, creds.secret, region, v2=True, ca=ca)
    if kind == "raw":
        return RawApi(endpoint, creds.ak, creds.secret, region)
    raise ValueError(kind)


KINDS = ("classic", "tea-acs3", "tea-v2")


# --------------------------------------------------------------------------
# assertions and domain helpers


def check_success_body(body: dict) -> None:
    """Every success: a RequestId, and never a top-level Code (pop-core would call it an error)."""
    assert "Code" not in body, f"success body carries Code: {body}"
    assert body.get("RequestId"), f"success body without RequestId: {body}"


def expect_error(fn: Callable[[], Any], status: int, code: str) -> ApiError:
    try:
        got = fn()
    except ApiError as e:
        assert (e.status, e.code) == (status, code), f"expected HTTP {status} {code}, got {e}"
        assert e.request_id, f"error without RequestId: {e}"
        return e
    raise AssertionError(f"expected HTTP {status} {code}, but the call succeeded: {got!r}")


def check_error_body(resp: RawResponse, status: int, code: str) -> dict:
    assert resp.status == status, resp
    body = resp.json()
    for f in ERROR_FIELDS:
        assert f in body, f"error body lacks {f}: {body}"
    assert body["Code"] == code, body
    assert body["RequestId"], body
    assert isinstance(body["Message"], str) and body["Message"], body
    return body


def create_gateway(api, **over) -> dict:
    params = {"VpcId": vpc_id(), "Bandwidth": 10}
    params.update(over)
    out = api.call("CreateVpnGateway", params)
    assert VPN_ID_RE.match(out.get("VpnGatewayId", "")), out
    out["_params"] = params
    return out


def describe_gateway(api, gw_id: str, **extra) -> dict:
    return api.call("DescribeVpnGateway", {"VpnGatewayId": gw_id, **extra})


def gateway_status(api, gw_id: str) -> str | None:
    """Status, or None once the gateway is gone (404 NotFound)."""
    try:
        return describe_gateway(api, gw_id)["Status"]
    except ApiError as e:
        if e.status == 404 and e.code == "InvalidVpnGatewayInstanceId.NotFound":
            return None
        raise


def wait_status(api, gw_id: str, status: str, timeout: float = 10.0) -> dict:
    def check():
        d = describe_gateway(api, gw_id)
        return d if d.get("Status") == status else None

    return wait_for(check, timeout=timeout, what=f"{gw_id} to be {status}")


def wait_gone(api, gw_id: str, timeout: float = 10.0) -> None:
    wait_for(lambda: gateway_status(api, gw_id) is None, timeout=timeout, what=f"{gw_id} to disappear")


def active_gateway(api, **over) -> dict:
    g = create_gateway(api, **over)
    wait_status(api, g["VpnGatewayId"], "active")
    return g


def items(body: dict, outer: str, inner: str) -> list:
    """The list inside an Alibaba wrapper ({"VpnGateways": {"VpnGateway": [...]}})."""
    assert outer in body, f"missing {outer}: {body}"
    wrapper = body[outer]
    assert isinstance(wrapper, dict), f"{outer} must be a wrapper object, got {wrapper!r}"
    lst = wrapper.get(inner, [])
    assert isinstance(lst, list), f"{outer}.{inner} must be a list: {wrapper!r}"
    return lst


def tags_of(obj: dict) -> dict[str, str]:
    tags = obj.get("Tags") or {}
    lst = tags.get("Tag", []) if isinstance(tags, dict) else tags
    return {t["Key"]: t.get("Value", "") for t in lst}


# --------------------------------------------------------------------------
# the control API (/_gatehouse/<operation>)


class ControlClient:
    """The control API, signed the way ``gatehouse ctl`` signs it: RPC v1 over a form body,
    with the operation named as the signed ``Action``. ``creds=None`` sends it unsigned."""

    def __init__(self, endpoint: str, creds: Creds | None = Creds(ROOT_AK, ROOT_SECRET)):
        self.endpoint, self.creds = endpoint, creds

    def send(self, operation: str, params: dict | None = None, *, action: str | None = None) -> RawResponse:
        p = {"Action": action or operation, **{k: str(v) for k, v in (params or {}).items()}}
        if self.creds is not None:
            p.update({"AccessKeyId": self.creds.ak, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
                      "SignatureNonce": new_nonce(), "Timestamp": iso_timestamp(), "Format": "JSON"})
            p["Signature"] = rpc_v1_sign("POST", p, self.creds.secret)
        raw = RawClient(self.endpoint)
        return raw.send("POST", f"/_gatehouse/{operation}", _encode(p).encode(),
                        {"Content-Type": "application/x-www-form-urlencoded"})

    def call(self, operation: str, params: dict | None = None) -> dict:
        r = self.send(operation, params)
        assert r.status == 200, f"{operation}: {r} {r.body[:500]!r}"
        return r.json()

    def get(self, path: str) -> RawResponse:
        return RawClient(self.endpoint).send("GET", path)
