"""A network-namespace lab for the gateway's end-to-end tests (test_gateway_ipsec.py).

A ``Lab`` builds bridges, namespaces and customer-side strongSwan daemons on this machine and
removes every one of them again: at ``__exit__``/``cleanup()``, at interpreter exit (atexit) and
on SIGTERM. It records each thing it creates, under a prefix of its own (``t`` + 4 random hex
digits + ``-``), and it never kills by name: a PID is signalled only while ``ip netns identify``
places it in one of the lab's namespaces.

    with Lab() as lab:
        up = lab.bridge("u")                                   # tb<hex>u, no address
        gw = lab.host("gw", up, "198.19.7.1/24", forward=True)  # namespace + veth on the bridge
        c = lab.charon(gw)                                      # charon-systemd in that namespace
        c.load(swanctl_conf_text)
        assert lab.ping(other_ns, "10.2.0.2")

The daemons are strongSwan's ``charon-systemd`` with their own ``strongswan.conf`` (``STRONGSWAN_CONF``),
so several run side by side. When the kernel has no ESP (``ip xfrm state add … proto esp`` fails
in a throwaway namespace) they use the ``kernel-libipsec`` plugin: ESP in userspace through a TUN
device, UDP-encapsulated only (shared/research/dataplane.md).

Gatehouse's own namespaces (``<prefix><VpnGatewayId>``) are registered with ``adopt_gateway`` so that
a test that failed before Gatehouse cleaned up still leaves nothing behind. A root lab also sweeps
what labs of dead test processes left (``sweep_stale_labs``: their /tmp directory names the owner).

Only addresses the tests pick (198.18.0.0/15, 10.x, 169.254.x) are used, all inside namespaces the
lab creates; no namespace gets a default route.
"""

from __future__ import annotations

import atexit
import ipaddress
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

CHARON_CANDIDATES = ("/usr/sbin/charon-systemd", "/usr/lib/ipsec/charon-systemd")
SWANCTL_CANDIDATES = ("/usr/sbin/swanctl",)

# Plugins of the customer-side daemons. kernel-libipsec (when used) must come before
# kernel-netlink: it then owns SAs and policies, kernel-netlink keeps routes and addresses.
CHARON_PLUGINS = ("random nonce aes sha1 sha2 md5 hmac gmp kdf openssl pem pkcs1 pkcs8 x509 revocation "
                  "constraints pubkey attr {kernel} kernel-netlink socket-default vici updown")
SWANCTL_PLUGINS = "random nonce aes sha1 sha2 md5 hmac gmp openssl pem pkcs1 pkcs8 x509 pubkey"
SWANCTL_SUBDIRS = ("x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa",
                   "ecdsa", "bliss", "pkcs8", "pkcs12")


class LabError(RuntimeError):
    pass


class _LoudSkipReport:
    """Repeats why a lab test did not run at the very end of pytest's report."""

    def __init__(self, title: str, msg: str):
        self.title, self.msg = title, msg

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("!", f"{self.title} did NOT run", red=True, bold=True)
        terminalreporter.write_line(self.msg, red=True, bold=True)


def skip_loudly(request, what: str, problem: str, needs: str) -> None:
    """Skips `what` ("gateway end-to-end tests") because of `problem`, loudly: on stderr, as a
    warning and again at the end of the report. With GATEHOUSE_REQUIRE_DATAPLANE=1 (set by
    ./scripts/test.sh when it could install the packages) it fails instead. `needs` says what the
    tests need."""
    import pytest

    msg = (f"{what.upper()} SKIPPED on this machine: {problem}. They need {needs}; ./scripts/test.sh "
           f"installs the packages when it runs as root.")
    if os.environ.get("GATEHOUSE_REQUIRE_DATAPLANE") == "1":
        pytest.fail(msg + " GATEHOUSE_REQUIRE_DATAPLANE=1 demands that they run.", pytrace=False)
    pm = request.config.pluginmanager
    name = "gatehouse-skip-" + re.sub(r"\W+", "-", what.lower())
    if not pm.has_plugin(name):
        pm.register(_LoudSkipReport(what, msg), name)
        try:
            sys.__stderr__.write(f"\n!!!!! {msg}\n")
            sys.__stderr__.flush()
        except Exception:
            pass
        warnings.warn(msg)
    pytest.skip(msg)


# --------------------------------------------------------------------------- commands


