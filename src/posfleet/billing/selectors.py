"""Reading money, always through the user's scope: another tenant's contracts, deposits, transactions,
settlements and journals simply are not there. Sections are owned by their authors (see headers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    Max,
    Min,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, ExtractMonth, ExtractYear

from posfleet.billing.models import (
    Account,
    AccountKind,
    Deposit,
    Entry,
    Journal,
    PlanAssignment,
    PlanChangeRequest,
    RatePlan,
    RatePlanVersion,
    SalesMonth,
    ServiceContract,
    ServiceFeeDue,
    SettlementBatch,
    SettlementRun,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from posfleet.billing.models.settlement import batches_paying
from posfleet.billing.statements.periods import Month, months_between
from posfleet.billing.statements.settlements import SettlementRow, settlement_rows
from posfleet.fleet.selectors import Terminal
from posfleet.iam.models import User
from posfleet.iam.selectors import provider, scope_of
from posfleet.parties.selectors import by_visible_agent, merchants_visible_to
from posfleet.platform.errors import NotFound
from posfleet.platform.exports import Column, ColumnType

MERCHANT_ACCOUNT_KINDS = (
    AccountKind.SETTLEMENT_PAYABLE,
    AccountKind.DEPOSIT_HELD,
    AccountKind.FEES_RECEIVABLE,
    AccountKind.PENALTIES_RECEIVABLE,
    AccountKind.REFUNDS_PAYABLE,
)
PROVIDER_ACCOUNT_KINDS = (
    AccountKind.BANK_CLEARING,
    AccountKind.FEE_REVENUE,
    AccountKind.PENALTY_REVENUE,
    AccountKind.DEVICE_RECOVERY,
)


# ---------------------------------------------------------------------------------------------
# API reads (api/routers/{plans,contracts,deposits,transactions,settlements,ledger}.py)


def is_staff(user: User) -> bool:
    """Provider staff see every merchant's money and the provider's own accounts."""
    return user.is_active and scope_of(user) is None


def _scoped[M: Model](qs: QuerySet[M], user: User) -> QuerySet[M]:
    """``qs`` (of a model with a ``merchant``) cut to the merchants ``user`` may see."""
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if is_staff(user):
        return qs
    return qs.filter(merchant__in=merchants_visible_to(user).values("pk"))


def _first[M: Model](qs: QuerySet[M]) -> M:
    found = qs.first()
    if found is None:
        raise NotFound()
    return found


# Rate plans: a catalogue every signed-in user reads (competitors' plans included, for comparison).


def rate_plans() -> QuerySet[RatePlan]:
    versions = RatePlanVersion.objects.prefetch_related("rules").order_by("-effective_from", "-number")
    return RatePlan.objects.prefetch_related(Prefetch("versions", queryset=versions))


def rate_plan_for(code: str) -> RatePlan:
    return _first(rate_plans().filter(code=code))


def plan_assignments_visible_to(user: User, plan: RatePlan) -> QuerySet[PlanAssignment]:
    qs = PlanAssignment.objects.select_related("merchant", "terminal", "plan").filter(plan=plan)
    return _scoped(qs, user)


# Contracts and deposits


def contracts_visible_to(user: User) -> QuerySet[ServiceContract]:
    qs = ServiceContract.objects.select_related("merchant", "terminal", "plan")
    return _scoped(qs, user)


def contract_for(user: User, contract_id: int) -> ServiceContract:
    qs = contracts_visible_to(user).prefetch_related("fees_due")
    qs = qs.select_related("deposit__merchant", "deposit__release_journal")
    return _first(qs.filter(pk=contract_id))


def deposits_visible_to(user: User) -> QuerySet[Deposit]:
    qs = Deposit.objects.select_related("merchant", "contract__terminal", "release_journal")
    return _scoped(qs, user)


def deposit_for(user: User, deposit_id: int) -> Deposit:
    return _first(deposits_visible_to(user).filter(pk=deposit_id))


# Transactions


@dataclass(frozen=True)
class TransactionFilters:
    merchant: str = ""  # MID
    terminal: str = ""  # SN
    tid: str = ""
    date_from: date | None = None  # transaction date (txn_date), inclusive
    date_to: date | None = None
    methods: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()


def with_settlement(qs: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """Each transaction annotated with the batch that paid it (``settled_by``, ``settled_on``: its
    merchant's first batch on or after its day total's settlement day), or None while unpaid."""
    paid_by = batches_paying(OuterRef("daily_total__merchant_id"), OuterRef("daily_total__settle_day"))
    return qs.annotate(
        settled_by=Subquery(paid_by.values("pk")[:1]), settled_on=Subquery(paid_by.values("paid_on")[:1])
    )


def transactions_visible_to(user: User) -> QuerySet[Transaction]:
    qs = Transaction.objects.select_related("merchant", "terminal", "plan_version", "plan_version__plan")
    return with_settlement(_scoped(qs, user))


def sales_months_visible_to(user: User) -> QuerySet[SalesMonth]:
    """The sales by month (``SalesMonth``) ``user`` may read: the provider's staff all of them, an
    agent those of the agents it sees (its subtree: the sales its merchants made while they were its
    merchants), anyone else none."""
    scope = by_visible_agent(user)
    return SalesMonth.objects.none() if scope is None else SalesMonth.objects.filter(scope)


def search_transactions(user: User, filters: TransactionFilters) -> QuerySet[Transaction]:
    qs = transactions_visible_to(user)
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant)
    if filters.terminal:
        qs = qs.filter(terminal__sn=filters.terminal.strip().upper())
    if filters.tid:
        qs = qs.filter(tid=filters.tid)
    if filters.date_from:
        qs = qs.filter(txn_date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(txn_date__lte=filters.date_to)
    if filters.methods:
        qs = qs.filter(method__in=filters.methods)
    if filters.kinds:
        qs = qs.filter(kind__in=filters.kinds)
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    return qs


def transaction_for(user: User, transaction_id: int) -> Transaction:
    return _first(transactions_visible_to(user).filter(pk=transaction_id))


# -- a terminal's money at a glance (the console's terminal page) and dormant terminals (the device
# list and the API's terminal list: one rule). Owned by the terminal page's author.

# A sale that went through: what "a terminal sells" means (declines, refunds and reversals do not).
APPROVED_SALE = Q(kind=TransactionKind.SALE, status=TransactionStatus.APPROVED)


def dormant_since(days: int, at: datetime) -> datetime:
    """The start of the ``days``-day window up to ``at`` a dormant terminal made no approved sale in."""
    return at - timedelta(days=days)


def dormant(terminals: QuerySet[Terminal], days: int, at: datetime) -> QuerySet[Terminal]:
    """Of ``terminals``, those without an approved sale in the ``days`` days up to ``at`` (dormant).

    ``NOT EXISTS`` per terminal over the (terminal, occurred_at) index (``txn_terminal_time_idx``): a
    terminal that sells stops at its first recent sale, a dormant one finds no row in the window."""
    sold = Transaction.objects.filter(
        APPROVED_SALE, terminal_id=OuterRef("pk"), occurred_at__gte=dormant_since(days, at)
    )
    return terminals.filter(~Exists(sold.order_by()))


def last_transaction_on(user: User, terminal_id: int) -> Transaction | None:
    """The newest transaction on the terminal of a merchant ``user`` may see (a refurbished device's
    earlier merchants' sales are not theirs to read), or None."""
    qs = _scoped(Transaction.objects.filter(terminal_id=terminal_id), user)
    return qs.order_by("-occurred_at", "-id").first()


def contract_of_terminal(user: User, terminal_id: int) -> ServiceContract | None:
    """The terminal's service contract ``user`` may see, with its deposit: the active one, else an offer
    waiting, else the latest that ended; None when it has none."""
    rank = Case(
        When(status=ServiceContract.Status.ACTIVE, then=Value(0)),
        When(status=ServiceContract.Status.OFFERED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    qs = contracts_visible_to(user).select_related("deposit").filter(terminal_id=terminal_id)
    return qs.order_by(rank, "-created_at", "-pk").first()


# Settlement


def settlements_visible_to(user: User) -> QuerySet[SettlementBatch]:
    return _scoped(SettlementBatch.objects.select_related("merchant", "run", "journal"), user)


def settlement_for(user: User, batch_id: int) -> SettlementBatch:
    return _first(settlements_visible_to(user).filter(pk=batch_id))


def settlement_runs() -> QuerySet[SettlementRun]:
    """Runs with what they paid: ``batch_count`` and ``payout_total_fen``."""
    return SettlementRun.objects.annotate(
        batch_count=Count("batches"), payout_total_fen=Coalesce(Sum("batches__payout_fen"), 0)
    )


# The ledger


def accounts_of(organisation_id: int, kinds: tuple[str, ...]) -> dict[str, Account | None]:
    """The organisation's accounts of ``kinds`` (None where nothing was ever posted)."""
    found = {a.kind: a for a in Account.objects.filter(organisation_id=organisation_id, kind__in=kinds)}
    return {kind: found.get(kind) for kind in kinds}


def provider_organisation_id() -> int | None:
    root = provider()
    return root.pk if root is not None else None


def journals_visible_to(user: User) -> QuerySet[Journal]:
    entries = Entry.objects.select_related(
        "account__organisation__merchant", "account__organisation__agent"
    ).order_by("id")
    qs = Journal.objects.select_related("merchant", "reverses").prefetch_related(
        Prefetch("entries", queryset=entries)
    )
    return _scoped(qs, user)


# ---------------------------------------------------------------------------------------------
# Console money pages (console/views/money/*): transaction search with amounts and batches,
# balances, the monthly takings chart, what is due next. Owned by the statements/console author.


@dataclass(frozen=True)
class TransactionSearch(TransactionFilters):
    """The console's search: the API's filters plus an SN-or-TID box, an amount range and a batch."""

    terminal_or_tid: str = ""  # an SN or a TID, exactly
    amount_min_fen: int | None = None
    amount_max_fen: int | None = None
    batch_id: int | None = None


# sort key -> ordering (each ends with the id, so pages never overlap)
TRANSACTION_SORTS: dict[str, tuple[str, ...]] = {
    "time": ("occurred_at", "id"),
    "-time": ("-occurred_at", "-id"),
    "amount": ("amount_fen", "id"),
    "-amount": ("-amount_fen", "-id"),
    "fee": ("fee_fen", "id"),
    "-fee": ("-fee_fen", "-id"),
    "merchant": ("merchant__mid", "-occurred_at", "-id"),
    "-merchant": ("-merchant__mid", "-occurred_at", "-id"),
}
DEFAULT_TRANSACTION_SORT = "-time"


def find_transactions(
    user: User, search: TransactionSearch, sort: str = DEFAULT_TRANSACTION_SORT
) -> QuerySet[Transaction]:
    """The transactions ``user`` may see that match ``search``, in ``sort`` order."""
    qs = search_transactions(user, search)
    needle = search.terminal_or_tid.strip().upper()
    if needle:
        qs = qs.filter(Q(tid=needle) | Q(terminal__sn=needle))
    if search.amount_min_fen is not None:
        qs = qs.filter(amount_fen__gte=search.amount_min_fen)
    if search.amount_max_fen is not None:
        qs = qs.filter(amount_fen__lte=search.amount_max_fen)
    if search.batch_id is not None:
        batch = SettlementBatch.objects.filter(pk=search.batch_id).first()
        qs = qs.filter(batch.pays("daily_total__")) if batch is not None else qs.none()
    return qs.order_by(*TRANSACTION_SORTS.get(sort, TRANSACTION_SORTS[DEFAULT_TRANSACTION_SORT]))


def balances_of(organisation_id: int) -> dict[str, int]:
    """A merchant's account balances as people read them (owed or held: positive), 0 when never used."""
    accounts = Account.objects.filter(organisation_id=organisation_id, kind__in=MERCHANT_ACCOUNT_KINDS)
    found = {a.kind: a.natural_balance_fen for a in accounts}
    return {kind: found.get(kind, 0) for kind in MERCHANT_ACCOUNT_KINDS}


def merchants_with_balances(user: User, q: str = "") -> QuerySet[Any]:
    """The merchants ``user`` may see, each with its settlement payable, deposit held and fees
    receivable balances (``payable_fen``, ``deposit_fen``, ``fees_fen``; raw ledger signs)."""

    def balance(kind: str) -> Coalesce:
        account = Account.objects.filter(organisation_id=OuterRef("organisation_id"), kind=kind)
        return Coalesce(Subquery(account.values("balance_fen")[:1]), 0)

    qs = merchants_visible_to(user)
    needle = q.strip()
    if needle:
        qs = qs.filter(Q(mid__startswith=needle.upper()) | Q(name__icontains=needle))
    return qs.annotate(
        payable_raw=balance(AccountKind.SETTLEMENT_PAYABLE),
        deposit_raw=balance(AccountKind.DEPOSIT_HELD),
        fees_fen=balance(AccountKind.FEES_RECEIVABLE),
    ).order_by("mid")


@dataclass(frozen=True)
class MonthFigures:
    month: Month
    sales_fen: int
    refunds_fen: int
    fees_fen: int  # net of fees handed back with refunds and reversals
    sales_count: int

    @property
    def takings_fen(self) -> int:
        return self.sales_fen - self.refunds_fen


def monthly_figures(merchant_id: int, first: Month, last: Month) -> list[MonthFigures]:
    """Sales, refunds and fees per month from ``first`` to ``last`` (zeros included): one query."""
    sale = Q(status=TransactionStatus.APPROVED, kind=TransactionKind.SALE)
    follow_up = Q(status=TransactionStatus.APPROVED) & ~Q(kind=TransactionKind.SALE)
    rows = (
        Transaction.objects.filter(
            merchant_id=merchant_id, txn_date__gte=first.first_day, txn_date__lte=last.last_day
        )
        .order_by()
        .annotate(y=ExtractYear("txn_date"), m=ExtractMonth("txn_date"))
        .values("y", "m")
        .annotate(
            sales=Coalesce(Sum("amount_fen", filter=sale), 0),
            refunds=Coalesce(Sum("amount_fen", filter=follow_up), 0),
            fees=Coalesce(Sum("fee_fen", filter=sale), 0) - Coalesce(Sum("fee_fen", filter=follow_up), 0),
            count=Count("id", filter=sale),
        )
    )
    found = {(r["y"], r["m"]): r for r in rows}
    empty = {"sales": 0, "refunds": 0, "fees": 0, "count": 0}
    return [
        MonthFigures(
            month=m,
            sales_fen=(r := found.get((m.year, m.month), empty))["sales"],
            refunds_fen=r["refunds"],
            fees_fen=r["fees"],
            sales_count=r["count"],
        )
        for m in months_between(first, last)
    ]


def recent_settlements(merchant_id: int, limit: int = 10) -> list[SettlementRow]:
    """The merchant's latest batches, newest first, each with every deduction (``SettlementRow``)."""
    batches = SettlementBatch.objects.filter(merchant_id=merchant_id).select_related("merchant", "journal")
    return settlement_rows(list(batches.order_by("-business_date")[:limit]))


def fees_due_next(merchant_id: int, limit: int = 5) -> list[ServiceFeeDue]:
    """Service fees not yet charged, soonest first (of active contracts)."""
    return list(
        ServiceFeeDue.objects.filter(
            contract__merchant_id=merchant_id,
            contract__status=ServiceContract.Status.ACTIVE,
            journal__isnull=True,
        )
        .select_related("contract__terminal")
        .order_by("due_on", "pk")[:limit]
    )


def current_assignment(merchant_id: int, day: date) -> PlanAssignment | None:
    """The merchant-wide plan assignment in force on ``day``."""
    return (
        PlanAssignment.objects.select_related("plan")
        .filter(merchant_id=merchant_id, terminal__isnull=True, effective_from__lte=day)
        .order_by("-effective_from")
        .first()
    )


def upcoming_assignments(merchant_id: int, day: date) -> list[PlanAssignment]:
    """Plan changes of the merchant (or its terminals) that start after ``day``."""
    return list(
        PlanAssignment.objects.select_related("plan", "terminal")
        .filter(merchant_id=merchant_id, effective_from__gt=day)
        .order_by("effective_from")
    )


# -- a closed merchant's history, for its re-application (enrollment/eligibility) ---------------------


def terminals_transacted(merchant_id: int) -> dict[int, tuple[str, datetime, datetime]]:
    """Terminal id → (SN, first, last transaction) of every terminal the merchant transacted on."""
    rows = (
        Transaction.objects.filter(merchant_id=merchant_id)
        .order_by()
        .values("terminal_id", "terminal__sn")
        .annotate(first=Min("occurred_at"), last=Max("occurred_at"))
        .values_list("terminal_id", "terminal__sn", "first", "last")
    )
    return {terminal_id: (sn, first, last) for terminal_id, sn, first, last in rows}


def transactions_in(merchant_id: int, windows: list[tuple[int, datetime, datetime | None]]) -> list[int]:
    """How many of the merchant's transactions each (terminal id, from, until) window holds."""
    if not windows:
        return []
    counts = Transaction.objects.filter(merchant_id=merchant_id).aggregate(
        **{
            f"t{i}": Count(
                "pk",
                filter=Q(terminal_id=terminal_id, occurred_at__gte=start)
                & (Q(occurred_at__lt=end) if end is not None else Q()),
            )
            for i, (terminal_id, start, end) in enumerate(windows)
        }
    )
    return [counts[f"t{i}"] for i in range(len(windows))]


def activity(merchant_id: int, after: date, until: date) -> dict[str, int]:
    """The merchant's transactions dated after ``after`` up to ``until``: counts and sums of sales,
    refunds and reversals, declines (approved follow-ups of sales are ``returned_fen``)."""
    sale = Q(kind=TransactionKind.SALE, status=TransactionStatus.APPROVED)
    follow_up = Q(status=TransactionStatus.APPROVED) & ~Q(kind=TransactionKind.SALE)
    refund = Q(kind=TransactionKind.REFUND, status=TransactionStatus.APPROVED)
    return Transaction.objects.filter(
        merchant_id=merchant_id, txn_date__gt=after, txn_date__lte=until
    ).aggregate(
        transactions=Count("pk"),
        sales=Count("pk", filter=sale),
        sales_fen=Sum("amount_fen", filter=sale, default=0),
        returned_fen=Sum("amount_fen", filter=follow_up, default=0),
        declined=Count("pk", filter=Q(status=TransactionStatus.DECLINED)),
        reversals=Count("pk", filter=Q(kind=TransactionKind.REVERSAL, status=TransactionStatus.APPROVED)),
        refunds=Count("pk", filter=refund),
        refunds_fen=Sum("amount_fen", filter=refund, default=0),
    )


def amounts_owed(organisation_id: int) -> tuple[int, int]:
    """(service fees, penalties) the merchant owes, in fen (never below 0)."""
    balances = balances_of(organisation_id)
    return (
        max(0, balances[AccountKind.FEES_RECEIVABLE]),
        max(0, balances[AccountKind.PENALTIES_RECEIVABLE]),
    )


def active_contracts_of(terminal_ids: list[int]) -> dict[int, int]:
    """The active contract of each of ``terminal_ids`` that has one: terminal id → contract id."""
    return dict(
        ServiceContract.objects.filter(
            terminal_id__in=terminal_ids, status=ServiceContract.Status.ACTIVE
        ).values_list("terminal_id", "pk")
    )


def deposit_of_contract(contract_id: int) -> int | None:
    """The id of the contract's deposit (held or released), or None when it took none."""
    return Deposit.objects.filter(contract_id=contract_id).values_list("pk", flat=True).first()


# The columns of a transaction wherever one is written out: the staff's export (billing/exports.py) and
# the merchant's data backup (closure/backup_tables.py) — one list, so both files read alike.
_INT, _DATE, _TIME = ColumnType.INTEGER, ColumnType.DATE, ColumnType.DATETIME
TRANSACTION_COLUMNS: tuple[Column, ...] = (
    Column("id", "id", _INT, required=True),
    Column("occurred_at", "occurred_at", _TIME, required=True, fractions=True),
    Column("txn_date", "txn_date", _DATE, required=True),
    Column("merchant_mid", "merchant__mid", required=True),
    Column("terminal_sn", "terminal__sn", required=True),
    Column("tid", "tid", required=True),
    Column("batch_no", "batch_no", required=True),
    Column("trace_no", "trace_no", required=True),
    Column("kind", "kind", required=True),
    Column("status", "status", required=True),
    Column("method", "method", required=True),
    Column("entry_mode", "entry_mode", required=True),
    Column("amount_fen", "amount_fen", _INT, required=True),
    Column("fee_fen", "fee_fen", _INT, required=True),
    Column("currency", constant="CNY", required=True),
    Column("card_masked", "card_masked"),
    Column("response_code", "response_code"),
    Column("original_id", "original_id", _INT),
    Column("settlement_batch_id", "settled_by", _INT),
    Column("external_id", "external_id"),
)


# -- plan change requests (ADR 0027; billing/services/plan_changes.py writes them) ----------------------


def plan_change_requests_visible_to(user: User) -> QuerySet[PlanChangeRequest]:
    """The requests of the merchants ``user`` may see (staff: all), waiting ones first, newest first."""
    qs = PlanChangeRequest.objects.select_related(
        "merchant", "from_plan", "to_plan", "requested_by", "decided_by", "assignment"
    )
    return _scoped(qs, user)


def plan_change_for(user: User, request_id: int) -> PlanChangeRequest:
    """Request ``request_id`` as ``user`` sees it; another's is not there (``NotFound``)."""
    return _first(plan_change_requests_visible_to(user).filter(pk=request_id))


def latest_plan_change(merchant_id: int) -> PlanChangeRequest | None:
    """The merchant's waiting request, else its latest one (None when it never asked)."""
    qs = PlanChangeRequest.objects.select_related("to_plan", "from_plan", "assignment").filter(
        merchant_id=merchant_id
    )
    return qs.filter(status="requested").first() or qs.order_by("-requested_at", "-id").first()
