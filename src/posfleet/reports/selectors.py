"""The reports' rows: one function per report, each the one read model its chart, table, files and API
answer show (docs/adr/0028).

Every figure is read through another context's scoped selector — ``terminals_visible_to``,
``search_transactions`` and ``sales_months_visible_to`` (sales added up by month at ingest),
``cases_visible_to``, ``visible_applications``, the audit chain's
``events_about`` — asked for ``viewer`` (``scope.report_viewer``), and aggregated in the database,
grouped by month in the provider's time zone: a fixed number of queries whatever the size of the fleet,
never a loop over transactions or terminals. Status groups, reasons and SLA clocks are those of the
contexts that own them (``fleet.states.TRANSACTING``/``IN_SERVICE``, the reasons' TextChoices, the
``review_due_at`` each service sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.db.models import (
    Avg,
    Count,
    DateField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _

from posfleet.billing.selectors import (
    TransactionFilters,
    TransactionKind,
    TransactionStatus,
    sales_months_visible_to,
    search_transactions,
)
from posfleet.closure.selectors import cases_visible_to
from posfleet.closure.states import CaseStatus
from posfleet.enrollment.selectors import visible_applications
from posfleet.enrollment.states import ApplicationStatus
from posfleet.fleet.selectors import terminals_visible_to
from posfleet.fleet.states import IN_SERVICE, TRANSACTING
from posfleet.iam.models import User
from posfleet.platform.clock import now, start_of, today
from posfleet.reports.scope import (
    add_months,
    month_key,
    months_ahead,
    months_back,
)

HUNDRED = Decimal(100)


def percent(part: int, whole: int) -> Decimal | None:
    """``part`` of ``whole`` in per cent, two decimals, half up; None when there is no whole."""
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def yuan(fen: int) -> Decimal:
    """An amount of fen as yuan, exactly (``123456`` -> ``Decimal("1234.56")``)."""
    return (Decimal(fen) / HUNDRED).quantize(Decimal("0.01"))


def days_of(span: timedelta | None) -> Decimal | None:
    """A duration in days, one decimal, half up."""
    if span is None:
        return None
    seconds = Decimal(span.days) * 86400 + Decimal(span.seconds) + Decimal(span.microseconds) / 10**6
    return (seconds / 86400).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _month(value: date | datetime | None) -> str:
    assert value is not None
    return month_key(value.date() if isinstance(value, datetime) else value)


def _by_month(field: str) -> TruncMonth:
    """The first day of ``field``'s month in the provider's time zone."""
    return TruncMonth(field, output_field=DateField())


def _label(choices: Any, value: str) -> str:
    """The translated label of ``value`` among a TextChoices', or the value itself."""
    return str(choices(value).label) if value in choices.values else value


def _field_label(qs: QuerySet[Any], field: str, value: str) -> str:
    """The translated label of ``value`` of a choices field of ``qs``'s model (the model's own
    choices: read, never copied)."""
    labels = dict(qs.model._meta.get_field(field).flatchoices)
    return str(labels.get(value, value))


def _model_name(maker: str, name: str) -> str:
    return f"{maker} {name}"  # as fleet.selectors.count_by_model names a model


# -- 1. the fleet by status and model and 2. activity, month by month: reports/history.py ---------


# -- 3. dormant terminals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DormantRow:
    sn: str
    model: str
    model_name: str
    merchant: str  # MID
    merchant_name: str
    agent: str  # agent code
    active_since: datetime | None  # when it last became active
    last_sale_at: datetime | None  # its last approved sale with its merchant; None: never
    days_without_sale: int | None  # since the last sale; None: never sold


def dormant_terminals(viewer: User, days: int) -> list[DormantRow]:
    """Terminals that may transact (``fleet.states.TRANSACTING``) and made no approved sale with their
    merchant in the last ``days`` days: never sold first, then the longest silent. One query: for each
    terminal, an index range on its transactions since the cut-off (``txn_terminal_time_idx``)."""
    at = now()
    cutoff = at - timedelta(days=days)
    approved = TransactionFilters(
        kinds=(TransactionKind.SALE.value,), statuses=(TransactionStatus.APPROVED.value,)
    )
    its_sales = (
        search_transactions(viewer, approved)
        .order_by()
        .filter(terminal=OuterRef("pk"), merchant=OuterRef("merchant"))
    )
    rows = (
        terminals_visible_to(viewer)
        .filter(~Exists(its_sales.filter(occurred_at__gte=cutoff)), status__in=TRANSACTING)
        .annotate(last_sale=Subquery(its_sales.order_by("-occurred_at").values("occurred_at")[:1]))
        .order_by(F("last_sale").asc(nulls_first=True), "sn")
        .values_list(
            "sn",
            "model__code",
            "model__maker",
            "model__name",
            "merchant__mid",
            "merchant__name",
            "agent__code",
            "status_changed_at",
            "last_sale",
        )
    )
    return [
        DormantRow(
            sn=sn,
            model=code,
            model_name=_model_name(maker, name),
            merchant=mid or "",
            merchant_name=merchant_name or "",
            agent=agent or "",
            active_since=since,
            last_sale_at=last,
            days_without_sale=(at - last).days if last is not None else None,
        )
        for sn, code, maker, name, mid, merchant_name, agent, since, last in rows
    ]


