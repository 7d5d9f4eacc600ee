"""A throwaway PostgreSQL instance for the tests: Debian's server binaries, one directory.

The instance listens only on a Unix socket inside its own directory (no TCP), keeps fsync on
(the durability tests mean it), and is stopped by the PID in its postmaster.pid. As root, the
server and initdb run as the ``postgres`` system user (PostgreSQL refuses to run as root).

As a module::

    inst = Instance.create()            # a new directory under $TMPDIR, initdb'd and started
    inst.create_database("x"); inst.url("x"); inst.psql("select 1", "x"); inst.restart(); inst.stop()

As a command (what scripts/test.sh uses)::

    eval "$(python tests/sdk/pg.py start --dir D --database x)"   # prints export lines
    python tests/sdk/pg.py url --dir D --database x                # host=D port=… user=postgres dbname=x
    python tests/sdk/pg.py psql --dir D --database x "select 1"
    python tests/sdk/pg.py stop --dir D
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PSQL_TIMEOUT = 60.0
SUPERUSER = "postgres"

# What the test harness exports so that every test process uses the same instance.
ENV_SOCKET = "GATEHOUSE_TEST_PG_SOCKET"
ENV_PORT = "GATEHOUSE_TEST_PG_PORT"


def bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin (Debian's `postgresql` package)."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        v = Path(d).parent.name
        if re.fullmatch(r"\d+(\.\d+)?", v) and (Path(d) / "postgres").exists():
            found.append((tuple(int(x) for x in v.split(".")), Path(d)))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql/*/bin (Debian package `postgresql`)")
    return max(found)[1]


def available() -> bool:
    try:
        bin_dir()
        return True
    except RuntimeError:
        return False


# Loaded here, not in the child: once demoted it may not be allowed to read Python's own files.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(SUPERUSER)


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (a postmaster's backends and helpers)."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def _check_reachable(dir: Path, u: pwd.struct_passwd) -> None:
    """The server's user must be able to walk down to ``dir`` (a root-only 0700 parent, like
    mktemp's or pytest's, would stop it)."""
    for parent in dir.parents:
        st = parent.stat()
        bit = 0o100 if st.st_uid == u.pw_uid else 0o010 if st.st_gid == u.pw_gid else 0o001
        if not st.st_mode & bit:
            raise RuntimeError(f"{dir}: user {u.pw_name} cannot enter {parent}; put the instance under $TMPDIR")


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: whoever is its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Instance:
    """One PostgreSQL server: data in ``<dir>/data``, socket ``<dir>/.s.PGSQL.<port>``."""

    def __init__(self, dir: Path, port: int, tied: bool = False):
        """``tied``: the server gets a fast shutdown when the thread that starts it dies (an
        instance a test process owns must not outlive it)."""
        self.dir = Path(dir)
        self.port = int(port)
        self.tied = tied
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._proc: subprocess.Popen | None = None

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, dir: Path | None = None, port: int | None = None, tied: bool = False) -> "Instance":
        """initdb (when the directory holds no cluster yet) and start.

        ``dir`` must be short: the socket path (``<dir>/.s.PGSQL.<port>``) has to fit in
        108 bytes, so the default is a fresh directory directly under $TMPDIR."""
        d = Path(dir) if dir else Path(tempfile.mkdtemp(prefix="ghpg-"))
        if len(f"{d}/.s.PGSQL.65535") > 107:
            raise RuntimeError(f"{d}: too long for a Unix socket path; use a shorter $TMPDIR")
        d.mkdir(parents=True, exist_ok=True)
        # Each instance has its own socket directory, so ports cannot clash there; a random one
        # still keeps the socket names (and the SysV key the server derives from it) apart. One
        # already running there keeps its own.
        inst = cls(d, port or _port_of(d) or random.randint(20000, 59999), tied)
        inst.init()
        inst.start()
        return inst

    @classmethod
    def from_env(cls) -> "Instance | None":
        """The instance scripts/test.sh exported, if any (socket directory and port)."""
        sock, port = os.environ.get(ENV_SOCKET), os.environ.get(ENV_PORT)
        if not sock or not port:
            return None
        return cls(Path(sock), int(port))

    def _demote(self) -> None:
        """In the child: become the server's user (initdb and postgres refuse root)."""
        os.setsid()
        u = _server_user()
        if u is not None:
            os.setgroups([])
            os.setgid(u.pw_gid)
            os.setuid(u.pw_uid)
        os.umask(0o077)
        if self.tied:  # after setuid, which clears it
            PR_SET_PDEATHSIG = 1
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGINT)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", HOME=str(self.dir))
        return env

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        u = _server_user()
        if u is not None:
            _check_reachable(self.dir, u)
            os.chown(self.dir, u.pw_uid, u.pw_gid)
        os.chmod(self.dir, 0o755)  # root and the server's user both reach the socket
        # --no-sync: only initdb's own writes skip fsync; the running server keeps fsync on.
        res = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            capture_output=True, text=True, timeout=START_TIMEOUT, env=self._env(), preexec_fn=self._demote,
            stdin=subprocess.DEVNULL, cwd=str(self.dir),
        )
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed rc={res.returncode}: {res.stdout}\n{res.stderr}")

    # -- lifecycle ----------------------------------------------------------------------

    def pid(self) -> int | None:
        """The postmaster's PID from postmaster.pid, if that process is running."""
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (OSError, IndexError, ValueError):
            return None
        return pid if _alive(pid) and self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """Guard against a recycled PID: the process must be a postgres serving our data dir."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(self.data).encode() in argv

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> "Instance":
        if self.running():
            return self
        log = open(self.log, "ab")
        try:
            self._proc = subprocess.Popen(
                [str(bin_dir() / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=", "-c", f"unix_socket_directories={self.dir}",
                 "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
                 "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._env(), cwd=str(self.dir),
                preexec_fn=self._demote,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited rc={self._proc.returncode}: {self.log_tail()}")
            if self._ready():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres not ready within {START_TIMEOUT}s: {self.log_tail()}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        res = subprocess.run([str(bin_dir() / "pg_isready"), "-q", "-h", str(self.dir), "-p", str(self.port),
                              "-U", SUPERUSER, "-d", "postgres", "-t", "2"],
                             capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        return res.returncode == 0

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT) by PID; SIGKILL if it is not gone within ``timeout``."""
        pid = self.pid()
        if pid is None:
            self._reap()
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        if not self._wait_gone(pid, timeout):
            self._kill9(pid)
        self._reap()

    def kill9(self) -> None:
        """Crash the server: SIGKILL the postmaster and its children (no shutdown checkpoint)."""
        pid = self.pid()
        assert pid is not None, "postgres is not running"
        self._kill9(pid)
        self._reap()

    def _kill9(self, pid: int) -> None:
        # Stopped first, so that it forks no backend between the listing and the kill (one left
        # would hold the shared memory, and the next start would refuse to run).
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass
        children = _children(pid)
        for p in [pid, *children]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in [pid, *children]:
            self._wait_gone(p, 10)

    def remove(self) -> None:
        """Stop, then delete the whole directory (data, socket, log)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> "Instance":
        self.stop()
        return self.start()

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                try:
                    self._proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            if not _alive(pid):
                return True
            time.sleep(0.05)
        return not _alive(pid)

    def _reap(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text("utf-8", "replace")[-n:]
        except OSError:
            return "<no log>"

    # -- databases ----------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        """libpq keyword form, over the socket."""
        return f"host={self.dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def psql(self, sql: str, dbname: str = "postgres", timeout: float = PSQL_TIMEOUT) -> str:
        """Run ``sql`` (unaligned, tuples only); its output. Raises on any SQL error."""
        res = subprocess.run(
            [str(bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
             "-p", str(self.port), "-U", SUPERUSER, "-d", dbname, "-c", sql],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=self._env(),
        )
        if res.returncode != 0:
            raise RuntimeError(f"psql {sql!r} on {dbname} failed rc={res.returncode}: {res.stderr}")
        return res.stdout

    def dump(self, dbname: str, timeout: float = PSQL_TIMEOUT) -> bytes:
        """Everything stored in ``dbname`` (pg_dump, plain SQL)."""
        res = subprocess.run(
            [str(bin_dir() / "pg_dump"), "-h", str(self.dir), "-p", str(self.port), "-U", SUPERUSER, dbname],
            capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=self._env(),
        )
        if res.returncode != 0:
            raise RuntimeError(f"pg_dump {dbname} failed rc={res.returncode}: {res.stderr!r}")
        return res.stdout

    def has_database(self, name: str) -> bool:
        return self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_literal(name)}'").strip() == "1"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE unless it exists; its URL."""
        if not self.has_database(name):
            self.psql(f'CREATE DATABASE "{_ident(name)}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{_ident(name)}" WITH (FORCE)')

    def exports(self) -> str:
        return "".join(f"export {k}={shlex.quote(v)}\n"
                       for k, v in ((ENV_SOCKET, str(self.dir)), (ENV_PORT, str(self.port))))


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    return name


