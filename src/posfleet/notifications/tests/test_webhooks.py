"""Webhook endpoints may not be a way into our own networks (SSRF), ADR 0021.

One parser reads the URL for checking and for connecting; the host is resolved once, every address it
resolves to must be globally routable (IPv4 inside IPv6 too), and the connection goes to exactly the
address that was checked, with the original Host header and, for https, SNI and certificate checks
against the host name. No test resolves a real internet name: ``dns`` answers for the names a test
gives it (and for numeric hosts, without asking any DNS server); every other name does not resolve.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from posfleet.notifications import channels, outbound
from posfleet.notifications.models import WebhookEndpoint
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.models import DataKey
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.servers import http_receiver

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"  # a globally routable address; no test connects to it for real
SECRETS = ["whsec_" + "A" * 32]


@dataclass
class FakeDns:
    """Names a test maps to addresses; numeric hosts parse without DNS; anything else fails."""

    names: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def add(self, name: str, *answers: list[str]) -> None:
        """Each answer is one resolution; the last one repeats (a rebinding name changes between them)."""
        self.names[name.lower()] = list(answers)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        answers = self.names.get(host.lower())
        if answers is not None:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        return [str(info[4][0]) for info in infos]


@pytest.fixture
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(outbound, "resolver", fake)
    return fake


@pytest.fixture
def strict(settings):
    """The production rule: no private addresses (plain http stays allowed for the loopback tests)."""
    settings.POSFLEET_NOTIFY = {**settings.POSFLEET_NOTIFY, "WEBHOOK_ALLOW_PRIVATE": False}


@pytest.fixture
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Every address the sender opens a connection to (each refused): a refused URL opens none."""
    opened: list[tuple[str, int]] = []

    def refuse(address: str, port: int, timeout: float) -> socket.socket:
        opened.append((address, port))
        raise ConnectionRefusedError(111, "refused")

    monkeypatch.setattr(outbound, "open_socket", refuse)
    return opened


def send(url: str) -> None:
    channels.send_webhook(url=url, msg_id="msg_1", payload={"x": 1}, secrets_=SECRETS)


REFUSED_AT_SAVE = [
    # The finding: the check read the host after "@", the HTTP client the one before "\".
    "http://127.0.0.1:18555\\@hooks.invalid/x",
    "https://hooks.example.test\\@other.example.test/",
    "https://user:password@hooks.example.test/x",
    "https://user@hooks.example.test/x",
    "https://127.0.0.1/hook",
    "https://localhost:8443/hook",
    "https://127.1/hook",  # inet_aton's short forms
    "https://0x7f.1/hook",
    "https://0.0.0.0/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.9/hook",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://100.100.100.200/latest/meta-data/",  # a cloud's metadata inside 100.64.0.0/10
    "https://224.0.0.1/hook",  # multicast
    "https://[::1]/hook",
    "https://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "https://[::ffff:a01:203]/hook",  # IPv4-mapped 10.1.2.3
    "https://[64:ff9b::7f00:1]/hook",  # NAT64 around 127.0.0.1
    "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
    "https://[::7f00:1]/hook",  # IPv4-compatible
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo to 127.0.0.1
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://LOCALHOST./hook",  # does not resolve now; may resolve to loopback at delivery time
    "https://127.0.0.1.nip.io/hook",
    "https://hooks.invalid/hook",
    "https://hooks.example.test:99999/hook",
    "https://hooks.example.test:0/hook",
    "https://hooks.example.test:-1/hook",
    "https://hooks.example.test:8x/hook",
    "https://mixed.example.test/hook",  # one public and one private address
    "https://hooks.example.test/a b",
    "https://hooks.example.test/\t",
    "https://hooks.exämple.test/",
    "https:///hook",
    "https:hooks.example.test/hook",
]


