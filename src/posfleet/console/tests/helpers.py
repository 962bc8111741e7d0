"""Helpers of the console tests (constants, TOTP codes, what must stay untouched)."""

from __future__ import annotations

import re
import time

from posfleet.audit.models import AuditEvent
from posfleet.fleet.models import Terminal
from posfleet.platform.models import OutboxMessage
from posfleet.testing.totp import code_at

# A fixed moment just after a 30-second TOTP step begins; tests move on from here.
T0 = 1_800_000_005

SN_A = "SN-CON-A-001"  # merchant A, agent A
SN_A1 = "SN-CON-A1-001"  # merchant A1, sub-agent A1
SN_B = "SN-CON-B-001"  # merchant B, agent B

# Who sees which of the three terminals.
VISIBLE = {
    "admin": {SN_A, SN_A1, SN_B},
    "reviewer": {SN_A, SN_A1, SN_B},
    "warehouse": {SN_A, SN_A1, SN_B},
    "agent_a": {SN_A, SN_A1},
    "agent_a1": {SN_A1},
    "agent_b": {SN_B},
    "merchant_a": {SN_A},
    "merchant_b": {SN_B},
}
PERSONAS = tuple(VISIBLE)


def totp() -> str:
    """The current code of the demo secret every persona is enrolled with."""
    return code_at(time.time())


def htmx(**extra: str) -> dict[str, str]:
    return {"HTTP_HX_REQUEST": "true", **extra}


def trace(*sns: str) -> tuple:
    """Everything a refused command must leave untouched: statuses, the terminals' audit rows, outbox."""
    statuses = tuple(Terminal.objects.filter(sn__in=sns).order_by("sn").values_list("sn", "status"))
    events = AuditEvent.objects.filter(subject_type="terminal", subject_id__in=sns).count()
    return statuses, events, OutboxMessage.objects.count()


def ids_with_prefix(html: str, prefix: str) -> set[str]:
    """The ``data-testid`` values starting with ``prefix`` (without it)."""
    return set(re.findall(rf'data-testid="{re.escape(prefix)}([^"]+)"', html))