def _literal(name: str) -> str:
    return _ident(name)


def _port_of(dir: Path) -> int | None:
    """The port of the instance running in ``dir`` (line 4 of its postmaster.pid), or None."""
    try:
        return int((dir / "data" / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="initdb if needed, start, print export lines")
    s.add_argument("--dir", required=True, type=Path)
    s.add_argument("--port", type=int)
    s.add_argument("--database", action="append", default=[],
                   help="also create this database (repeatable)")
    t = sub.add_parser("stop", help="stop the instance in DIR by its PID")
    t.add_argument("--dir", required=True, type=Path)
    u = sub.add_parser("url", help="print a database's URL (libpq keyword form)")
    u.add_argument("--dir", required=True, type=Path)
    u.add_argument("--database", required=True)
    q = sub.add_parser("psql", help="run one SQL statement")
    q.add_argument("--dir", required=True, type=Path)
    q.add_argument("--database", default="postgres")
    q.add_argument("sql")
    a = ap.parse_args(argv)

    if a.cmd == "start":
        inst = Instance.create(a.dir.resolve(), a.port)
        for db in a.database:
            inst.create_database(db)
        sys.stdout.write(inst.exports())
        return 0
    port = _port_of(a.dir.resolve())
    if port is None:
        print(f"{a.dir}: no PostgreSQL running there", file=sys.stderr)
        return 0 if a.cmd == "stop" else 1
    inst = Instance(a.dir.resolve(), port)
    if a.cmd == "stop":
        inst.stop()
        return 0
    if a.cmd == "url":
        print(inst.url(a.database))
        return 0
    sys.stdout.write(inst.psql(a.sql, a.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
