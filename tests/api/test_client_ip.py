"""Which address a request counts against: the socket peer, or X-Forwarded-For behind proxies."""

from ipaddress import ip_network

import pytest

from gql_app.api.context import Network, client_ip

PROXIES: list[Network] = [ip_network("10.0.0.0/8"), ip_network("2001:db8::/32")]


def ip(peer: str | None, *forwarded_for: str, trusted: list[Network] = PROXIES) -> str | None:
    return client_ip(peer=peer, forwarded_for=list(forwarded_for), trusted_proxies=trusted)


class TestUntrustedPeer:
    def test_the_socket_address_is_the_client(self) -> None:
        assert ip("203.0.113.7") == "203.0.113.7"

    def test_forwarded_for_from_a_stranger_is_ignored(self) -> None:
        assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"

    def test_nothing_is_trusted_by_default(self) -> None:
        assert ip("10.0.0.1", "198.51.100.1", trusted=[]) == "10.0.0.1"

    def test_no_socket_address(self) -> None:
        assert ip(None, "198.51.100.1") is None

    def test_a_peer_that_is_not_an_address_is_kept(self) -> None:
        assert ip("testclient", "198.51.100.1") == "testclient"


class TestTrustedProxy:
    def test_the_address_the_proxy_saw(self) -> None:
        assert ip("10.0.0.1", "198.51.100.1") == "198.51.100.1"

    def test_the_rightmost_untrusted_address_wins_over_what_the_client_wrote(self) -> None:
        # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real address.
        assert ip("10.0.0.1", "1.2.3.4, 198.51.100.1") == "198.51.100.1"

    def test_a_chain_of_trusted_proxies_is_walked(self) -> None:
        assert ip("10.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.2, 10.9.9.9") == "198.51.100.1"

    def test_several_headers_read_as_one_list(self) -> None:
        assert ip("10.0.0.1", "1.2.3.4", "198.51.100.1, 10.0.0.2") == "198.51.100.1"

    def test_ipv6(self) -> None:
        assert ip("2001:db8::1", "2001:DB8:0:0::5, 2a00:1450::1") == "2a00:1450::1"

    def test_only_proxies_in_the_chain_gives_the_leftmost(self) -> None:
        assert ip("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"

    def test_no_header_gives_the_proxy_itself(self) -> None:
        assert ip("10.0.0.1") == "10.0.0.1"

    @pytest.mark.parametrize("garbage", ["unknown", "", "198.51.100.1:443", "_hidden"])
    def test_a_hop_that_is_not_an_address_stops_at_the_last_trusted_hop(self, garbage: str) -> None:
        assert ip("10.0.0.1", f"1.2.3.4, {garbage}") == "10.0.0.1"
        assert ip("10.0.0.1", f"{garbage}, 10.0.0.2") == "10.0.0.2"
