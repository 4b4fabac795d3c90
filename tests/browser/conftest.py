"""A headless Chromium for the browser tests, and where their screenshots go.

The browser is the system's (Debian's ``chromium``; ``CHROMIUM_PATH`` names another), not
one Playwright downloads: these machines reach no download host. Without it the tests are
skipped, or fail when ``CI`` is set (CI must never silently skip them).
"""

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

CHROMIUM_PATH_ENV = "CHROMIUM_PATH"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
ARTIFACTS_ENV = "TEST_ARTIFACTS_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

CHROMIUM_ARGS = [
    # Containers and CI runners usually lack the namespaces Chromium's sandbox needs.
    "--no-sandbox",
    "--disable-gpu",
    # Keep the browser's own traffic (updates, field trials) out of the request log.
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium_path() -> str:
    configured = os.environ.get(CHROMIUM_PATH_ENV, DEFAULT_CHROMIUM)
    found = shutil.which(configured)
    if found is not None:
        return found
    reason = (
        f"no Chromium at {configured}: install Debian's chromium package or set {CHROMIUM_PATH_ENV}"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but there is {reason}", pytrace=False)
    pytest.skip(reason)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium_path()
    async with async_playwright() as playwright:
        # Playwright gives each launch a fresh, temporary profile of its own.
        chromium = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots are kept for people to look at after the run."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
