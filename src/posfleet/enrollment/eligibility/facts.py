"""Facts: the merchant's history, read once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from posfleet.audit.selectors import events_about
from posfleet.audit.vocabulary import EventType
from posfleet.billing import selectors as billing
from posfleet.billing.services.contracts import add_months
from posfleet.fleet import selectors as fleet
from posfleet.fleet.states import WITH_MERCHANT, Status
from posfleet.platform.errors import DomainError


class MerchantRef(Protocol):
    """What eligibility reads of a merchant (``parties.Merchant``; that module is not ours to import)."""

    @property
    def pk(self) -> Any: ...
    @property
    def mid(self) -> str: ...
    @property
    def organisation_id(self) -> int: ...


class MerchantNotClosed(DomainError):
    code = "merchant_not_closed"
    status = 409
    title = gettext_lazy("Only a merchant whose terminals are all closed can apply again.")


@dataclass(frozen=True)
class Facts:
    """What the decision is computed from. Transaction figures cover the ``lookback_months`` up to the
    day of closure; the service keeps no dispute record, so approved refunds stand in for disputes."""

    merchant_mid: str
    closed_at: datetime  # when the merchant's last terminal was deregistered
    closure_reason: str  # that deregistration's reason (DeactivationReason value), "" if none on record
    terminals: int  # terminals the merchant held
    active_days: int  # days on which at least one of them was active (overlaps counted once)
    lookback_months: int
    volume_fen: int  # takings: approved sales less approved refunds and reversals (never below 0)
    sales: int  # approved sales
    transactions: int  # every transaction recorded: sales, refunds, reversals, approved or declined
    declined: int
    reversals: int  # approved reversals (sales cancelled the same day)
    refunds: int  # approved refunds: the stand-in for disputes
    refunds_fen: int
    fees_owed_fen: int  # fees receivable not paid
    penalties_owed_fen: int  # penalties receivable not paid
    kyc_checked_on: date | None = None

    @property
    def closed_on(self) -> date:
        return timezone.localdate(self.closed_at)

    @property
    def months_active(self) -> int:
        return self.active_days * 12 // 365

    @property
    def anomaly_rate_bp(self) -> int | None:
        """Declines and reversals per 10,000 transactions; None without transactions."""
        return (self.declined + self.reversals) * 10_000 // self.transactions if self.transactions else None

    @property
    def debt_fen(self) -> int:
        return self.fees_owed_fen + self.penalties_owed_fen

    def kyc_age_days(self, on: date) -> int | None:
        return None if self.kyc_checked_on is None else max(0, (on - self.kyc_checked_on).days)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["closed_at"] = self.closed_at.isoformat()
        data["kyc_checked_on"] = self.kyc_checked_on.isoformat() if self.kyc_checked_on else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Facts:
        values = dict(data)
        values["closed_at"] = datetime.fromisoformat(values["closed_at"])
        kyc = values.get("kyc_checked_on")
        values["kyc_checked_on"] = date.fromisoformat(kyc) if kyc else None
        return cls(**values)


@dataclass
class _Tenure:
    """One stretch of a terminal with one merchant: from ``bound`` to the next ``in_stock`` (refurbish
    clears the binding), with the status periods in between."""

    terminal_id: int
    start: datetime
    end: datetime | None = None
    periods: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)

    def overlaps(self, first: datetime, last: datetime) -> bool:
        return self.start <= last and (self.end is None or first < self.end)


def _tenures(rows: Iterable[tuple[int, str, datetime, datetime | None]]) -> dict[int, list[_Tenure]]:
    found: dict[int, list[_Tenure]] = defaultdict(list)
    for terminal_id, status, started, ended in rows:  # ordered by terminal, then time
        tenures = found[terminal_id]
        current = tenures[-1] if tenures and tenures[-1].end is None else None
        if status == Status.BOUND:
            if current is not None:
                current.end = started
            current = _Tenure(terminal_id, started)
            tenures.append(current)
        elif status == Status.IN_STOCK and current is not None:
            current.end = started
            continue
        if current is not None:
            current.periods.append((status, started, ended))
    return found


def _days_covered(intervals: list[tuple[datetime, datetime]]) -> int:
    """Whole days covered by the union of ``intervals``."""
    total, reach = timedelta(0), None
    for start, end in sorted(intervals):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += end - start
            reach = end
    return total // timedelta(days=1)


def _in_service_text(sns: list[str]) -> str:
    return ngettext(
        "Terminal %(sns)s is still in service: close it first.",
        "Terminals %(sns)s are still in service: close them first.",
        len(sns),
    ) % {"sns": ", ".join(sns[:5]) + ("…" if len(sns) > 5 else "")}


_still_in_service = lazy(_in_service_text, str)


def merchant_facts(
    merchant: MerchantRef, *, lookback_months: int, kyc_checked_on: date | None = None
) -> Facts:
    """The merchant's history, read-only, in five queries: one more when the device closed last has moved
    on since (its reason is then read from the audit chain), one more when a device went to the merchant
    twice with someone else in between.

    Which terminals were the merchant's: those bound to it now, and those it transacted on — a device
    that went back to stock (refurbished) has lost its binding but its transactions still name the
    merchant. A terminal's time with the merchant is its *tenure*, from ``bound`` to the next
    ``in_stock``; a tenure without a single transaction, on a device refurbished since, cannot be
    attributed (posfleet keeps no binding history) and is not counted.
    """
    linked = {pk: (sn, status, reason) for pk, sn, status, reason in fleet.terminals_of_merchant(merchant.pk)}
    in_service = sorted(sn for sn, status, _reason in linked.values() if status in WITH_MERCHANT)
    if in_service:
        raise MerchantNotClosed(_still_in_service(in_service))  # in the language of who reads it
    used = billing.terminals_transacted(merchant.pk)
    sns = {pk: sn for pk, (sn, _status, _reason) in linked.items()} | {
        pk: sn for pk, (sn, _first, _last) in used.items()
    }
    tenures = _tenures(fleet.status_history(list(sns)))
    mine: list[_Tenure] = []
    unsure: list[_Tenure] = []
    for terminal_id, stretches in tenures.items():
        chosen = [stretches[-1]] if terminal_id in linked and stretches else []
        if terminal_id in used:
            _sn, first, last = used[terminal_id]
            candidates = [t for t in stretches if t.overlaps(first, last) and all(t is not c for c in chosen)]
            if len(candidates) == 1 and not chosen:
                chosen += candidates
            else:
                unsure += candidates
        mine += chosen
    if unsure:  # several stretches of one device, someone else's in between: ask which hold its sales
        counts = billing.transactions_in(merchant.pk, [(t.terminal_id, t.start, t.end) for t in unsure])
        mine += [t for t, n in zip(unsure, counts, strict=True) if n]
    closings = [
        (started, t.terminal_id)
        for t in mine
        for status, started, _ in t.periods
        if status == Status.DEREGISTERED
    ]
    if not closings:
        raise MerchantNotClosed(
            _("This merchant has no closure on record: none of its terminals was deregistered.")
        )
    closed_at, closing = max(closings)
    active = [
        (started, min(ended or closed_at, closed_at))
        for t in mine
        for status, started, ended in t.periods
        if status == Status.ACTIVE
    ]
    if closing in linked and linked[closing][1] == Status.DEREGISTERED:
        reason = linked[closing][2]
    else:  # the device moved on since; the deregistration's audit row keeps the reason
        reason = (
            events_about("terminal", [sns[closing]])
            .filter(event_type=EventType.TERMINAL_DEREGISTERED, occurred_at=closed_at)
            .values_list("reason", flat=True)
            .first()
        ) or ""
    closed_on = timezone.localdate(closed_at)
    window = billing.activity(merchant.pk, add_months(closed_on, -lookback_months), closed_on)
    fees_owed, penalties_owed = billing.amounts_owed(merchant.organisation_id)
    return Facts(
        merchant_mid=merchant.mid,
        closed_at=closed_at,
        closure_reason=reason,
        terminals=len({t.terminal_id for t in mine}),
        active_days=_days_covered(active),
        lookback_months=lookback_months,
        volume_fen=max(0, window["sales_fen"] - window["returned_fen"]),
        sales=window["sales"],
        transactions=window["transactions"],
        declined=window["declined"],
        reversals=window["reversals"],
        refunds=window["refunds"],
        refunds_fen=window["refunds_fen"],
        fees_owed_fen=fees_owed,
        penalties_owed_fen=penalties_owed,
        kyc_checked_on=kyc_checked_on,
    )
