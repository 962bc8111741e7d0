"""The merchant's home (商户首页): one read model of what a shopkeeper looks at first — their terminals,
their money (the next payout, what is due, the deposit), their open applications, closure cases and
complaints, their unread notices. Composed from the contexts' scoped selectors; every list is bounded.

Only the merchant's own objects, and nothing internal: no allocations, no staff names, no audit rows.
The console's home page (``console/views/merchant_home.py``) and the API's ``GET /me/home`` both render
this one read model (ADR 0031); it names objects by their numbers, and each edge links them its way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from posfleet.billing import payouts
from posfleet.billing import selectors as money
from posfleet.billing.merchant_money import last_transaction_annotations, merchant_balances, transaction_note
from posfleet.closure.complaint_selectors import complaints_visible_to
from posfleet.closure.complaint_states import ANSWERED, WAITING, ComplaintStatus, Handler, overdue
from posfleet.closure.complaint_states import FINAL as COMPLAINT_FINAL
from posfleet.closure.selectors import case_view, cases_visible_to, filter_cases
from posfleet.closure.services.complaints import handler
from posfleet.closure.states import CaseStatus
from posfleet.enrollment.selectors import next_step, visible_applications
from posfleet.enrollment.states import FINAL as APPLICATION_FINAL
from posfleet.fleet import selectors as fleet
from posfleet.fleet.states import CLOSED, IN_SERVICE, STOPPED, TRANSACTING, WITH_MERCHANT, Status
from posfleet.iam.models import User
from posfleet.notifications.selectors import InboxEntry, inbox_entries, inbox_of, unread_count
from posfleet.parties import selectors as parties

TERMINAL_ROWS = 8  # terminals listed on the home; the rest are one click away (the terminal list)
CASE_ROWS = 5  # open applications, closure cases, complaints: each
INBOX_ROWS = 5
FEE_ROWS = 3
EXPIRY_SOON_DAYS = 30

# A terminal's state in a shopkeeper's words, by the fleet's status groups (fleet/states.py).
TAKES_PAYMENTS = gettext_lazy("Takes payments")
WAITS_FOR_TEST = gettext_lazy("Installed: takes payments once its test transaction passes")
STOPPED_WORDS = gettext_lazy("Stopped: takes no payments for now")
CLOSED_WORDS = gettext_lazy("Closed: takes no payments")
ON_ITS_WAY = gettext_lazy("Not with you yet")


def terminal_words(status: str) -> str | Promise:
    if status in TRANSACTING:
        return TAKES_PAYMENTS
    if status in STOPPED:
        return STOPPED_WORDS
    if status in IN_SERVICE:  # bound: installed, not tested yet
        return WAITS_FOR_TEST
    if status in CLOSED:
        return CLOSED_WORDS
    return ON_ITS_WAY


def _status_label(status: str) -> str | Promise:
    return Status(status).label if status in Status.values else status


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str | Promise
    words: str | Promise
    count: int


@dataclass(frozen=True)
class TerminalRow:
    sn: str
    status: str
    label: str | Promise
    words: str | Promise
    store: str
    expires_on: date | None
    days_left: int | None  # until the service expiry (negative: expired)
    last_at: datetime | None  # the last transaction
    last_amount_fen: int | None
    last_note: str  # what the last transaction was when it was not an approved sale ("" otherwise)

    @property
    def expiring_soon(self) -> bool:
        return self.days_left is not None and self.days_left <= EXPIRY_SOON_DAYS


@dataclass(frozen=True)
class FeeDue:
    due_on: date
    amount_fen: int
    sn: str


@dataclass(frozen=True)
class OpenItem:
    """An open application, closure case or complaint: what it is, its state, what happens next."""

    number: str
    title: str
    state: str | Promise
    next_words: str
    late: bool = False


@dataclass(frozen=True)
class Money:
    payout: payouts.NextPayout
    last_paid_on: date | None
    last_paid_fen: int | None
    owed_fen: int  # service fees charged, not yet kept back from a payout
    penalties_fen: int
    deposit_fen: int
    fees_due: list[FeeDue]

    @property
    def owed_total_fen(self) -> int:
        return self.owed_fen + self.penalties_fen


@dataclass(frozen=True)
class MerchantHome:
    merchant: Any | None  # parties' Merchant (None: a merchant user whose merchant is not there)
    terminal_total: int
    in_use: int  # with the merchant: in service or stopped
    taking_payments: int
    by_status: list[StatusCount]
    terminals: list[TerminalRow]
    money: Money | None
    applications: list[OpenItem]
    closures: list[OpenItem]
    complaints: list[OpenItem]
    inbox: list[InboxEntry]  # unread notices in the reader's language: title, body, item (its time, link)
    unread: int

    @property
    def more_terminals(self) -> int:
        return max(0, self.terminal_total - len(self.terminals))


def merchant_home(user: User, *, on: date, at: datetime) -> MerchantHome:
    """The home of ``user`` (a merchant user) on day ``on`` at moment ``at``."""
    merchant = (
        parties.merchant_of_organisation(user.organisation_id) if user.organisation_id is not None else None
    )
    counts = fleet.count_by_status(user)
    complaints = complaints_visible_to(user).exclude(status__in=COMPLAINT_FINAL)
    return MerchantHome(
        merchant=merchant,
        terminal_total=sum(counts.values()),
        in_use=sum(n for status, n in counts.items() if status in WITH_MERCHANT),
        taking_payments=sum(n for status, n in counts.items() if status in TRANSACTING),
        by_status=_by_status(counts),
        terminals=_terminals(user, on) if counts else [],
        money=_money(merchant, on) if merchant is not None else None,
        applications=_applications(user),
        closures=_closures(user),
        complaints=[_complaint(c, at) for c in complaints.order_by("-raised_at", "-pk")[:CASE_ROWS]],
        inbox=inbox_entries(list(inbox_of(user).filter(read_at__isnull=True)[:INBOX_ROWS])),
        unread=unread_count(user),
    )


def _by_status(counts: dict[str, int]) -> list[StatusCount]:
    return [
        StatusCount(status=s.value, label=s.label, words=terminal_words(s.value), count=counts[s.value])
        for s in Status
        if counts.get(s.value)
    ]


def _terminals(user: User, on: date) -> list[TerminalRow]:
    """The first ``TERMINAL_ROWS`` terminals (those with the merchant first), each with its last
    transaction (index on terminal and time: one look-up per row shown)."""
    qs: QuerySet[Any] = (
        fleet.terminals_visible_to(user)
        .annotate(
            in_use=Case(
                When(status__in=WITH_MERCHANT, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
            **last_transaction_annotations(),
        )
        .order_by("in_use", "sn")
    )
    rows = []
    for t in qs[:TERMINAL_ROWS]:
        expires = t.service_expires_on
        rows.append(
            TerminalRow(
                sn=t.sn,
                status=t.status,
                label=_status_label(t.status),
                words=terminal_words(t.status),
                store=t.store.name if t.store is not None else "",
                expires_on=expires,
                days_left=(expires - on).days if expires is not None and t.status in WITH_MERCHANT else None,
                last_at=t.last_at,
                last_amount_fen=t.last_fen,
                last_note=transaction_note(t.last_kind, t.last_status),
            )
        )
    return rows


def _money(merchant: Any, on: date) -> Money:
    balances = merchant_balances(merchant.organisation_id)
    last = payouts.last_settlement(merchant.pk)
    return Money(
        payout=payouts.next_payout(merchant.pk, merchant.organisation_id, on),
        last_paid_on=last.paid_on if last is not None else None,
        last_paid_fen=last.payout_fen if last is not None else None,
        owed_fen=balances.owed_fen,
        penalties_fen=balances.penalties_fen,
        deposit_fen=balances.deposit_fen,
        fees_due=[
            FeeDue(due_on=f.due_on, amount_fen=f.amount_fen, sn=f.contract.terminal.sn)
            for f in money.fees_due_next(merchant.pk, limit=FEE_ROWS)
        ],
    )


def _applications(user: User) -> list[OpenItem]:
    apps = visible_applications(user).exclude(status__in=APPLICATION_FINAL)
    return [
        OpenItem(
            number=a.number,
            title=ngettext("%(kind)s: %(n)s terminal", "%(kind)s: %(n)s terminals", a.terminal_count)
            % {"kind": capfirst(a.get_kind_display()), "n": a.terminal_count},
            state=a.get_status_display(),
            next_words=next_step(a),
        )
        for a in apps.order_by("-submitted_at", "-pk")[:CASE_ROWS]
    ]


def _closures(user: User) -> list[OpenItem]:
    cases = filter_cases(cases_visible_to(user), "open").order_by("-requested_at", "-pk")[:CASE_ROWS]
    out = []
    for case in cases:
        view = case_view(user, case)
        out.append(
            OpenItem(
                number=case.number,
                title=f"{capfirst(case.get_kind_display())}: {case.get_reason_display()}",
                state=CaseStatus(case.status).label,
                next_words=view.next_words,
                late=view.review_overdue,
            )
        )
    return out


def _local(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _complaint(complaint: Any, at: datetime) -> OpenItem:
    status = complaint.status
    who = handler(complaint)
    if status in ANSWERED:
        words = _("Answered: read the answer, then close the complaint, or reopen it if it did not help.")
    elif status in WAITING:
        words = (
            _("The provider acknowledges it by %(due)s")
            if who == Handler.PROVIDER
            else _("Your agent acknowledges it by %(due)s")
        ) % {"due": _local(complaint.due_at)}
    else:
        words = (
            _("The provider answers it by %(due)s")
            if who == Handler.PROVIDER
            else _("Your agent answers it by %(due)s")
        ) % {"due": _local(complaint.due_at)}
    return OpenItem(
        number=complaint.number,
        title=complaint.subject,
        state=ComplaintStatus(status).label if status in ComplaintStatus.values else status,
        next_words=words,
        late=overdue(status, complaint.due_at, at),
    )
