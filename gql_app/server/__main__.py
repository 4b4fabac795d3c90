"""`python -m gql_app.server [FACTORY] --host H --port P [--workers N]`: what `gql-app serve`
runs, for another application factory (the benchmark's baseline)."""

import argparse

from gql_app.config import get_settings
from gql_app.server import APPLICATION, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gql_app.server")
    parser.add_argument("factory", nargs="?", default=APPLICATION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serve(
        get_settings(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        app_factory=args.factory,
    )


if __name__ == "__main__":
    main()
