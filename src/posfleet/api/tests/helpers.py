"""Helpers for the API tests: a client per identity, real tokens, TOTP codes, refusal traces."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.test import Client

from posfleet.audit.models import AuditEvent
from posfleet.fleet.models import Terminal
from posfleet.iam.services import token_create
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.testing.totp import code_at

PERSONAS = ["admin", "reviewer", "warehouse", "agent_a", "agent_a1", "agent_b", "merchant_a", "merchant_b"]

SN_A = "SN-A-0001"  # merchant A (agent A), active
SN_A1 = "SN-A1-0001"  # merchant A1 (sub-agent A1), active
SN_B = "SN-B-0001"  # merchant B (agent B), active
SN_STOCK = "SN-STOCK-0001"  # in the warehouse


class Api:
    """A client of /api/v1/ with one identity: a bearer token, a session, or nobody."""

    def __init__(self, token: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        # An English-speaking integrator; token users get their own language (tests: "en" personas).
        self.headers = {"Accept-Language": "en", **({"Authorization": f"Bearer {token}"} if token else {})}

    def _headers(self, key: str | None, totp: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        if totp is not None:
            headers["X-Step-Up-TOTP"] = totp
        headers.update(extra or {})
        return headers

    def get(self, path: str, params: Any = None, **extra: str) -> Any:
        return self.client.get("/api/v1" + path, params or {}, headers=self._headers(None, None, extra))

    def post(
        self,
        path: str,
        body: Any,
        *,
        key: str | None = None,
        totp: str | None = None,
        raw: bytes | None = None,
        **extra: str,
    ) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(
            "/api/v1" + path, data, content_type="application/json", headers=self._headers(key, totp, extra)
        )

    def delete(self, path: str, **extra: str) -> Any:
        return self.client.delete("/api/v1" + path, headers=self._headers(None, None, extra))


def new_token(user: Any, scope: str = "write", name: str = "test") -> str:
    actor = Actor.for_user(user, stepped_up_at=now())
    _token, raw = token_create(actor=actor, name=name, scope=scope)
    return raw


@dataclass
class Clock:
    traveller: Any

    def code(self) -> str:
        """The TOTP code of the demo secret now (every persona is enrolled with it)."""
        return code_at(time.time())

    def wrong_code(self) -> str:
        now = time.time()
        valid = {code_at(now + step) for step in (-60, -30, 0, 30, 60)}
        return next(f"{n:06d}" for n in range(100_000, 1_000_000, 7919) if f"{n:06d}" not in valid)

    def advance(self, seconds: float = 31) -> None:
        self.traveller.shift(timedelta(seconds=seconds))


@dataclass(frozen=True)
class Trace:
    terminal: dict[str, Any]
    audit: int
    outbox: int


def trace(sn: str) -> Trace:
    """What a refusal must leave untouched: the terminal row, the audit chain, the outbox."""
    return Trace(
        terminal=Terminal.objects.values().get(sn=sn),
        audit=AuditEvent.objects.count(),
        outbox=OutboxMessage.objects.count(),
    )


def new_events(since: int) -> list[tuple[str, str, str]]:
    return [
        (e.event_type, e.subject_type, e.subject_id)
        for e in AuditEvent.objects.filter(seq__gt=since).order_by("seq")
    ]


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem with every field a client relies on, and nothing that leaks internals."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:posfleet:problem:{code}"
    assert body["instance"] == response.wsgi_request.path
    assert body["request_id"] == response["X-Request-ID"]
    assert body["title"]
    assert body["detail"]
    text = response.content.decode()
    for leak in ("Traceback", 'File "', "SELECT ", "pf_", "django.db", "Error at 0x"):
        assert leak not in text
    return body
