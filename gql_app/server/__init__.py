"""Serving the application: uvicorn, supervised, with the limits of server/protocol.py.

Every worker, one included, runs under uvicorn's process supervisor, which starts a new one
whenever a worker dies; a worker whose event loop stops turning exits on its own (see
gql_app/watchdog.py), so a stuck worker is replaced within seconds rather than never.
"""

import uvicorn
from uvicorn.supervisors import ChangeReload, Multiprocess

from gql_app.config import Settings

PROTOCOL = "gql_app.server.protocol:GuardedHttpToolsProtocol"
APPLICATION = "gql_app.main:create_app"


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    reload: bool = False,
    app_factory: str = APPLICATION,
) -> None:
    config = uvicorn.Config(
        app_factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        http=PROTOCOL,
        timeout_keep_alive=settings.server_keep_alive_seconds,
        # In-flight requests get their own deadline to finish in, then the worker stops.
        timeout_graceful_shutdown=int(settings.request_timeout_seconds) + 1,
        # The app logs each request itself, with its id and outcome, in the configured
        # format; uvicorn's plain-text access line would only repeat it.
        access_log=False,
        log_level=settings.log_level.lower(),
    )
    socket = config.bind_socket()
    if reload:
        ChangeReload(config, target=uvicorn.Server(config).run, sockets=[socket]).run()
    else:
        Multiprocess(config, sockets=[socket]).run()