def run(cmd: Iterable[Any], *, timeout: float = 15.0, check: bool = True, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command (never through a shell), bounded by ``timeout``."""
    argv = [str(c) for c in cmd]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                             stdin=None if input is not None else subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}\nstdout={e.stdout!r}\nstderr={e.stderr!r}")
    if check and res.returncode != 0:
        raise LabError(f"failed (rc={res.returncode}): {' '.join(argv)}\nstdout={res.stdout}\nstderr={res.stderr}")
    return res


def nsrun(ns: str, cmd: Iterable[Any], **kw) -> subprocess.CompletedProcess:
    """Run a command inside network namespace ``ns``."""
    return run(["ip", "netns", "exec", ns, *cmd], **kw)


def _which(candidates: Iterable[str], name: str) -> str | None:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return shutil.which(name)


def charon_binary() -> str | None:
    return _which(CHARON_CANDIDATES, "charon-systemd")


def swanctl_binary() -> str | None:
    return _which(SWANCTL_CANDIDATES, "swanctl")


def netns_list() -> set[str]:
    res = run(["ip", "-j", "netns", "list"], check=False)
    if res.returncode != 0 or not res.stdout.strip():
        return set()
    return {n["name"] for n in json.loads(res.stdout)}


def link_exists(name: str, ns: str | None = None) -> bool:
    cmd = ["ip"] + (["-n", ns] if ns else []) + ["link", "show", "dev", name]
    return run(cmd, check=False).returncode == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists" for kill(0): treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_namespaces(pid: int) -> set[str]:
    """The names of the network namespaces PID lives in (``ip netns identify``); empty if none/dead."""
    res = run(["ip", "netns", "identify", str(pid)], check=False, timeout=5)
    if res.returncode != 0:
        return set()
    return {line.strip() for line in res.stdout.splitlines() if line.strip()}


def netns_pids(ns: str) -> list[int]:
    res = run(["ip", "netns", "pids", ns], check=False, timeout=5)
    if res.returncode != 0:
        return []
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _pdeathsig() -> None:
    """In the child before exec: die with the test process (SIGTERM: charon then sends DELETEs)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------- machine checks

_problem_cache: list[str | None] = []


def machine_problem() -> str | None:
    """Why this machine cannot run the namespace/strongSwan tests, or None when it can."""
    if _problem_cache:
        return _problem_cache[0]
    problem = _machine_problem()
    _problem_cache.append(problem)
    return problem


def _machine_problem() -> str | None:
    if os.geteuid() != 0:
        return "not running as root (network namespaces and bridges need root)"
    for tool in ("ip", "ping", "sysctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if charon_binary() is None:
        return "charon-systemd is not installed (Debian: charon-systemd)"
    if swanctl_binary() is None:
        return "swanctl is not installed (Debian: strongswan-swanctl)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (kernel-libipsec needs TUN)"
    probe = f"tprobe{secrets.token_hex(3)}"
    res = run(["ip", "netns", "add", probe], check=False)
    if res.returncode != 0:
        return f"`ip netns add` fails: {res.stderr.strip() or res.stdout.strip()}"
    try:
        res = run(["ip", "link", "add", f"{probe}b", "type", "bridge"], check=False)
        if res.returncode != 0:
            return f"cannot create a bridge: {res.stderr.strip()}"
        run(["ip", "link", "del", f"{probe}b"], check=False)
    finally:
        run(["ip", "netns", "del", probe], check=False)
    return None


_esp_cache: list[bool] = []


def kernel_has_esp(ns: str) -> bool:
    """Whether the kernel can hold an ESP state, tried in the (throwaway) namespace ``ns``."""
    key = "0x" + "00" * 16
    auth = "0x" + "11" * 20
    res = run(["ip", "-n", ns, "xfrm", "state", "add", "src", "198.18.255.1", "dst", "198.18.255.2",
               "proto", "esp", "spi", "0x1000", "mode", "tunnel", "enc", "cbc(aes)", key,
               "auth", "hmac(sha1)", auth], check=False)
    if res.returncode == 0:
        run(["ip", "-n", ns, "xfrm", "state", "flush"], check=False)
    return res.returncode == 0


# --------------------------------------------------------------------------- swanctl output


def parse_pretty(text: str) -> list[tuple[str, dict]]:
    """``swanctl --pretty`` output → [(message name, tree)]. Sections are dicts, lists are lists."""
    out: list[tuple[str, dict]] = []
    stack: list[Any] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not stack:
            if line.endswith("{"):
                top: dict = {}
                out.append((line[:-1].strip(), top))
                stack.append(top)
            continue
        cur = stack[-1]
        if line in ("}", "]"):
            stack.pop()
        elif isinstance(cur, list):
            cur.append(line)
        elif line.endswith(" {") or line == "{":
            sub: dict = {}
            cur[line[:-1].strip()] = sub
            stack.append(sub)
        elif line.endswith(" [") or line == "[":
            lst: list = []
            key = line[:-1].strip()
            cur[key[:-1].strip() if key.endswith("=") else key] = lst
            stack.append(lst)
        elif " = " in line:
            k, v = line.split(" = ", 1)
            cur[k.strip()] = v.strip()
        elif line.endswith(" ="):
            cur[line[:-2].strip()] = ""
    return out


# --------------------------------------------------------------------------- the lab


_live_labs: "set[Lab]" = set()
_signal_installed = [False]


def _cleanup_all() -> None:
    for lab in list(_live_labs):
        try:
            lab.cleanup()
        except Exception:
            pass


def _on_sigterm(signum, frame):  # pragma: no cover - only on an external SIGTERM
    # Unwind normally, so fixtures' finalizers and atexit run and remove what the labs made.
    raise SystemExit(128 + signum)


def _install_exit_hooks() -> None:
    if _signal_installed[0]:
        return
    _signal_installed[0] = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def sweep_stale_labs() -> list[str]:
    """Remove what labs of dead test processes left (a SIGKILLed pytest runs no cleanup): each
    root lab's directory holds an ``owner`` file (pid, its start time, prefix); when that process
    is gone, the namespaces with its prefix (and what runs inside them), its veths and bridges
    and its directory are removed. Returns what was removed."""
    done: list[str] = []
    for d in Path("/tmp").glob("gl????*"):
        owner = d / "owner"
        try:
            pid_s, start, prefix = owner.read_text().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if pid_alive(pid) and _start_time(pid) == start:
            continue
        hx = prefix[1:-1]
        if not (prefix.startswith("t") and prefix.endswith("-") and len(hx) == 4):
            continue
        for ns in sorted(netns_list()):
            if ns.startswith(prefix):
                pids = [p for p in netns_pids(ns) if ns in pid_namespaces(p)]
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                for p in pids:
                    end = time.monotonic() + 2
                    while pid_alive(p) and time.monotonic() < end:
                        time.sleep(0.02)
                run(["ip", "netns", "del", ns], check=False)
                done.append(f"namespace {ns}")
        res = run(["ip", "-j", "link", "show"], check=False)
        for link in json.loads(res.stdout or "[]"):
            name = link.get("ifname", "")
            if name.startswith(f"t{hx}v") or name.startswith(f"tb{hx}"):
                run(["ip", "link", "del", name], check=False)
                done.append(f"link {name}")
        shutil.rmtree(d, ignore_errors=True)
        done.append(f"directory {d}")
    return done


class Lab:
    """Namespaces, bridges, veths and daemons under one unique prefix; all removed at cleanup.

    ``Lab()`` is a root lab (its own prefix and /tmp directory). ``lab.scope()`` returns a child
    that shares them but removes only what it created when it is closed (one test's hosts, say);
    a root's cleanup also cleans the children still open.
    """

    def __init__(self, _parent: "Lab | None" = None):
        self.parent = _parent
        if _parent is None:
            _install_exit_hooks()
            self.swept = sweep_stale_labs()
            existing = netns_list()
            while True:
                self.hex = secrets.token_hex(2)
                self.prefix = f"t{self.hex}-"
                if not any(n.startswith(self.prefix) for n in existing) and \
                        not link_exists(f"tb{self.hex}u") and not link_exists(f"t{self.hex}v1"):
                    break
            # Short on purpose: unix socket paths must stay under 108 bytes.
            self.dir = Path(tempfile.mkdtemp(prefix=f"gl{self.hex}", dir="/tmp"))
            (self.dir / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())} {self.prefix}\n")
            self._counter = itertools.count(1)
            self._esp: bool | None = None
        else:
            self.hex, self.prefix, self.dir = _parent.hex, _parent.prefix, _parent.dir
            self._counter = _parent._counter
            _parent.children.append(self)
        self.children: list[Lab] = []
        self.namespaces: list[str] = []
        self.bridges: list[str] = []
        self.links: list[str] = []                  # host-side veth names in the root namespace
        self.charons: list[Charon] = []
        self.procs: dict[int, tuple[str, subprocess.Popen | None]] = {}  # pid -> (netns, Popen)
        self.gateways: list[tuple[str, Path | None]] = []  # (netns, charon pid file) made by Gatehouse
        self.closed = False
        _live_labs.add(self)

    # -- context manager ----------------------------------------------------

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def scope(self) -> "Lab":
        return Lab(_parent=self)

    def _n(self) -> int:
        return next(self._counter)

    # -- kernel capabilities --------------------------------------------------

    @property
    def root(self) -> "Lab":
        return self if self.parent is None else self.parent.root

    def kernel_esp(self) -> bool:
        """Whether the kernel has ESP (else the daemons use kernel-libipsec). Probed once per root lab."""
        root = self.root
        if root._esp is None:
            override = os.environ.get("GATEHOUSE_LAB_KERNEL_ESP")
            if override in ("0", "1"):
                root._esp = override == "1"
            else:
                ns = self.netns("esp")
                try:
                    root._esp = kernel_has_esp(ns)
                finally:
                    self.delete_netns(ns)
        return root._esp

    # -- building blocks ------------------------------------------------------

    def bridge(self, tag: str | None = None) -> str:
        """A new bridge in the root namespace, up, without an address: ``tb<hex><tag>`` (≤15 chars)."""
        name = f"tb{self.hex}{tag if tag is not None else self._n()}"
        if len(name) > 15:
            raise LabError(f"bridge name {name!r} is longer than 15 characters")
        run(["ip", "link", "add", name, "type", "bridge"])
        self.bridges.append(name)
        run(["ip", "link", "set", name, "up"])
        return name

    def netns(self, name: str) -> str:
        """A new namespace ``<prefix><name><n>``: lo up, IPv6 off."""
        ns = f"{self.prefix}{name}{self._n()}"
        run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self.sysctl(ns, {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})
        return ns

    def sysctl(self, ns: str, values: dict[str, Any]) -> None:
        nsrun(ns, ["sysctl", "-q", "-w", *[f"{k}={v}" for k, v in values.items()]])

    def attach(self, ns: str, bridge: str, addr: str | Iterable[str] | None, ifname: str = "eth0") -> str:
        """A veth pair: ``ifname`` (with ``addr``, CIDR) in ``ns``, its peer on ``bridge``. Returns
        the peer's name (the host side, in the root namespace), e.g. to cut the link with
        ``lab.link_down(peer)``."""
        if len(ifname) > 15:
            raise LabError(f"interface name {ifname!r} is longer than 15 characters")
        host = f"t{self.hex}v{self._n()}"
        run(["ip", "link", "add", host, "type", "veth", "peer", "name", ifname, "netns", ns])
        self.links.append(host)
        run(["ip", "link", "set", host, "master", bridge])
        run(["ip", "link", "set", host, "up"])
        addrs = [addr] if isinstance(addr, str) else list(addr or [])
        for a in addrs:
            run(["ip", "-n", ns, "addr", "add", a, "dev", ifname])
        run(["ip", "-n", ns, "link", "set", ifname, "up"])
        return host

    def host(self, name: str, bridge: str | None = None, addr: str | Iterable[str] | None = None,
             ifname: str = "eth0", forward: bool = False) -> str:
        """A namespace attached to ``bridge`` with ``addr``; ``forward`` turns on IPv4 forwarding."""
        ns = self.netns(name)
        if forward:
            self.sysctl(ns, {"net.ipv4.ip_forward": 1})
        if bridge is not None:
            self.attach(ns, bridge, addr, ifname)
        return ns

    def route(self, ns: str, dst: str, via: str | None = None, dev: str | None = None,
              table: str | int | None = None, src: str | None = None) -> None:
        cmd = ["ip", "-n", ns, "route", "replace", dst]
        if via:
            cmd += ["via", via]
        if dev:
            cmd += ["dev", dev]
        if src:
            cmd += ["src", src]
        if table is not None:
            cmd += ["table", str(table)]
        run(cmd)

    def rule(self, ns: str, *spec: Any) -> None:
        run(["ip", "-n", ns, "rule", "add", *spec])

    def link_down(self, name: str, ns: str | None = None) -> None:
        run(["ip"] + (["-n", ns] if ns else []) + ["link", "set", name, "down"])

    def link_up(self, name: str, ns: str | None = None) -> None:
        run(["ip"] + (["-n", ns] if ns else []) + ["link", "set", name, "up"])

    def exec(self, ns: str, *cmd: Any, timeout: float = 15.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in ``ns`` (bounded)."""
        return nsrun(ns, cmd, timeout=timeout, check=check)

    def ping(self, ns: str, dst: str, count: int = 1, timeout: float = 2.0, src: str | None = None,
             interval: float = 0.2) -> bool:
        """True when ``count`` echo replies come back within ``timeout`` seconds."""
        deadline = max(1, int(round(timeout)))
        cmd = ["ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", f"{min(timeout, 2.0):g}",
               "-w", str(deadline)]
        if src:
            cmd += ["-I", src]
        res = nsrun(ns, [*cmd, dst], timeout=deadline + 5, check=False)
        return res.returncode == 0

    def wait_ping(self, ns: str, dst: str, timeout: float = 10.0, src: str | None = None) -> float:
        """Ping until one reply comes back; returns the seconds it took. Raises AssertionError."""
        t0 = time.monotonic()
        while True:
            if self.ping(ns, dst, count=1, timeout=1.0, src=src):
                return time.monotonic() - t0
            if time.monotonic() - t0 >= timeout:
                raise AssertionError(f"no ping reply {ns} -> {dst} within {timeout}s")

    def icmp_echos_in(self, ns: str) -> int:
        """Echo requests this namespace has received (its own /proc/net/snmp)."""
        text = nsrun(ns, ["cat", "/proc/net/snmp"]).stdout
        rows = [line.split() for line in text.splitlines() if line.startswith("Icmp:")]
        head, vals = rows[0], rows[1]
        return int(vals[head.index("InEchos")])

    # -- processes ------------------------------------------------------------

    def spawn(self, ns: str, cmd: Iterable[Any], log: Path, env: dict | None = None) -> subprocess.Popen:
        """Start a daemon in ``ns`` in its own session (never in our foreground), recording its PID.
        ``ip netns exec`` and ``env`` exec into the daemon, so the PID is the daemon's own."""
        argv = ["ip", "netns", "exec", ns]
        if env:
            argv += ["env", *[f"{k}={v}" for k, v in env.items()]]
        argv += [str(c) for c in cmd]
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_pdeathsig, close_fds=True)
        self.procs[proc.pid] = (ns, proc)
        return proc

    def signal_pid(self, pid: int, sig: int, allowed: Iterable[str] | None = None) -> bool:
        """Signal ``pid`` only if it still lives in one of ``allowed`` (default: the lab's namespaces)."""
        allowed = set(allowed if allowed is not None else self.all_namespaces())
        if not pid_alive(pid):
            return False
        if not (pid_namespaces(pid) & allowed):
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def charon(self, ns: str, name: str | None = None, **settings) -> "Charon":
        """Start a customer-side charon in ``ns`` (see ``Charon``)."""
        c = Charon(self, ns, name or f"c{self._n()}", **settings)
        self.charons.append(c)
        c.start()
        return c

    def frr(self, ns: str, bgpd_conf: str) -> "Frr":
        """Start FRR's zebra and bgpd in ``ns`` with ``bgpd_conf`` (see ``Frr``)."""
        return Frr(self, ns, bgpd_conf)

    # -- Gatehouse's namespaces -------------------------------------------------

    def adopt_gateway(self, netns: str, pid_file: Path | str | None = None) -> None:
        """Remove ``netns`` (made by Gatehouse for a gateway) at cleanup if it is still there,
        killing the charon whose PID is in ``pid_file`` (and anything else inside) first."""
        if not netns.startswith(self.prefix):
            raise LabError(f"{netns} does not carry the lab's prefix {self.prefix}")
        self.gateways.append((netns, Path(pid_file) if pid_file else None))

    def reap_gateway(self, netns: str, pid_file: Path | None) -> list[str]:
        """Kill what runs in ``netns`` and delete it. Returns what had to be done (empty: nothing left)."""
        done: list[str] = []
        pids: list[int] = []
        if pid_file is not None:
            try:
                pids.append(int(pid_file.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        if netns in netns_list():
            pids += netns_pids(netns)
        live = [p for p in dict.fromkeys(pids) if pid_alive(p) and netns in pid_namespaces(p)]
        if live:
            done.append(f"killed {live} in {netns}")
            self._terminate(live, {netns})
        if netns in netns_list():
            run(["ip", "netns", "del", netns], check=False)
            done.append(f"deleted {netns}")
        return done

    # -- cleanup ----------------------------------------------------------------

    def all_namespaces(self) -> set[str]:
        s = set(self.namespaces) | {g for g, _ in self.gateways}
        for c in self.children:
            s |= c.all_namespaces()
        return s

    def _terminate(self, pids: list[int], allowed: set[str], grace: float = 5.0) -> None:
        """SIGTERM all at once, wait up to ``grace``, SIGKILL what is left (namespace-checked)."""
        sent = [p for p in pids if self.signal_pid(p, signal.SIGTERM, allowed)]
        deadline = time.monotonic() + grace
        for p in sent:
            while pid_alive(p) and time.monotonic() < deadline:
                self._reap_child(p)
                time.sleep(0.05)
        for p in pids:
            if pid_alive(p):
                self.signal_pid(p, signal.SIGKILL, allowed)
        for p in pids:
            end = time.monotonic() + 2.0
            while pid_alive(p) and time.monotonic() < end:
                self._reap_child(p)
                time.sleep(0.02)
            self._reap_child(p)

    def _reap_child(self, pid: int) -> None:
        entry = self.procs.get(pid)
        if entry and entry[1] is not None:
            try:
                entry[1].poll()
            except Exception:
                pass

    def delete_netns(self, ns: str) -> None:
        pids = [p for p in netns_pids(ns)]
        if pids:
            self._terminate(pids, {ns})
        run(["ip", "netns", "del", ns], check=False)
        if ns in self.namespaces:
            self.namespaces.remove(ns)

    def cleanup(self) -> list[str]:
        """Remove everything this lab (and its open children) made. Returns problems (empty: clean)."""
        if self.closed:
            return []
        self.closed = True
        problems: list[str] = []

        def attempt(what: str, fn: Callable[[], Any]) -> None:
            try:
                fn()
            except Exception as e:  # keep going: every resource gets its chance
                problems.append(f"{what}: {e}")

        for child in list(self.children):
            problems += child.cleanup()
        # 1. our daemons: SIGTERM together (they send DELETEs), then SIGKILL.
        mine = set(self.namespaces)
        attempt("stop daemons", lambda: self._terminate(list(self.procs), mine | self.all_namespaces()))
        for c in self.charons:
            c.running = False
        # 2. Gatehouse's leftover gateway namespaces (the test failed before it cleaned up).
        for ns, pid_file in self.gateways:
            attempt(f"reap {ns}", lambda ns=ns, pf=pid_file: self.reap_gateway(ns, pf))
        # 3. our namespaces (anything unrecorded still inside is killed first: it is in our namespace).
        for ns in list(self.namespaces):
            attempt(f"delete {ns}", lambda ns=ns: self.delete_netns(ns))
        # 4. a root lab also sweeps namespaces carrying its unique prefix (made by Gatehouse for
        #    gateways the test did not get to register).
        if self.parent is None:
            for ns in sorted(netns_list()):
                if ns.startswith(self.prefix):
                    problems.append(f"unregistered namespace {ns} was left: removed")
                    attempt(f"reap {ns}", lambda ns=ns: self.reap_gateway(ns, None))
        # 5. veths whose namespace end is gone are gone too; remove what remains, then bridges.
        for link in self.links:
            if link_exists(link):
                attempt(f"delete {link}", lambda link=link: run(["ip", "link", "del", link], check=False))
        for br in self.bridges:
            if link_exists(br):
                attempt(f"delete {br}", lambda br=br: run(["ip", "link", "del", br], check=False))
        # 6. check.
        problems += self.leftovers()
        if self.parent is None:
            if os.environ.get("GATEHOUSE_LAB_KEEP") == "1":
                (self.dir / "owner").unlink(missing_ok=True)  # kept for reading: no sweep either
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        _live_labs.discard(self)
        if self.parent is not None and self in self.parent.children:
            self.parent.children.remove(self)
        return problems

    def leftovers(self) -> list[str]:
        """What of this lab still exists (namespaces, links, bridges, processes)."""
        left: list[str] = []
        existing = netns_list()
        for ns in self.namespaces + [g for g, _ in self.gateways]:
            if ns in existing:
                left.append(f"namespace {ns}")
        if self.parent is None:
            left += [f"namespace {ns}" for ns in existing if ns.startswith(self.prefix)
                     and f"namespace {ns}" not in left]
        for name in self.links + self.bridges:
            if link_exists(name):
                left.append(f"link {name}")
        for pid in self.procs:
            if pid_alive(pid):
                left.append(f"process {pid}")
        return left


# --------------------------------------------------------------------------- captures


def veth_peer(ns: str, ifname: str) -> str | None:
    """The root-namespace name of the peer of veth ``ifname`` in ``ns`` (None if not found)."""
    res = run(["ip", "-n", ns, "-j", "link", "show", "dev", ifname], check=False)
    if res.returncode != 0:
        return None
    idx = json.loads(res.stdout)[0].get("link_index")
    for link in json.loads(run(["ip", "-j", "link", "show"]).stdout):
        if link.get("ifindex") == idx:
            return link["ifname"]
    return None


class Capture:
    """A bounded tcpdump on an interface of the root namespace (or of ``ns``):
    ``with Capture("t12abv3", "icmp or udp port 4500") as cap: ...`` then ``cap.lines``."""

    def __init__(self, iface: str, bpf: str, ns: str | None = None, limit: float = 30.0):
        argv = ["timeout", str(int(limit)), "tcpdump", "-l", "-n", "-p", "-i", iface, bpf]
        if ns:
            argv = ["ip", "netns", "exec", ns, *argv]
        self.argv = argv
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Capture":
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def err() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                if "listening on" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=err, daemon=True).start()
        if not ready.wait(10):
            raise LabError(f"tcpdump did not start: {self.argv}")
        time.sleep(0.1)  # let the socket's filter settle before traffic starts
        return self

    def __exit__(self, *exc) -> None:
        p = self.proc
        if p is None:
            return
        time.sleep(0.2)  # the last packets
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # our own child (held by Popen, so its PID cannot be reused)
        try:
            out, _ = p.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=5)
        self.lines = [line for line in (out or "").splitlines() if line.strip()]


# --------------------------------------------------------------------------- charon


class Charon:
    """A customer-side strongSwan (``charon-systemd``) in one namespace, with its own
    strongswan.conf, VICI socket, log and swanctl directory under the lab's directory.

    ``settings`` go into the ``charon { }`` section (e.g. ``retransmit_timeout=2``)."""

    def __init__(self, lab: Lab, ns: str, name: str, **settings):
        self.lab, self.ns, self.name = lab, ns, name
        self.dir = lab.dir / name
        self.conf = self.dir / "strongswan.conf"
        self.vici = self.dir / "charon.vici"
        self.log = self.dir / "charon.log"
        self.out = self.dir / "charon.out"
        self.swanctl_dir = self.dir / "swanctl"
        self.swanctl_conf = self.swanctl_dir / "swanctl.conf"
        self.settings = {
            # Short retransmissions keep failures (and DPD) quick: 2 + 3 + 4.5 + 6.75 s ≈ 16 s.
            "retransmit_timeout": "2.0",
            "retransmit_base": "1.5",
            "retransmit_tries": "3",
            **{k: str(v) for k, v in settings.items()},
        }
        self.proc: subprocess.Popen | None = None
        self.running = False
        if len(f"unix://{self.vici}") > 100:
            raise LabError(f"VICI socket path too long: {self.vici}")

    @property
    def uri(self) -> str:
        return f"unix://{self.vici}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def strongswan_conf(self) -> str:
        kernel = "" if self.lab.kernel_esp() else "kernel-libipsec"
        load = " ".join(CHARON_PLUGINS.format(kernel=kernel).split())
        extra = "\n".join(f"  {k} = {v}" for k, v in self.settings.items())
        return f"""# customer-side charon of the gateway e2e lab ({self.ns})
charon {{
  load = {load}
  i_dont_care_about_security_and_use_aggressive_mode_psk = yes
  install_routes = yes
  routing_table = 220
  routing_table_prio = 220
{extra}
  plugins {{
    vici {{
      socket = {self.uri}
    }}
  }}
  filelog {{
    main {{
      path = {self.log}
      time_format = %H:%M:%S
      ike_name = yes
      append = yes
      default = 1
      flush_line = yes
    }}
  }}
}}
charon-systemd {{
  journal {{
    default = -1
  }}
}}
swanctl {{
  load = {SWANCTL_PLUGINS}
  socket = {self.uri}
}}
"""

    def start(self, timeout: float = 10.0) -> "Charon":
        assert not self.running, "already running"
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in SWANCTL_SUBDIRS + ("conf.d",):
            (self.swanctl_dir / sub).mkdir(parents=True, exist_ok=True)
        self.swanctl_conf.write_text("include conf.d/*.conf\n")
        self.conf.write_text(self.strongswan_conf())
        try:
            self.vici.unlink()
        except FileNotFoundError:
            pass
        self.proc = self.lab.spawn(self.ns, [charon_binary()], self.out, env={"STRONGSWAN_CONF": str(self.conf)})
        self.running = True
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise LabError(f"charon in {self.ns} exited rc={self.proc.returncode}: {self.tail()}")
            if self.vici.exists() and self.swanctl("--stats", check=False, timeout=5).returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise LabError(f"charon in {self.ns} did not answer on {self.vici} within {timeout}s: {self.tail()}")
            time.sleep(0.05)

    def swanctl(self, *args: str, timeout: float = 15.0, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, STRONGSWAN_CONF=str(self.conf), SWANCTL_DIR=str(self.swanctl_dir))
        return run([swanctl_binary(), *args, "--uri", self.uri], timeout=timeout, check=check, env=env)

    # -- configuration -----------------------------------------------------------

    def load(self, conf_text: str, name: str = "peer") -> str:
        """Install ``conf_text`` as conf.d/<name>.conf and load everything (swanctl --load-all)."""
        (self.swanctl_dir / "conf.d" / f"{name}.conf").write_text(conf_text)
        return self.load_all()

    def unload(self, name: str = "peer") -> str:
        """Remove conf.d/<name>.conf and reload: its connections are unloaded. (strongSwan 5.9
        then also terminates the CHILD_SAs of `start_action = start` children; IKE SAs stay.)"""
        try:
            (self.swanctl_dir / "conf.d" / f"{name}.conf").unlink()
        except FileNotFoundError:
            pass
        return self.load_all()

    def load_all(self) -> str:
        return self.swanctl("--load-all", "--noprompt", "--file", str(self.swanctl_conf)).stdout

    # -- state ---------------------------------------------------------------------

    def sas(self) -> list[dict]:
        """IKE SAs: dicts with the VICI fields plus ``name`` and ``children`` (list of child dicts)."""
        res = self.swanctl("--list-sas", "--pretty", check=False, timeout=10)
        if res.returncode != 0:
            return []
        out = []
        for msg, tree in parse_pretty(res.stdout):
            if not msg.startswith("list-sa"):
                continue
            for name, ike in tree.items():
                if not isinstance(ike, dict):
                    continue
                children = []
                for cname, child in (ike.get("child-sas") or {}).items():
                    if isinstance(child, dict):
                        children.append({"key": cname, **child})
                out.append({"name": name, **ike, "children": children})
        return out

    def ike_sas(self, name: str | None = None, state: str | None = "ESTABLISHED") -> list[dict]:
        return [s for s in self.sas() if (name is None or s["name"] == name)
                and (state is None or s.get("state") == state)]

    def installed(self, ike: str | None = None) -> list[dict]:
        """INSTALLED CHILD_SAs (of IKE SAs named ``ike``), each with ``ike`` and ``ike_uniqueid`` added."""
        out = []
        for s in self.sas():
            if ike is not None and s["name"] != ike:
                continue
            for c in s["children"]:
                if c.get("state") == "INSTALLED":
                    out.append({**c, "ike": s["name"], "ike_uniqueid": s.get("uniqueid")})
        return out

    def wait_installed(self, ike: str | None = None, timeout: float = 15.0, count: int = 1) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.installed(ike)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"no INSTALLED CHILD_SA ({ike or 'any'}) in {self.ns} within {timeout}s;"
                                     f" SAs={self.sas()}\n{self.tail()}")
            time.sleep(0.05)

    def conns(self) -> list[str]:
        res = self.swanctl("--list-conns", "--pretty", check=False, timeout=10)
        names = []
        for msg, tree in parse_pretty(res.stdout):
            if msg.startswith("list-conn"):
                names += [k for k, v in tree.items() if isinstance(v, dict)]
        return names

    # -- control -------------------------------------------------------------------

    def initiate(self, child: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        """swanctl --initiate --child ``child`` (not checked: read ``returncode``)."""
        return self.swanctl("--initiate", "--child", child, "--timeout", str(int(max(1, timeout))),
                            check=False, timeout=timeout + 5)

    def terminate(self, ike: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        """swanctl --terminate --ike ``ike`` (sends DELETE; not checked)."""
        return self.swanctl("--terminate", "--ike", ike, "--timeout", str(int(max(1, timeout))),
                            check=False, timeout=timeout + 5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.running = False
            return
        self.lab._terminate([self.proc.pid], {self.ns}, grace=grace)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self.running = False

    def tail(self, n: int = 3000) -> str:
        parts = []
        for p in (self.out, self.log):
            try:
                parts.append(f"--- {p}\n" + p.read_text("utf-8", "replace")[-n:])
            except OSError:
                pass
        return "\n".join(parts)


def cidr_host(net: str, index: int) -> str:
    """The ``index``-th address of ``net`` (negative: from the top, -2 = last host)."""
    n = ipaddress.ip_network(net)
    return str(n[index])


__all__ = ["Lab", "Charon", "Capture", "LabError", "veth_peer", "sweep_stale_labs", "machine_problem",
           "kernel_has_esp", "run", "nsrun", "netns_list", "link_exists", "pid_alive", "pid_namespaces",
           "parse_pretty", "cidr_host"]


FRR_DIR = Path("/usr/lib/frr")


def frr_problem() -> str | None:
    """Why FRR cannot run here, or None."""
    if not (FRR_DIR / "bgpd").exists() or not (FRR_DIR / "zebra").exists() or shutil.which("vtysh") is None:
        return "FRR (/usr/lib/frr/zebra, bgpd; vtysh) is not installed"
    return None


class Frr:
    """A customer-side FRR: zebra and bgpd in one namespace, started by hand (no systemd, no
    watchfrr, no /etc/frr) with files of their own in the lab's directory, as the user ``frr``."""

    def __init__(self, lab: Lab, ns: str, bgpd_conf: str):
        self.lab, self.ns = lab, ns
        self.dir = lab.dir / f"frr-{ns}"
        self.dir.mkdir(parents=True, exist_ok=True)
        # FRR drops to user frr, which must get through the lab's (root-only) directory to its own.
        lab.dir.chmod(0o711)
        (self.dir / "zebra.conf").write_text("")
        (self.dir / "bgpd.conf").write_text(bgpd_conf)
        for f in [self.dir, *self.dir.iterdir()]:
            shutil.chown(f, "frr", "frr")
        self.procs: dict[str, subprocess.Popen] = {}
        for daemon in ("zebra", "bgpd"):
            d = self.dir
            cmd = [FRR_DIR / daemon, "-f", d / f"{daemon}.conf", "-i", d / f"{daemon}.pid", "-z", d / "zserv.api",
                   "--vty_socket", d, "-P", "0", "-u", "frr", "-g", "frr", "--log", f"file:{d / daemon}.log"]
            self.procs[daemon] = lab.spawn(ns, cmd, d / f"{daemon}.out")
            if daemon == "zebra":
                deadline = time.monotonic() + 10
                while not (d / "zserv.api").exists():
                    if time.monotonic() > deadline:
                        raise LabError(f"zebra did not start: {self.logs()}")
                    time.sleep(0.05)

    def vtysh(self, command: str) -> str:
        res = run(["vtysh", "--vty_socket", self.dir, "-c", command], timeout=10, check=False)
        return res.stdout + res.stderr

    def stop_bgpd(self) -> None:
        """Stops bgpd (it closes its sessions with a Cease)."""
        self.lab.signal_pid(self.procs["bgpd"].pid, signal.SIGTERM)
        self.procs["bgpd"].wait(timeout=10)

    def logs(self) -> str:
        def tail(p: Path) -> str:
            try:
                return p.read_text("utf-8", "replace")[-2500:]
            except OSError:
                return "<none>"
        return "\n".join(f"--- {n}.log:\n{tail(self.dir / f'{n}.log')}" for n in ("zebra", "bgpd"))
