"""A throwaway PostgreSQL cluster for fault tests that restart the server.

Tests that stop or restart PostgreSQL must never do it to the machine's shared
server, so this module makes a cluster of its own with ``initdb`` in a fresh
temporary directory and runs it with ``pg_ctl`` on a free loopback port, with
trust authentication and durability off (the data is thrown away).

``initdb`` and ``postgres`` refuse to run as root. When the tests run as root
(containers, CI), every server command runs as the ``postgres`` user through
``runuser``, in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

# initdb + first start take ~1-3 s on a loaded 2-core machine; pg_ctl's own
# wait is bounded by this so a wedged server fails the test instead of hanging.
PG_CTL_WAIT = 60
# The account that owns the cluster when the tests run as root (Debian's).
PG_USER = "postgres"


class ClusterUnavailable(Exception):
    """The machine cannot run a private cluster (no binaries, no user to run them)."""


def find_bindir() -> str:
    """The directory holding ``initdb`` and ``pg_ctl`` (POOLKIT_TEST_PG_BINDIR overrides).

    Raises:
        ClusterUnavailable: none was found.
    """
    override = os.environ.get("POOLKIT_TEST_PG_BINDIR")
    candidates = [override] if override else []
    # Debian/Ubuntu keep server binaries off PATH, one directory per major version.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda d: int(d.split("/")[-2]), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(initdb))
    for bindir in candidates:
        if all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return bindir
    raise ClusterUnavailable("PostgreSQL server binaries (initdb, pg_ctl)")


class PgCluster:
    """A private PostgreSQL cluster in a temp directory, on a loopback port.

    Args:
        port: the TCP port to listen on (127.0.0.1 only).
    """

    def __init__(self, port: int) -> None:
        self.bindir = find_bindir()
        self.port = port
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam(PG_USER)
            except KeyError:
                raise ClusterUnavailable(
                    f"a {PG_USER!r} user to run initdb (it refuses root)"
                ) from None
            if shutil.which("runuser") is None:
                raise ClusterUnavailable("runuser, to run initdb as a non-root user")
        self.root = Path(tempfile.mkdtemp(prefix="poolkit-pg-"))
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres connect_timeout=5"

    def _run(self, args: Sequence[str]) -> None:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self._owner is not None:
            cmd = ["runuser", "-u", self._owner.pw_name, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PG_CTL_WAIT + 30, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\nserver log:\n{log}"
            )

    def init(self) -> PgCluster:
        """``initdb`` the data directory (superuser ``postgres``, trust auth)."""
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        return self

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            [
                "pg_ctl",
                action,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(PG_CTL_WAIT),
                *extra,
            ]
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start")

    def restart(self) -> None:
        """Restart in fast mode (what an operator or a failover does): every
        backend is told to end its session (FATAL 57P01), then the server
        comes back; returns once it accepts connections."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop the server (immediate mode: nothing to keep)."""
        self._run(["pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w"])

    def destroy(self) -> None:
        """Stop the server if it runs, and delete the cluster's directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
