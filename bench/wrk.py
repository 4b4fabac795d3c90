"""Load from a separate process: wrk with a script that checks every answer."""

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WRK_MISSING = (
    "wrk is not installed. On Debian or Ubuntu: `sudo apt-get install wrk`; "
    "elsewhere see https://github.com/wg/wrk"
)
SCRIPT = Path(__file__).with_name("request.lua")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str = ""
    authorization: str = ""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    failures: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk_executable() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(WRK_MISSING)
    return found


async def run_wrk(
    base_url: str, request: Request, *, seconds: float, connections: int
) -> LoadResult:
    process = await asyncio.create_subprocess_exec(
        wrk_executable(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--script",
        str(SCRIPT),
        base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "BENCH_METHOD": request.method,
            "BENCH_PATH": request.path,
            "BENCH_BODY": request.body,
            "BENCH_AUTHORIZATION": request.authorization,
        },
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {stderr.decode().strip()}")
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    return LoadResult(
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        failures=report["failures"] + report["socket_errors"],
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
    )
