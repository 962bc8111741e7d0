"""What the closure certificate and statement are made of (closure/documents.py renders them,
closure/statement.py sets the statement's lines): the documents' shapes and how a case is read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from posfleet.audit.selectors import events_for
from posfleet.closure.models import CaseStep, CaseTerminal, ClosureCase
from posfleet.closure.states import FINISHED_STEP, CaseStatus, ClosureReason, StepName
from posfleet.iam.selectors import provider
from posfleet.parties.channels import Channel
from posfleet.platform.dates import day_text, iso_day_text

CERTIFICATE_DOCUMENT = "closure/certificate.html"
CERTIFICATE_BODY = "closure/certificate_body.html"
STATEMENT_DOCUMENT = "closure/statement.html"
STATEMENT_BODY = "closure/statement_body.html"
PDF_CONTENT_TYPE = "application/pdf"
# A certificate's verification code (closure.common.new_certificate_code): 12 of these characters.
CODE_PATTERN = re.compile(r"^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{12}$")
STATEMENT_STATUSES = frozenset({CaseStatus.RUNNING, CaseStatus.COMPLETED})


# -- what the documents show ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalFacts:
    """One terminal of a case and what was done to it (the certificate's rows)."""

    sn: str
    tid: str
    model: str
    channels: list[str]  # the payment channels unbound (labels)
    channels_text: str
    wipe: str  # acknowledged | expired | not_applicable | "" (not yet)
    wipe_text: str
    returned: bool
    received_on: date | None
    grade: str
    return_text: str


@dataclass(frozen=True)
class Certificate:
    number: str
    code: str
    verify_url: str
    issued_at: datetime | None
    provider_name: str
    merchant_mid: str
    merchant_name: str
    reason: str
    reason_label: str
    requested_at: datetime
    approved_at: datetime | None
    completed_at: datetime | None
    terminals: list[TerminalFacts]
    refund_fen: int


@dataclass(frozen=True)
class StatementLine:
    """A money line of the quote beside what happened: ``actual_fen`` is None while not known yet."""

    code: str
    terminal: str
    text: str
    effect: str
    effect_text: str
    quoted_fen: int
    actual_fen: int | None
    why: str = ""

    @property
    def difference_fen(self) -> int | None:
        return None if self.actual_fen is None else self.actual_fen - self.quoted_fen


@dataclass(frozen=True)
class TotalLine:
    code: str
    label: str
    quoted_fen: int
    actual_fen: int | None
    why: str = ""

    @property
    def difference_fen(self) -> int | None:
        return None if self.actual_fen is None else self.actual_fen - self.quoted_fen


@dataclass(frozen=True)
class ClosureStatement:
    number: str
    provisional: bool
    status: str
    status_label: str
    provider_name: str
    merchant_mid: str
    merchant_name: str
    reason_label: str
    requested_at: datetime
    approved_at: datetime | None
    completed_at: datetime | None
    quote_on: str
    generated_at: datetime
    terminals: list[str]
    lines: list[StatementLine]
    totals: list[TotalLine]
    refund_fen: int | None
    still_owed_fen: int | None
    outcome_text: str
    settlements: list[dict[str, Any]] = field(default_factory=list)
    # The recovery value credited for devices returned as new, and how much of it was paid out (the
    # rest paid what was still owed); None before the refund step.
    recovery_credited_fen: int | None = None
    recovery_paid_out_fen: int | None = None

    def total(self, code: str) -> TotalLine:
        return next(t for t in self.totals if t.code == code)


# -- reading a case -------------------------------------------------------------------------------------


class _Case:
    """A case's rows read once: its terminals, its steps and their evidence."""

    def __init__(self, case: ClosureCase) -> None:
        self.case = case
        self.entries = list(
            CaseTerminal.objects.filter(case=case)
            .select_related("terminal", "terminal__model")
            .order_by("pk")
        )
        self.steps = {s.name: s for s in CaseStep.objects.filter(case=case)}
        self.by_sn = {e.terminal.sn: e for e in self.entries}

    def finished(self, name: StepName) -> bool:
        step = self.steps.get(name)
        return step is not None and step.state in FINISHED_STEP

    def evidence(self, name: StepName) -> dict[str, Any]:
        step = self.steps.get(name)
        return dict(step.evidence or {}) if step is not None else {}


def _provider_name() -> str:
    root = provider()
    return root.name if root is not None else ""


def _reason_label(reason: str) -> str:
    return str(ClosureReason(reason).label) if reason in ClosureReason.values else reason


def _day(value: str | None) -> str:
    """A day the evidence holds as ISO text, as a person reads it."""
    return iso_day_text(value)


def _local_day(moment: datetime | None) -> str:
    return day_text(moment)


def _tid_of(entry: CaseTerminal, since: datetime) -> str:
    """The terminal's TID while it was in the case: a refurbished device has lost it, so it is read
    from the first change the case made to it (its audit row's ``before``)."""
    if entry.terminal.tid:
        return entry.terminal.tid
    for before in (
        events_for("terminal", entry.terminal.sn)
        .filter(occurred_at__gte=since)
        .values_list("before", flat=True)
    ):
        if isinstance(before, dict) and before.get("tid"):
            return str(before["tid"])
    return ""


def _channel_label(code: str) -> str:
    return str(Channel(code).label) if code in Channel.values else code
