"""PostgreSQL and Redis servers of a test's own, to stop, freeze and restart at will.

Nothing here touches the machine's shared servers: each server runs from a temporary
directory on a free loopback port and ends with the test. PostgreSQL is Debian's build
(``pg_config --bindir``, or ``POSTGRES_BINDIR``); initdb refuses to run as root, so as root
the cluster belongs to the ``postgres`` account.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _missing(what: str) -> None:
    message = f"fault tests need {what}"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


def _wait_for_port(port: int, *, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port}")


def postgres_bindir() -> Path | None:
    configured = os.environ.get("POSTGRES_BINDIR")
    if configured:
        return Path(configured)
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        return candidates[-1] if candidates else None
    output = subprocess.run(  # noqa: S603 - pg_config from PATH, fixed arguments
        [pg_config, "--bindir"], capture_output=True, text=True, check=True
    )
    bindir = Path(output.stdout.strip())
    # Debian's pg_config (from libpq-dev) may name a directory without the server.
    if not (bindir / "initdb").exists():
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        return candidates[-1] if candidates else None
    return bindir


@dataclass
class PostgresCluster:
    """One postmaster; ``url`` names its ``postgres`` database over TCP."""

    bindir: Path
    data: Path
    port: int
    as_user: str | None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *arguments: str) -> list[str]:
        if self.as_user is None:
            return list(arguments)
        return ["runuser", "-u", self.as_user, "--", *arguments]

    def initialise(self) -> None:
        subprocess.run(  # noqa: S603 - the server binaries, fixed arguments
            self._command(
                str(self.bindir / "initdb"),
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "--encoding=UTF8",
                "-D",
                str(self.data),
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the server binaries, fixed arguments
            self._command(
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.data}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group: signals for the server never reach the test runner.
            start_new_session=True,
        )
        _wait_for_port(self.port, process=self.process, what="postgres")
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            answer = subprocess.run(  # noqa: S603 - the server binaries, fixed arguments
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if answer.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not start accepting connections")

    def stop(self) -> None:
        """A fast shutdown, as an operator or an orchestrator would do it."""
        if self.process is None:
            return
        self.resume()
        # The postmaster itself (under runuser, it is not our child); the pid file names it.
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGINT)
        self.process.wait(timeout=STARTUP_SECONDS)
        self.process = None

    def freeze(self) -> None:
        """Every server process stops where it stands, as in a network partition."""
        pids = self._server_pids()
        if not pids:
            return
        # The postmaster first, and its children listed only once it is stopped: listed
        # before, a backend it forked in between would run on through the freeze.
        os.kill(pids[0], signal.SIGSTOP)
        for pid in self._server_pids()[1:]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in reversed(self._server_pids()):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if self.process is not None and self.process.poll() is None:
            # runuser stops itself when its child stops (as su does), and stays stopped.
            self.process.send_signal(signal.SIGCONT)

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (each backend leads a process group of its own)."""
        if self.process is None or self.process.poll() is not None:
            return []
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError):
                # pid (comm) state ppid ...: comm may hold spaces, so split after it.
                fields = status.read_text().rpartition(")")[2].split()
                if int(fields[1]) == postmaster:
                    children.append(int(status.parent.name))
        return [postmaster, *children]


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A new cluster in a directory of its own under the system's temporary directory (as
    root, the postgres account must reach it: pytest's own temporary tree is private)."""
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        _missing("PostgreSQL's server binaries (initdb, postgres), or POSTGRES_BINDIR")
    assert bindir is not None
    folder = Path(tempfile.mkdtemp(prefix="gql-app-faults-"))
    try:
        data = folder / "pgdata"
        data.mkdir()
        as_user = None
        if os.geteuid() == 0:
            as_user = "postgres"
            account = pwd.getpwnam(as_user)
            for path in (folder, data):
                os.chown(path, account.pw_uid, account.pw_gid)
        cluster = PostgresCluster(bindir=bindir, data=data, port=free_port(), as_user=as_user)
        cluster.initialise()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class RedisServer:
    executable: str
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - redis-server from PATH, fixed arguments
            [
                self.executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(self.port, process=self.process, what="redis-server")

    def stop(self) -> None:
        if self.process is None:
            return
        self.resume()
        self.process.terminate()
        self.process.wait(timeout=STARTUP_SECONDS)
        self.process = None

    def freeze(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        _missing("redis-server")
    assert executable is not None
    server = RedisServer(executable=executable, folder=folder, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
