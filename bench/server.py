"""The real app served as `gql-app serve` serves it, in a child process, as benchmarks and
live-server tests drive it."""

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SECRET_KEY = "benchmark-secret-key-that-is-long-enough-0123456789"  # noqa: S105 - benchmark only


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    # The supervisor; the application runs in its worker processes.
    pid: int

    def worker_pids(self) -> list[int]:
        children = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                # pid (comm) state ppid ...: comm may hold spaces, so split after it.
                fields = status.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid and _is_worker(status.parent / "cmdline"):
                children.append(int(status.parent.name))
        return sorted(children)

    def peak_rss_bytes(self) -> int:
        """The largest high-water resident set (VmHWM) of the workers, read from /proc."""
        peaks = [_peak_rss_bytes(pid) for pid in self.worker_pids() or [self.pid]]
        return max(peaks)


def _is_worker(cmdline: Path) -> bool:
    # Workers are spawned by multiprocessing; the supervisor's other child tracks resources.
    try:
        return b"spawn_main" in cmdline.read_bytes()
    except OSError:
        return False


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not reported")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def production_environment(database_url: str, **overrides: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "production",
        # Production's cost, whatever the caller's environment says (a test suite's is lower).
        "PASSWORD_HASHING_COST": "standard",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "EMAIL_BACKEND": "memory",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }


async def _wait_until_up(base_url: str, server: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        for _ in range(600):
            if server.returncode is not None:
                raise RuntimeError(f"the server exited with status {server.returncode}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the server did not start")


@asynccontextmanager
async def serve(
    app_factory: str,
    environment: Mapping[str, str],
    *,
    workers: int = 1,
    output: Path | None = None,
) -> AsyncIterator[RunningServer]:
    """``workers`` supervised uvicorn workers, no access log, on a free loopback port.

    ``output``: a file for what the server writes (its logs), instead of this process's.
    """
    port = free_port()
    log = output.open("ab") if output is not None else None
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gql_app.server",
        app_factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        env={"LOG_LEVEL": "WARNING", **os.environ, **environment},
        stdout=log,
        stderr=log,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_up(base_url, server)
        yield RunningServer(base_url=base_url, pid=server.pid)
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()
        if log is not None:
            log.close()
