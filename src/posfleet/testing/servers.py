"""Real servers on loopback for delivery tests: an SMTP server (aiosmtpd) and an HTTP receiver.

Both record what arrived and can be told how to answer, so a test sees exactly what a mail server, an
SMS provider or an integrator's webhook endpoint would see.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from posfleet.parties.channels.simulator import ChannelSimulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpCatcher:
    """What the SMTP server received. ``answer_rcpt`` (e.g. "451 4.3.0 try later") makes it refuse."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    answer_rcpt: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.answer_rcpt:
            return self.answer_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def settings(self) -> dict[str, Any]:
        return smtp_mailers(self.host, self.port)


def smtp_mailers(host: str, port: int) -> dict[str, Any]:
    """Settings that send e-mail over SMTP to ``host:port`` (tests swap the memory mailer for this)."""
    return {
        "MAILERS": {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": host, "port": port, "timeout": 5},
            }
        }
    }


@contextmanager
def smtp_server() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher(port=free_port())
    controller = Controller(catcher, hostname=catcher.host, port=catcher.port)
    controller.start()
    try:
        yield catcher
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every POST; answers with the next status of ``statuses`` (then ``default_status``).
    ``accepted`` counts, per id (the webhook-id header, else the JSON "id"), the messages it took; a
    receiver that dedupes by id acts once per key of it."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    accepted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, item: Received) -> int:
        with self.lock:
            self.received.append(item)
            status = self.statuses.pop(0) if self.statuses else self.default_status
            if 200 <= status < 300:
                key = item.headers.get("webhook-id") or str(item.json().get("id", ""))
                self.accepted[key] += 1
            return status


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            item = Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            status = receiver.answer(item)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def channel_simulator(*, delay: float = 1.0) -> Iterator[ChannelSimulator]:
    """The payment channels' simulator (``parties.channels.simulator``) on a free loopback port, in a
    thread: ``.url`` (point ``POSFLEET_CHANNELS_URL`` at it), ``.control(channel, mode, times)``, and
    what it received (``.calls``, ``.calls_of``, ``.unbinds_done``, ``.unbound``). ``delay``: how long a
    'late' or 'timeout' call waits; keep it above the tests' ``POSFLEET_CHANNELS_TIMEOUT``."""
    simulator = ChannelSimulator(port=0, delay=delay)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()
