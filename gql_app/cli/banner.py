"""What `gql-app serve` tells a developer before it starts: where to go and what is on.

Nothing secret: the database URL is shown with its password hidden.
"""

from ipaddress import ip_address

from sqlalchemy import URL

from gql_app.api.dev_mail import DEV_MAIL_PATH
from gql_app.api.http import GRAPHQL_PATH
from gql_app.cli.database import redacted
from gql_app.config import Settings


def base_url(host: str, port: int) -> str:
    """The address a browser on this machine opens for a server bound to ``host``."""
    try:
        address = ip_address(host.strip("[]"))
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:  # bound to every interface: this machine is one of them
        address = ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


def _email_line(settings: Settings, *, base: str, workers: int) -> str:
    if settings.email_backend == "smtp":
        return f"sent through {settings.smtp_host}:{settings.smtp_port} (SMTP)"
    if settings.email_backend == "memory":
        return "kept in memory, never delivered (EMAIL_BACKEND=memory)"
    line = "printed in this terminal (EMAIL_BACKEND=console)"
    if settings.dev_mail_enabled:
        line += f"; also listed at {base}{DEV_MAIL_PATH}"
        if workers > 1:
            line += " (by the worker that answers)"
    return line


def startup_banner(
    settings: Settings, *, database_url: URL, host: str, port: int, workers: int
) -> str:
    if port == 0:
        base = f"http://{host}:<port>"
        where = f"{host}, on a port the system picks (uvicorn's line below names it)"
    else:
        base = base_url(host, port)
        where = base
    if settings.graphiql_enabled:
        api = ("GraphiQL", f"{base}{GRAPHQL_PATH}")
    else:
        api = ("GraphQL", f"POST {base}{GRAPHQL_PATH} (GraphiQL off)")
    rate_limits = "on" if settings.rate_limit_enabled else "off"
    rows = [
        api,
        ("Database", redacted(database_url)),
        ("Email", _email_line(settings, base=base, workers=workers)),
        ("Rate limits", f'{rate_limits} (see README, "Rate limits")'),
        ("Stop", "Ctrl+C"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"gql-app ({settings.environment}) starting on {where}"]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines) + "\n"
