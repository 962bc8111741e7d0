"""Outbound HTTP of the notification channels (webhooks, the SMS provider): ADR 0021.

One parser (``parse``) reads a URL, once, into the parts the connection uses; nothing else ever reads
the URL again, so the check and the connection cannot disagree on where it points. The host is
resolved once (``resolve``); for webhooks every address must be globally routable — IPv4 addresses
embedded in IPv6 ones (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo) are checked too — and
``post`` connects to exactly those addresses, sending the original ``Host`` header and, for https,
SNI and certificate verification against the host name. Redirects are never followed; proxies from
the environment are not used (the address checked is the address connected to).

``resolver``, ``open_socket`` and ``tls_context`` are module attributes so that tests can answer for
names without DNS, watch where a connection goes, and trust a test certificate authority.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without space and backslash: what two URL parsers read alike.
_URL_CHARS = re.compile(r"^[\x21-\x5b\x5d-\x7e]+$")
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges whose last 32 bits are an IPv4 address a packet is (or may be) delivered to.
_LAST_32_BITS_IPV4 = (
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64, local use
)


class Refused(Exception):
    """The URL or where it leads may not be used. ``code`` is stable, ``message`` is for people;
    ``transient`` when asking again later may succeed (a name that does not resolve now)."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Destination:
    """A parsed URL: the only form in which a URL reaches a connection."""

    scheme: str  # "http" or "https"
    host: str  # lower-case ASCII host name, or an IP address (IPv6 without brackets)
    port: int
    target: str  # path and query, as written on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse(url: str, *, schemes: frozenset[str]) -> Destination:
    """Read ``url`` or refuse it: an absolute http(s) URL of printable ASCII without spaces or
    backslashes, without user name or password, with a host and a port from 1 to 65535."""
    absolute = _("The URL must be an absolute %(schemes)s URL.") % {"schemes": " or ".join(sorted(schemes))}
    if not _URL_CHARS.match(url or ""):
        raise Refused(
            "url_malformed",
            _(
                "The URL may hold printable ASCII characters only, without spaces or backslashes "
                "(write an international domain name in its xn-- form)."
            ),
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise Refused("url_malformed", absolute) from None
    if parts.scheme not in schemes or not parts.netloc:
        raise Refused("url_scheme", absolute)
    if "@" in parts.netloc:
        raise Refused("url_credentials", _("The URL must not carry a user name or password."))
    if not _valid_host(host):
        raise Refused("url_malformed", absolute)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = DEFAULT_PORTS[parts.scheme]
    if not 1 <= port <= 65535 or parts.netloc.endswith(":"):
        raise Refused("url_port", _("The port must be a number from 1 to 65535."))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme=parts.scheme, host=host, port=port, target=target)


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal (urlsplit took it out of its brackets); no zone id
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return "%" not in host
    return bool(_HOST_NAME.match(host))


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries inside it (6to4, Teredo, mapped, NAT64...)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in _LAST_32_BITS_IPV4):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast, and so is every IPv4 address inside it."""
    return all(a.is_global and not a.is_multicast for a in [address, *embedded_ipv4(address)])


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


resolver: Callable[[str, int], list[str]] = system_resolver


def resolve(destination: Destination, *, public_only: bool) -> list[str]:
    """The host's addresses, resolved once (an IP address is its own answer); with ``public_only``
    every one of them must be public."""
    try:
        answers = resolver(destination.host, destination.port)
        addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in answers))
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise Refused("host_unresolvable", _("The host name does not resolve to an address."), transient=True)
    if public_only and not all(is_public(a) for a in addresses):
        raise Refused(
            "address_not_public",
            _("The URL points into a private network; webhooks go to public addresses only."),
        )
    return [str(a) for a in addresses]


def open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to an IP address (never a name: nothing is resolved here)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` for the host of ``destination``."""

    def __init__(self, destination: Destination, address: str, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.address, self.seconds = address, timeout

    def connect(self) -> None:
        self.sock = open_socket(self.address, self.port, self.seconds)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to ``address``; SNI and the certificate check use the host name."""

    def __init__(self, destination: Destination, address: str, timeout: float) -> None:
        self.tls = tls_context()
        super().__init__(destination.host, destination.port, timeout=timeout, context=self.tls)
        self.address, self.seconds = address, timeout

    def connect(self) -> None:
        sock = open_socket(self.address, self.port, self.seconds)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post(
    destination: Destination, addresses: list[str], body: bytes, headers: dict[str, str], *, timeout: float
) -> int:
    """POST ``body`` to the first of ``addresses`` that accepts a connection; the answer's status.
    Raises ``OSError`` (or ``http.client.HTTPException``) when none connects or the exchange fails."""
    failure: OSError | None = None
    for address in addresses:
        connection: http.client.HTTPConnection
        if destination.scheme == "https":
            connection = _PinnedHTTPSConnection(destination, address, timeout)
        else:
            connection = _PinnedHTTPConnection(destination, address, timeout)
        try:
            try:
                connection.connect()
            except ssl.SSLError:
                raise
            except OSError as exc:  # this address does not answer: the next checked one may
                failure = exc
                continue
            connection.request(
                "POST", destination.target, body=body, headers={**headers, "Host": destination.host_header}
            )
            return connection.getresponse().status
        finally:
            connection.close()
    assert failure is not None
    raise failure
