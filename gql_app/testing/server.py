"""The real gql-app, as `gql-app serve` runs it, in a child process on a free loopback port,
with settings of the test suite's choosing and nothing from the suite's own environment."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from gql_app.config import Settings

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_CHARACTERS = 2000
# Every variable gql-app reads; the suite's own values of them never reach the server.
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)


@dataclass(frozen=True)
class GqlAppServer:
    """A running server: where it answers, and the settings it was started with."""

    url: str
    settings: Mapping[str, str]
    log_path: Path
    pid: int

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def jwks_url(self) -> str:
        """Its published signing keys (JWKS), which services verify its access tokens with."""
        return f"{self.url}/.well-known/jwks.json"

    @property
    def secret_key(self) -> str:
        """Its SECRET_KEY. Access tokens are not signed with it: they verify with the keys at
        ``jwks_url``."""
        return self.settings["SECRET_KEY"]

    @property
    def database_url(self) -> str:
        return self.settings["DATABASE_URL"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(settings: Mapping[str, str]) -> dict[str, str]:
    inherited = {
        name: value for name, value in os.environ.items() if name.upper() not in SETTING_NAMES
    }
    return {**inherited, **settings}


@contextmanager
def running_server(settings: Mapping[str, str], *, folder: Path) -> Iterator[GqlAppServer]:
    """``gql-app serve`` with ``settings`` (environment variables), run in ``folder``.

    The folder is its working directory, so no ``.env`` of the suite's is read, and holds its
    log (``gql-app.log``), which a failure to start quotes.
    """
    port = free_port()
    log_path = folder / "gql-app.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "gql_app.cli", "serve", "--host", HOST, "--port", str(port)],
            cwd=folder,
            env=server_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{HOST}:{port}"
    try:
        _wait_until_healthy(url, process, log_path)
        yield GqlAppServer(
            url=url, settings=MappingProxyType(dict(settings)), log_path=log_path, pid=process.pid
        )
    finally:
        _stop(process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gql-app exited with status {process.returncode} before it answered; "
                f"its log ({log_path}) ends:\n{_log_tail(log_path)}"
            )
        if _healthy(url):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"gql-app did not answer {url}/healthz within {START_TIMEOUT_SECONDS:.0f} s; "
        f"its log ({log_path}) ends:\n{_log_tail(log_path)}"
    )


def _log_tail(log_path: Path) -> str:
    return log_path.read_text("utf-8", "replace")[-LOG_TAIL_CHARACTERS:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # The supervisor stops its worker and waits for its requests, as on a deploy.
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