# -- 4. the expiry forecast --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryRow:
    month: str
    terminals: int  # in service (fleet.states.IN_SERVICE) whose service ends that month


def expiry_forecast(viewer: User, months: int) -> list[ExpiryRow]:
    """Terminals in service whose service (SIM) term ends in each of this month (from today) and the
    ``months - 1`` after it, zeros included. One query."""
    start = today()
    firsts = months_ahead(months, start)
    end = add_months(firsts[-1], 1) - timedelta(days=1)
    rows = (
        terminals_visible_to(viewer)
        .filter(status__in=IN_SERVICE, service_expires_on__gte=start, service_expires_on__lte=end)
        .order_by()
        .annotate(month=_by_month("service_expires_on"))
        .values("month")
        .annotate(n=Count("pk"))
    )
    found = {_month(r["month"]): r["n"] for r in rows}
    return [ExpiryRow(month_key(first), found.get(month_key(first), 0)) for first in firsts]


# -- 5. transaction volume and mix by payment method -------------------------------------------------


@dataclass(frozen=True)
class VolumeRow:
    month: str
    method: str
    method_label: str
    sales: int  # approved sales
    amount_fen: int
    amount_yuan: Decimal
    share_percent: Decimal | None  # of the month's amount


def transaction_volume(viewer: User, months: int) -> list[VolumeRow]:
    """Approved sales per month and payment method (count and amount), each method's share of the
    month's amount, the sales of an agent's merchants counted while they were its merchants. One query
    over the sales added up by month at ingest (``SalesMonth``): rows per agent, month, method and
    model, whatever the number of merchants, terminals and transactions."""
    first = months_back(months, today())[0]
    months_of = sales_months_visible_to(viewer).filter(month__gte=first, status=TransactionStatus.APPROVED)
    rows = months_of.order_by().values("month", "method").annotate(n=Sum("sales"), amount=Sum("amount_fen"))
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    totals: dict[str, int] = {}
    for r in cast(list[dict[str, Any]], list(rows)):
        month = _month(r["month"])
        counts[(month, r["method"])] = (r["n"], r["amount"])
        totals[month] = totals.get(month, 0) + r["amount"]
    return [
        VolumeRow(
            month=month,
            method=method,
            method_label=_field_label(months_of, "method", method),
            sales=n,
            amount_fen=amount,
            amount_yuan=yuan(amount),
            share_percent=percent(amount, totals[month]),
        )
        for (month, method), (n, amount) in sorted(counts.items())
    ]


# -- 6. decline rate by terminal model ---------------------------------------------------------------


@dataclass(frozen=True)
class DeclineRow:
    model: str
    model_name: str
    sales: int  # sales asked for (approved and declined)
    declined: int  # declined by the issuer or the gateway (status declined)
    decline_rate_percent: Decimal | None


def decline_rates(viewer: User, months: int) -> list[DeclineRow]:
    """Per terminal model, over the last ``months`` months: sales asked for, how many were declined and
    the rate (declined ÷ all sales). One query over the sales by month (``SalesMonth``)."""
    first = months_back(months, today())[0]
    declined = Q(status=TransactionStatus.DECLINED)
    rows = (
        sales_months_visible_to(viewer)
        .filter(month__gte=first)
        .values("model__code", "model__maker", "model__name")
        .annotate(n=Sum("sales"), declined=Sum("sales", filter=declined, default=0))
        .order_by("model__maker", "model__name")
    )
    return [
        DeclineRow(
            model=r["model__code"],
            model_name=_model_name(r["model__maker"], r["model__name"]),
            sales=r["n"],
            declined=r["declined"],
            decline_rate_percent=percent(r["declined"], r["n"]),
        )
        for r in rows
    ]


# -- 7. SLA compliance: closure review and application review ----------------------------------------

CLOSURE_REVIEW = "closure_review"
APPLICATION_REVIEW = "application_review"


