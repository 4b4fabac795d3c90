from dataclasses import dataclass

from gql_app.models.auth_session import IP_ADDRESS_MAX_LENGTH, USER_AGENT_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is on the other end of a request, as far as anyone can tell: the client's address
    (behind trusted proxies, see api/context.py) and its User-Agent."""

    user_agent: str | None = None
    ip_address: str | None = None

    @property
    def stored_user_agent(self) -> str | None:
        # Headers are client-controlled: keep what fits rather than fail the request.
        return self.user_agent[:USER_AGENT_MAX_LENGTH] if self.user_agent else None

    @property
    def stored_ip_address(self) -> str | None:
        return self.ip_address[:IP_ADDRESS_MAX_LENGTH] if self.ip_address else None
