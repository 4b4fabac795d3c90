"""The application with one more route, which holds the event loop: a stand-in for the bug
the watchdog exists for (no route of the real application does this)."""

import time

from fastapi import FastAPI

from gql_app.main import create_app as create_real_app


def create_app() -> FastAPI:
    app = create_real_app()

    @app.get("/stall")
    async def stall() -> dict[str, str]:
        time.sleep(120)  # noqa: ASYNC251 - blocking the loop is the point
        return {"status": "never"}

    @app.get("/stall-in-c")
    async def stall_in_c() -> dict[str, int]:
        # One C call that never lets go of the interpreter: no Python thread runs meanwhile.
        return {"sum": sum(range(10**12))}

    return app