@pytest.mark.parametrize("url", REFUSED_AT_SAVE)
def test_webhooks_into_our_own_networks_are_refused(world, actor_of, strict, dns, url):
    from posfleet.notifications.services import webhook_endpoint_create

    dns.add("hooks.example.test", [PUBLIC])
    dns.add("other.example.test", [PUBLIC])
    dns.add("mixed.example.test", [PUBLIC, "10.0.0.7"])
    dns.add("localhost", ["127.0.0.1", "::1"])
    admin = actor_of(world.user("admin"))
    # no endpoint, no key made for its secret, no audit event or outbox message
    with (
        assert_nothing_recorded(WebhookEndpoint.objects.all(), DataKey.objects.all()),
        pytest.raises(ValidationFailed) as refused,
    ):
        webhook_endpoint_create(actor=admin, url=url, event_types=[])
    assert refused.value.params["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_each_refusal_says_why(world, actor_of, strict, dns):
    from posfleet.notifications.services import webhook_endpoint_create

    dns.add("hooks.example.test", [PUBLIC])
    admin = actor_of(world.user("admin"))
    expected = {
        "http://127.0.0.1:18555\\@hooks.invalid/x": "url_malformed",
        "https://user:password@hooks.example.test/x": "url_credentials",
        "https://hooks.example.test:99999/": "url_port",
        "https://hooks.invalid/": "host_unresolvable",
        "https://[2002:7f00:1::]/": "address_not_public",
        "ftp://hooks.example.test/": "url_scheme",
    }
    for url, reason in expected.items():
        with (
            assert_nothing_recorded(WebhookEndpoint.objects.all(), DataKey.objects.all()),
            pytest.raises(ValidationFailed) as refused,
        ):
            webhook_endpoint_create(actor=admin, url=url, event_types=[])
        assert refused.value.params == {"field": "url", "reason": reason}, url


def test_a_public_name_is_accepted_and_resolved_once(world, actor_of, strict, dns):
    from posfleet.notifications.services import webhook_endpoint_create

    dns.add("hooks.example.test", [PUBLIC, "2606:4700::1111"])
    endpoint, _secret = webhook_endpoint_create(
        actor=actor_of(world.user("admin")), url="https://hooks.example.test:8443/in?org=1", event_types=[]
    )
    assert endpoint.url == "https://hooks.example.test:8443/in?org=1"
    assert dns.asked == ["hooks.example.test"]


def test_the_sender_checks_again_at_delivery_time(strict, dns, connections):
    """A name that resolved to a public address when the endpoint was saved may point inside later."""
    dns.add("hooks.example.test", ["127.0.0.1"])
    with pytest.raises(channels.DeliveryError) as refused:
        send("https://hooks.example.test/hook")
    assert refused.value.permanent
    assert refused.value.reason == "webhook endpoint resolves to a private address"
    assert connections == []


def test_the_backslash_url_never_reaches_loopback(strict, dns):
    """The finding's reproduction: a receiver listens on 127.0.0.1, the URL names it before a ``\\``."""
    with http_receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        for url in (f"http://127.0.0.1:{port}\\@hooks.invalid/x", f"http://127.0.0.1:{port}/x"):
            with pytest.raises(channels.DeliveryError) as refused:
                send(url)
            assert refused.value.permanent
    assert hook.received == []


def test_the_parser_holds_even_where_private_addresses_are_allowed(dns):
    """The test settings allow loopback (the receivers), never a URL two parsers could read apart."""
    with http_receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        for url in (
            f"http://127.0.0.1:{port}\\@hooks.invalid/x",
            f"http://user:pw@127.0.0.1:{port}/x",
            f"http://127.0.0.1:{port}/x y",
        ):
            with pytest.raises(channels.DeliveryError) as refused:
                send(url)
            assert refused.value.permanent
        send(hook.url)  # the same receiver, named plainly: delivered
    assert [r.path for r in hook.received] == ["/hook"]


def test_a_name_that_does_not_resolve_at_delivery_is_a_failure_to_retry(strict, dns, connections):
    with pytest.raises(channels.DeliveryError) as failed:
        send("https://hooks.invalid/hook")
    assert not failed.value.permanent
    assert failed.value.reason == "webhook endpoint host does not resolve"
    assert connections == []


def test_the_connection_goes_to_the_address_that_was_checked(strict, dns, connections):
    """DNS rebinding: the name answers a public address first and loopback afterwards. The sender
    resolves once and connects to the public address it checked, never to a second answer."""
    dns.add("rebind.example.test", [PUBLIC], ["127.0.0.1"])
    with pytest.raises(channels.DeliveryError) as failed:
        send("https://rebind.example.test/hook")
    assert not failed.value.permanent
    assert connections == [(PUBLIC, 443)]
    assert dns.asked == ["rebind.example.test"]


def test_every_checked_address_is_tried_in_turn(strict, dns, connections):
    dns.add("two.example.test", ["2606:4700::1111", PUBLIC])
    with pytest.raises(channels.DeliveryError):
        send("https://two.example.test/hook")
    assert connections == [("2606:4700::1111", 443), (PUBLIC, 443)]


def test_plain_http_sends_the_original_host_and_path_to_the_resolved_address(dns):
    with http_receiver() as hook:
        port = int(hook.url.split(":")[2].split("/")[0])
        dns.add("hooks.example.test", ["127.0.0.1"])
        send(f"http://hooks.example.test:{port}/in/events?org=7#fragment")
    (got,) = hook.received
    assert got.path == "/in/events?org=7"
    assert got.headers["host"] == f"hooks.example.test:{port}"
    assert got.headers["webhook-id"] == "msg_1"
    assert got.json() == {"x": 1}
    assert dns.asked == ["hooks.example.test"]


def test_redirects_are_not_followed(dns):
    with http_receiver() as target, redirecting_server(target.url) as redirect:
        with pytest.raises(channels.DeliveryError) as failed:
            send(redirect)
        assert failed.value.reason == "webhook endpoint answered HTTP 307"
    assert target.received == []


# -- https: SNI and the certificate are checked against the host name, not the address ---------------


def test_https_verifies_the_certificate_of_the_host_name(dns, tls, monkeypatch):
    server = tls("hooks.example.test")
    dns.add("hooks.example.test", ["127.0.0.1"])
    monkeypatch.setattr(outbound, "tls_context", server.client_context)
    send(f"https://hooks.example.test:{server.port}/in")
    assert server.sni == ["hooks.example.test"]
    assert server.received == [("/in", f"hooks.example.test:{server.port}")]


def test_https_refuses_a_certificate_for_another_name(dns, tls, monkeypatch):
    server = tls("other.example.test")
    dns.add("hooks.example.test", ["127.0.0.1"])
    monkeypatch.setattr(outbound, "tls_context", server.client_context)
    with pytest.raises(channels.DeliveryError) as failed:
        send(f"https://hooks.example.test:{server.port}/in")
    assert failed.value.reason == "webhook endpoint unreachable (SSLCertVerificationError)"
    assert server.received == []


# -- helpers -----------------------------------------------------------------------------------------


@contextmanager
def redirecting_server(location: str) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class TlsServer:
    port: int
    ca_pem: bytes
    sni: list[str | None] = field(default_factory=list)
    received: list[tuple[str, str]] = field(default_factory=list)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _certificates(name: str, folder: Path) -> tuple[bytes, Path, Path]:
    """A CA and a leaf certificate for ``name`` (DNS name only: no IP address in it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "posfleet test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "leaf.pem", folder / "leaf.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path


@pytest.fixture
def tls(tmp_path) -> Iterator[Any]:
    """tls(name) -> a TlsServer on 127.0.0.1 presenting a certificate for ``name``."""
    servers: list[ThreadingHTTPServer] = []

    def start(name: str) -> TlsServer:
        ca_pem, cert_path, key_path = _certificates(name, tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        state = TlsServer(port=0, ca_pem=ca_pem)

        def remember(sock: Any, server_name: str | None, ctx: Any) -> None:
            state.sni.append(server_name)

        context.sni_callback = remember

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                state.received.append((self.path, self.headers.get("Host", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        state.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_signing_secrets_are_sealed_in_the_database(world, actor_of):
    from django.db import connection

    from posfleet.notifications.services import (
        endpoint_secrets,
        webhook_endpoint_create,
        webhook_secret_rotate,
    )

    admin = actor_of(world.user("admin"))
    endpoint, first = webhook_endpoint_create(actor=admin, url="https://hooks.example.com/in", event_types=[])
    endpoint, second = webhook_secret_rotate(actor=admin, endpoint_id=endpoint.pk)
    assert endpoint_secrets(endpoint) == [second, first]  # both sign during the overlap
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM notifications_webhookendpoint")
        row = cursor.fetchone()
    stored = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
    for secret in (first, second):
        assert secret.encode() not in stored
        assert secret.removeprefix("whsec_").encode() not in stored
