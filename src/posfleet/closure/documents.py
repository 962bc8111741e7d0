"""The closure certificate (注销证明) and the itemised closure statement (DOMAIN.md workflow 4 step 10):
their read models, built from the case, its terminals, its steps' evidence and the journals, and their
rendering as HTML and as an A4 PDF in the reader's language (the active translation).

- ``certificate(case)``: what proves the terminals were closed — the provider, the merchant (MID and
  shop name: no personal data), each terminal (SN, TID, model) and what was done to it (channels
  unbound, device wiped or not acknowledged, returned and graded or not returned), the closure reason,
  the dates, the deposit refunded, the certificate number (the case number) and its public
  verification code. Only for a completed case.
- ``statement(case)``: each money line of the quote the requester confirmed beside what happened, the
  difference and why in plain words, and the totals: charged, deducted from the final settlement, paid
  from the deposit, refunded, still owed. For a running case (marked provisional) or a completed one.
- ``certificate_by_code(code)``: the public verification page's lookup (no scope: the code is the key).

The same templates serve the screen and the paper (``closure/templates/closure/``); the PDF fetches
nothing from anywhere, like the monthly statement's.
"""

from __future__ import annotations

import re

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from posfleet.closure.document_facts import (
    CERTIFICATE_DOCUMENT,
    CODE_PATTERN,
    STATEMENT_DOCUMENT,
    Certificate,
    ClosureStatement,
    TerminalFacts,
    _Case,
    _channel_label,
    _day,
    _local_day,
    _provider_name,
    _reason_label,
    _tid_of,
)
from posfleet.closure.models import CaseTerminal, ClosureCase
from posfleet.closure.statement import statement
from posfleet.closure.states import CaseStatus, StepName
from posfleet.platform.errors import NotFound

__all__ = [
    "Certificate",
    "ClosureStatement",
    "certificate",
    "certificate_by_code",
    "certificate_pdf",
    "clean_code",
    "render_certificate",
    "render_statement",
    "statement",
    "statement_pdf",
    "to_pdf",
]

# -- the certificate ------------------------------------------------------------------------------------


def certificate(case: ClosureCase, *, verify_url: str = "") -> Certificate:
    """The certificate of the completed case ``case`` (NotFound for any other: there is none yet)."""
    if case.status != CaseStatus.COMPLETED or not case.certificate_code:
        raise NotFound(_("There is no closure certificate for this case yet."))
    read = _Case(case)
    channels = read.evidence(StepName.UNBIND).get("channels", {}) or {}
    devices = read.evidence(StepName.WIPE).get("devices", {}) or {}
    returned = read.evidence(StepName.RETURN)
    terminals = []
    for entry in read.entries:
        sn = entry.terminal.sn
        unbound = sorted(
            _channel_label(key.split(":", 1)[1])
            for key, answer in channels.items()
            if key.split(":", 1)[0] == str(entry.terminal_id) and (answer or {}).get("outcome") == "done"
        )
        wipe = str((devices.get(sn) or {}).get("wipe", ""))
        terminals.append(
            TerminalFacts(
                sn=sn,
                tid=_tid_of(entry, case.requested_at),
                model=f"{entry.terminal.model.maker} {entry.terminal.model.name}".strip(),
                channels=unbound,
                channels_text=(
                    _("Unbound from %(channels)s") % {"channels": ", ".join(unbound)}
                    if unbound
                    else _("No payment channel was bound")
                ),
                wipe=wipe,
                wipe_text=_wipe_text(wipe),
                returned=entry.received_at is not None,
                received_on=timezone.localtime(entry.received_at).date() if entry.received_at else None,
                grade=entry.grade,
                return_text=_return_text(entry, returned.get("due_on")),
            )
        )
    refund = read.evidence(StepName.REFUND)
    return Certificate(
        number=case.number,
        code=case.certificate_code,
        verify_url=verify_url,
        issued_at=case.certificate_issued_at,
        provider_name=_provider_name(),
        merchant_mid=case.merchant.mid,
        merchant_name=case.merchant.name,
        reason=case.reason,
        reason_label=_reason_label(case.reason),
        requested_at=case.requested_at,
        approved_at=case.reviewed_at,
        completed_at=case.ended_at,
        terminals=terminals,
        refund_fen=int(refund.get("refund_fen", 0) or 0),
    )


def _wipe_text(wipe: str) -> str:
    if wipe == "acknowledged":
        return _("Data erased: the device acknowledged the remote wipe; its keys are revoked")
    if wipe == "expired":
        return _("The device did not acknowledge the remote wipe; its keys are revoked")
    if wipe == "not_applicable":
        return _("No remote wipe: the device had no remote connection")
    return _("Not wiped yet")


def _return_text(entry: CaseTerminal, due_on: str | None) -> str:
    if entry.received_at is not None:
        day = _local_day(entry.received_at)
        if entry.grade:
            return _("Returned on %(day)s, graded %(grade)s") % {
                "day": day,
                "grade": CaseTerminal.Grade(entry.grade).label,
            }
        return _("Returned on %(day)s") % {"day": day}
    if entry.recovery_fee_fen or due_on:
        return _("Not returned by %(day)s") % {"day": _day(due_on)}
    return _("Not returned")


def certificate_by_code(code: str, *, verify_url: str = "") -> Certificate | None:
    """The certificate whose verification code is ``code`` (None when there is none: the public page
    answers a plain "not found" and tells nothing else)."""
    cleaned = clean_code(code)
    if cleaned is None:
        return None
    case = (
        ClosureCase.objects.select_related("merchant")
        .filter(certificate_code=cleaned, status=CaseStatus.COMPLETED)
        .first()
    )
    if case is None:
        return None
    return certificate(case, verify_url=verify_url)


def clean_code(code: str) -> str | None:
    """A typed code as stored (capitals, without spaces or dashes), or None when it cannot be one."""
    cleaned = re.sub(r"[\s-]", "", str(code or "")).upper()[:32]
    return cleaned if CODE_PATTERN.match(cleaned) else None


# -- rendering -------------------------------------------------------------------------------------------


def render_certificate(cert: Certificate, *, for_pdf: bool = True) -> str:
    """The certificate as a stand-alone HTML document (styles inline, no links out)."""
    return render_to_string(CERTIFICATE_DOCUMENT, {"certificate": cert, "for_pdf": for_pdf})


def render_statement(doc: ClosureStatement, *, for_pdf: bool = True) -> str:
    return render_to_string(STATEMENT_DOCUMENT, {"statement": doc, "for_pdf": for_pdf})


def to_pdf(html: str) -> bytes:
    """An HTML document as A4 PDF bytes, with the CJK fonts of the machine; every URL is refused."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf()


def certificate_pdf(cert: Certificate) -> bytes:
    return to_pdf(render_certificate(cert))


def statement_pdf(doc: ClosureStatement) -> bytes:
    return to_pdf(render_statement(doc))