@dataclass(frozen=True)
class SlaRow:
    month: str  # when the case was asked for / the application submitted
    process: str  # closure_review | application_review
    process_label: str
    on_time: int  # decided by its review clock
    late: int  # decided after it, or still waiting past it
    waiting: int  # still waiting, its clock still running
    compliance_percent: Decimal | None  # on time ÷ (on time + late)


def review_late(waiting: str, at: datetime) -> Q:
    """Waiting for review (status ``waiting``) with the review clock past at ``at``: ``review_overdue``
    of closure.states and enrollment.states, as a query."""
    return Q(status=waiting, review_due_at__lt=at)


def _sla_counts(decided_at: str, waiting: str, at: datetime) -> dict[str, Count]:
    """The three counts of a review clock (``review_due_at``, set by the service that opened the
    review): decided by it, decided after it or still waiting past it, still waiting within it."""
    return {
        "on_time": Count("pk", filter=Q(**{f"{decided_at}__lte": F("review_due_at")})),
        "late": Count("pk", filter=Q(**{f"{decided_at}__gt": F("review_due_at")}) | review_late(waiting, at)),
        "waiting": Count("pk", filter=Q(status=waiting, review_due_at__gte=at)),
    }


def _keyed(rows: Any) -> dict[str, dict[str, Any]]:
    return {_month(r["month"]): r for r in rows}


def sla_compliance(viewer: User, months: int) -> list[SlaRow]:
    """Per month of request: closure cases reviewed within their review clock (CLOSURE_REVIEW_DAYS, an
    agent termination's AGENT_REVIEW_DAYS) and applications decided (approved or rejected) within
    theirs (REVIEW_SLA_HOURS, started again when the applicant answers a request for information).
    A case withdrawn before review, an application waiting for its applicant, count neither way. Two
    queries."""
    at = now()
    firsts = months_back(months, today())
    since = start_of(firsts[0])
    cases = (
        cases_visible_to(viewer)
        .filter(requested_at__gte=since)
        .order_by()
        .annotate(month=_by_month("requested_at"))
        .values("month")
        .annotate(**_sla_counts("reviewed_at", CaseStatus.REQUESTED, at))
    )
    applications = (
        visible_applications(viewer)
        .filter(submitted_at__gte=since)
        .order_by()
        .annotate(month=_by_month("submitted_at"))
        .values("month")
        .annotate(**_sla_counts("decided_at", ApplicationStatus.SUBMITTED, at))
    )
    processes = (
        (CLOSURE_REVIEW, _("closure review"), _keyed(cases)),
        (APPLICATION_REVIEW, _("application review"), _keyed(applications)),
    )
    rows = []
    for first in firsts:
        month = month_key(first)
        for process, label, found in processes:
            r = found.get(month)
            if r is None or not (r["on_time"] or r["late"] or r["waiting"]):
                continue
            rows.append(
                SlaRow(
                    month=month,
                    process=process,
                    process_label=label,
                    on_time=r["on_time"],
                    late=r["late"],
                    waiting=r["waiting"],
                    compliance_percent=percent(r["on_time"], r["on_time"] + r["late"]),
                )
            )
    return rows


# -- 8. deposit refund times -------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundTimeRow:
    month: str  # when the deposits were released
    deposits: int  # released (refunded in whole or part, or forfeited) by a closure case
    refunded_fen: int
    refunded_yuan: Decimal
    average_days: Decimal | None  # from the closure request to the deposit's release
    longest_days: Decimal | None


def deposit_refund_times(viewer: User, months: int) -> list[RefundTimeRow]:
    """Per month of release: the deposits of the terminals of closure cases released that month, what
    came back, and how long it took from the case's request to the release (article 004: refunds that
    stall). Only approved cases release a deposit. One query."""
    since = start_of(months_back(months, today())[0])
    deposit = "terminals__contract__deposit"
    waited = ExpressionWrapper(F(f"{deposit}__released_at") - F("requested_at"), output_field=DurationField())
    rows = (
        cases_visible_to(viewer)
        .filter(
            status__in=(CaseStatus.RUNNING, CaseStatus.COMPLETED), **{f"{deposit}__released_at__gte": since}
        )
        .order_by()
        .annotate(month=_by_month(f"{deposit}__released_at"))
        .values("month")
        .annotate(
            n=Count(deposit),
            refunded=Sum(f"{deposit}__refunded_fen"),
            average=Avg(waited),
            longest=Max(waited),
        )
        .order_by("month")
    )
    return [
        RefundTimeRow(
            month=_month(r["month"]),
            deposits=r["n"],
            refunded_fen=r["refunded"] or 0,
            refunded_yuan=yuan(r["refunded"] or 0),
            average_days=days_of(r["average"]),
            longest_days=days_of(r["longest"]),
        )
        for r in rows
    ]
