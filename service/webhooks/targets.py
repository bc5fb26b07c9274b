"""Which URLs a webhook may be sent to. Pure: the addresses are given, resolving is the
dispatcher's (delivery.py), done again at every delivery so that a name that later points
inside the network is refused then too.

By default only https, and only public addresses: not loopback, private, link-local (cloud
metadata services live there), shared, multicast, reserved or unspecified ones, so a
subscription cannot make the service probe its own network. ROADMAP_WEBHOOK_ALLOW_PRIVATE
lifts both rules, for tests and closed networks."""

import ipaddress
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL or an address it resolves to is not allowed; the message says why."""


def parse_target(url: str, *, allow_private: bool) -> SplitResult:
    """The URL's parts, if it may be a webhook target as written (its addresses are checked
    separately)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError as error:
        raise TargetRefused(f"not a valid URL: {error}") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise TargetRefused(
            "a webhook URL must be https"
            + ("" if allow_private else " (http only with ROADMAP_WEBHOOK_ALLOW_PRIVATE=true)")
        )
    if not parts.hostname:
        raise TargetRefused("a webhook URL must name a host")
    if parts.username or parts.password:
        raise TargetRefused("a webhook URL must not carry credentials")
    if port == 0:
        raise TargetRefused("port 0 is not a port one can send to")
    literal = literal_address(parts.hostname)
    if literal is not None:
        check_address(literal, allow_private=allow_private)
    else:
        ascii_host(parts.hostname)
    return parts


def ascii_host(host: str) -> str:
    """The host name as sent on the wire (IDNA for a name in other scripts)."""
    if literal_address(host) is not None:
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise TargetRefused(f"{host!r} is not a valid host name: {error}") from None


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, well known and local;
# SIIT's IPv4-translated form; the old IPv4-compatible form): a gateway would take the packet
# to that IPv4 address.
_EMBEDDING_V4 = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96")
)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _EMBEDDING_V4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_address(address: Address, *, allow_private: bool) -> None:
    if allow_private:
        return
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None and (not embedded.is_global or embedded.is_multicast):
            address = embedded
    if not address.is_global or address.is_multicast:
        raise TargetRefused(
            f"{address} is not a public address (loopback, private, link-local or reserved); "
            "allowed only with ROADMAP_WEBHOOK_ALLOW_PRIVATE=true"
        )
