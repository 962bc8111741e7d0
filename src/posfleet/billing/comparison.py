"""The cost comparison ("should I switch?", 我该换吗?): what each rate plan would have cost a merchant
for its real transactions, month by month.

Caps and minimums make a fee non-linear in the amount, so the fee of every transaction is computed
exactly with ``platform.money.fee_fen``; but never row by row: for each month (cut again where any
compared plan changes version) the database groups the merchant's approved sales by (payment method,
amount), and the fee of each distinct amount is computed once per plan and multiplied by its count.
One query per month, however many transactions; no date functions in SQL (SQLite runs those in
Python, row by row).

A sale costs its fee; a refund or reversal hands back its share of the sale's fee, exactly as ingest
does (``transactions.returned_fee``), so a plan's cost compares with the fees the merchant actually paid
(the statement's "fees"). Refunds are few: they are walked one by one, sales never are.

The fees are not the whole cost (issue 14, ADR 0027). Each plan's total over the period is the sum of
its lines: the transaction fees; the service and SIM fees (ours: the merchant's service contracts,
which carry on whichever of our plans it is on; a competitor's: its annual fee for each of the
merchant's terminals), a twelfth of a year's fee each month; and, for a competitor's plan, what switching
costs once: the early-termination penalty of each contract left early, as the closure quote computes
it on the same day (``billing.services.closure.leaving_cost``), and the deposit the plan asks for. The
current deposit is shown (what the closure rule takes of it for the penalty is the deposit lost — the
penalty itself, never counted twice). The average per month is over the months with sales only. The
lines' words and the verdict are in ``comparison_words``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from posfleet.billing.models import (
    PaymentMethod,
    RatePlan,
    RateRule,
    ServiceContract,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from posfleet.billing.services.closure import Leaving, leaving_cost
from posfleet.billing.services.plans import PlanBook
from posfleet.billing.services.transactions import returned_fee
from posfleet.billing.statements.periods import Month, months_between
from posfleet.fleet import selectors as fleet
from posfleet.fleet.states import WITH_MERCHANT
from posfleet.platform.clock import today
from posfleet.platform.money import fee_fen, to_fen

MAX_MONTHS = 24
Term = tuple[Decimal, int | None, int | None]  # rate (with any D0 surcharge), cap, minimum

# The lines of a plan's total (``CostLine.code``): every month, then once when switching; the last two
# only explain (``counted`` False).
FEES, SERVICE, PENALTY, NEW_DEPOSIT = "fees", "service", "penalty", "new_deposit"
DEPOSIT_HELD, CONTRACTS_KEPT = "deposit_held", "contracts_kept"


@dataclass(frozen=True)
class CostLine:
    """One line of a plan's total over the period, with what its words need (``line_text``)."""

    code: str
    amount_fen: int
    counted: bool = True  # False: it explains, it is not in the total
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanCost:
    """One plan's cost over the period: month by month (transaction fees and the service/SIM fees'
    share), and once when switching (``switching``)."""

    code: str
    name: str
    provider_name: str
    is_competitor: bool
    is_current: bool
    fees_fen: list[int]  # per month: the transaction fees on the merchant's real sales
    service_fen: list[int] = field(default_factory=list)  # per month: service and SIM fees
    switching: list[CostLine] = field(default_factory=list)  # once (and what explains them)
    # Sales volume (fen) the plan could not price, by payment method: no rate for the method, or no
    # version in force yet at the time. A plan with any is "incomplete" and is never recommended.
    unpriced_fen: dict[str, int] = field(default_factory=dict)
    saving_fen: int | None = None  # against the current plan, everything included: positive = cheaper
    average_fen: int | None = None  # per month with sales (fees and service), None without any
    fees_params: dict[str, Any] = field(default_factory=dict)
    service_params: dict[str, Any] = field(default_factory=dict)

    @property
    def monthly_fen(self) -> list[int]:
        """Per month: the fees and the service fees' share."""
        if not self.service_fen:
            return list(self.fees_fen)
        return [f + s for f, s in zip(self.fees_fen, self.service_fen, strict=True)]

    @property
    def fees_total_fen(self) -> int:
        return sum(self.fees_fen)

    @property
    def service_total_fen(self) -> int:
        return sum(self.service_fen)

    @property
    def once_total_fen(self) -> int:
        return sum(line.amount_fen for line in self.switching if line.counted)

    @property
    def lines(self) -> list[CostLine]:
        """Every line of the total, the explaining ones included: fees, service, then once."""
        return [
            CostLine(FEES, self.fees_total_fen, params=self.fees_params),
            CostLine(SERVICE, self.service_total_fen, params=self.service_params),
            *self.switching,
        ]

    @property
    def total_fen(self) -> int:
        """The total over the period: the sum of its counted lines."""
        return sum(line.amount_fen for line in self.lines if line.counted)

    @property
    def penalty_fen(self) -> int:
        return sum(line.amount_fen for line in self.switching if line.code == PENALTY)

    @property
    def new_deposit_fen(self) -> int:
        return sum(line.amount_fen for line in self.switching if line.code == NEW_DEPOSIT)

    @property
    def complete(self) -> bool:
        return not self.unpriced_fen

    @property
    def unpriced_methods(self) -> list[str]:
        return sorted(self.unpriced_fen)


@dataclass
class Comparison:
    merchant_id: int
    months: list[Month]
    sales_fen: list[int]  # per month: approved sales
    refunds_fen: list[int]  # per month: approved refunds and reversals
    sales_count: list[int]
    actual_fees_fen: list[int]  # per month: the fees stored on the transactions (net of handed back)
    mix_fen: dict[str, int]  # the period's sales by payment method
    plans: list[PlanCost]
    current: PlanCost | None
    d0: bool = False
    terminals: int = 0  # the merchant's terminals (in service or stopped): what per-terminal fees count
    leaving: Leaving | None = None  # what leaving today costs (priced into competitors' plans)

    @property
    def with_sales(self) -> list[bool]:
        """Per month: whether the merchant sold anything (months without are not averaged in)."""
        return [n > 0 for n in self.sales_count]

    @property
    def months_with_sales(self) -> int:
        return sum(self.with_sales)

    @property
    def actual_total_fen(self) -> int:
        return sum(self.actual_fees_fen)

    @property
    def sales_total_fen(self) -> int:
        return sum(self.sales_fen)

    @property
    def has_transactions(self) -> bool:
        return any(self.sales_count) or any(self.refunds_fen)

    @property
    def best(self) -> PlanCost | None:
        """The cheapest complete plan that is not the current one and would have saved money."""
        candidates = [
            p for p in self.plans if not p.is_current and p.complete and p.saving_fen and p.saving_fen > 0
        ]
        return max(candidates, key=lambda p: (p.saving_fen or 0, -len(p.code)), default=None)

    @property
    def best_ours(self) -> PlanCost | None:
        """``best`` among our own plans: the one a merchant can ask to move to."""
        candidates = [
            p
            for p in self.plans
            if not p.is_current and not p.is_competitor and p.complete and p.saving_fen and p.saving_fen > 0
        ]
        return max(candidates, key=lambda p: (p.saving_fen or 0, -len(p.code)), default=None)

    @property
    def tempting(self) -> PlanCost | None:
        """The complete plan with the lowest fees below the current plan's that still costs no less in
        total: the switch that only the fees recommend (issue 14)."""
        current = self.current
        if current is None:
            return None
        candidates = [
            p
            for p in self.plans
            if not p.is_current
            and p.complete
            and p.fees_total_fen < current.fees_total_fen
            and (p.saving_fen or 0) <= 0
        ]
        return min(candidates, key=lambda p: (p.fees_total_fen, p.code), default=None)

    @property
    def cheapest(self) -> PlanCost | None:
        complete = [p for p in self.plans if p.complete]
        return min(complete, key=lambda p: (p.total_fen, not p.is_current), default=None)


def default_period(*, months: int = 6, until: date | None = None) -> tuple[Month, Month]:
    """The last ``months`` whole months before the month of ``until`` (today)."""
    last = Month.of(until or today()).plus(-1)
    return last.plus(-(months - 1)), last


def comparable_plans() -> list[RatePlan]:
    """Every plan with at least one version: ours first, then competitors', by code."""
    return list(RatePlan.objects.filter(versions__isnull=False).distinct().order_by("is_competitor", "code"))


def compare_plans(
    *,
    merchant_id: int,
    first: Month,
    last: Month,
    plans: Sequence[RatePlan] | None = None,
    on: date | None = None,
) -> Comparison:
    """What each of ``plans`` (default: every plan) would have cost ``merchant_id`` from ``first`` to
    ``last`` (whole months), against the plan the merchant is on at ``on`` (today)."""
    if last < first:
        first, last = last, first
    months = list(months_between(first, last))[-MAX_MONTHS:]
    first = months[0]
    plans = list(plans) if plans is not None else comparable_plans()
    book = PlanBook([merchant_id], plans=[p.pk for p in plans])
    assignment = book.assignment(merchant_id, None, on or today())
    current_id = assignment.plan_id if assignment is not None else None
    d0 = bool(assignment and assignment.d0_settlement)
    if current_id is not None and all(p.pk != current_id for p in plans):
        plans = [RatePlan.objects.get(pk=current_id), *plans]
    plans.sort(key=lambda p: (p.pk != current_id, p.is_competitor, p.code))

    index = {(m.year, m.month): i for i, m in enumerate(months)}
    n = len(months)
    sales, refunds, counts, actual = [0] * n, [0] * n, [0] * n, [0] * n
    mix: dict[str, int] = defaultdict(int)
    costs = {
        p.pk: PlanCost(
            code=p.code,
            name=p.name,
            provider_name=p.provider_name,
            is_competitor=p.is_competitor,
            is_current=p.pk == current_id,
            fees_fen=[0] * n,
        )
        for p in plans
    }

    known: dict[Term, dict[int, int]] = {}

    def price(rule: RateRule, amount: int, surcharge: Decimal) -> int:
        term = (rule.rate + surcharge, rule.cap_fen, rule.min_fen)
        fees_by_amount = known.setdefault(term, {})
        if amount not in fees_by_amount:
            fees_by_amount[amount] = fee_fen(amount, term[0], cap_fen=term[1], min_fen=term[2])
        return fees_by_amount[amount]

    def rule_of(plan: RatePlan, method: str, day: date) -> tuple[RateRule | None, Decimal]:
        version = book.version(plan.pk, day)
        if version is None:
            return None, Decimal(0)
        surcharge = version.d0_surcharge_rate if d0 else Decimal(0)
        return book.rules.get(version.pk, {}).get(method), surcharge

    # Sales: one row per (method, amount) of each piece of a month in which no compared plan changes
    # version, priced once per plan and multiplied by its count.
    for start, end in _pieces(book, plans, first.first_day, last.last_day):
        i = index[(start.year, start.month)]
        # per plan and method: the fees by amount of its terms (rate with any D0 surcharge, cap,
        # minimum), shared by every month with the same terms; None when the plan cannot price it
        terms: dict[int, dict[str, tuple[Term, dict[int, int]] | None]] = {}
        for plan in plans:
            terms[plan.pk] = {}
            for method in PaymentMethod.values:
                rule, surcharge = rule_of(plan, method, start)
                if rule is None:
                    terms[plan.pk][method] = None
                    continue
                term = (rule.rate + surcharge, rule.cap_fen, rule.min_fen)
                terms[plan.pk][method] = (term, known.setdefault(term, {}))
        for method, amount, number, fees in _sales(merchant_id, start, end):
            volume = amount * number
            actual[i] += fees
            sales[i] += volume
            counts[i] += number
            mix[method] += volume
            for plan in plans:
                cost = costs[plan.pk]
                priced = terms[plan.pk].get(method)
                if priced is None:
                    cost.unpriced_fen[method] = cost.unpriced_fen.get(method, 0) + volume
                    continue
                (rate, cap, minimum), fees_by_amount = priced
                fee = fees_by_amount.get(amount)
                if fee is None:
                    fee = fees_by_amount[amount] = fee_fen(amount, rate, cap_fen=cap, min_fen=minimum)
                cost.fees_fen[i] += fee * number

    # Refunds and reversals (few): each hands back the share of its sale's fee, as at ingest.
    refunded: dict[int, int] = defaultdict(int)  # sale id -> amount refunded so far
    returned: dict[tuple[int, int], int] = defaultdict(int)  # (sale id, plan id) -> fee handed back
    for row in _follow_ups(merchant_id, first.first_day, last.last_day):
        sale_id, amount = row["original_id"], row["amount_fen"]
        month = index.get((row["txn_date"].year, row["txn_date"].month))
        if month is not None:
            actual[month] -= row["fee_fen"]
            refunds[month] += amount
        for plan in plans:
            rule, surcharge = rule_of(plan, row["original__method"], row["original__txn_date"])
            if rule is None:
                continue
            sale_amount = row["original__amount_fen"]
            back = returned_fee(
                price(rule, sale_amount, surcharge),
                sale_amount,
                refunded[sale_id],
                returned[(sale_id, plan.pk)],
                amount,
            )
            returned[(sale_id, plan.pk)] += back
            if month is not None:
                costs[plan.pk].fees_fen[month] -= back
        refunded[sale_id] += amount

    terminals, leaving = _beside_the_fees(merchant_id, plans, costs, months, counts, on or today())
    current = costs.get(current_id) if current_id is not None else None
    if current is not None:
        for cost in costs.values():
            cost.saving_fen = current.total_fen - cost.total_fen
    ordered_mix = {m: mix[m] for m in PaymentMethod.values if mix.get(m)}
    return Comparison(
        merchant_id=merchant_id,
        months=months,
        sales_fen=sales,
        refunds_fen=refunds,
        sales_count=counts,
        actual_fees_fen=actual,
        mix_fen=ordered_mix,
        plans=[costs[p.pk] for p in plans],
        current=current,
        d0=d0,
        terminals=terminals,
        leaving=leaving,
    )


def spread(annual_fen: int, months: int) -> list[int]:
    """A yearly fee's share of each of ``months`` months: a twelfth a month, rounded once (``to_fen``)
    on the running total, so that every twelve months add up to the fee exactly."""
    shares, before = [], 0
    for k in range(1, months + 1):
        upto = to_fen(Decimal(annual_fen) * k / 12)
        shares.append(upto - before)
        before = upto
    return shares


def _beside_the_fees(
    merchant_id: int,
    plans: Sequence[RatePlan],
    costs: dict[int, PlanCost],
    months: list[Month],
    counts: list[int],
    on: date,
) -> tuple[int, Leaving | None]:
    """Fill in each plan's lines beyond the transaction fees (the service and SIM fees, what switching
    costs once) from the merchant's terminals and contracts as they are on ``on``. Returns the number
    of terminals and what leaving on ``on`` costs (None when no competitor's plan is compared or the
    merchant has no contract to leave)."""
    n = len(months)
    contracts = list(
        ServiceContract.objects.filter(merchant_id=merchant_id, status=ServiceContract.Status.ACTIVE)
        .order_by("pk")
        .values_list("terminal_id", "annual_fee_fen", "merchant__organisation_id")
    )
    bound = fleet.terminals_of_merchant(merchant_id)
    sn_of = {pk: sn for pk, sn, _status, _reason in bound}
    terminals = sum(1 for _pk, _sn, status, _reason in bound if status in WITH_MERCHANT)
    yearly = sum(fee for _t, fee, _o in contracts)
    ours = spread(yearly, n)
    leaving = None
    if contracts and any(p.is_competitor for p in plans):
        leaving = leaving_cost(
            merchant_id=merchant_id,
            organisation_id=contracts[0][2],
            terminal_ids=sorted({t for t, _f, _o in contracts}),
            on=on,
        )
    with_sales = sum(1 for c in counts if c > 0)
    for plan in plans:
        cost = costs[plan.pk]
        cost.fees_params = {"months": n, "months_with_sales": with_sales}
        if not plan.is_competitor:
            cost.service_fen = list(ours)
            cost.service_params = {"source": "contracts", "contracts": len(contracts), "yearly_fen": yearly}
            if not cost.is_current and contracts:
                cost.switching.append(CostLine(CONTRACTS_KEPT, 0, counted=False))
        else:
            cost.service_fen = spread(plan.annual_fee_fen * terminals, n)
            cost.service_params = {
                "source": "plan",
                "per_terminal_fen": plan.annual_fee_fen,
                "terminals": terminals,
            }
            cost.switching.extend(_switching_lines(plan, terminals, leaving, sn_of))
        cost.service_params["months"] = n
        if with_sales:
            recurring = sum(m for m, c in zip(cost.monthly_fen, counts, strict=True) if c > 0)
            cost.average_fen = to_fen(Decimal(recurring) / with_sales)
    return terminals, leaving


def _switching_lines(
    plan: RatePlan, terminals: int, leaving: Leaving | None, sn_of: dict[int, str]
) -> list[CostLine]:
    """What moving to a competitor's ``plan`` costs once: leaving each contract early (the closure
    quote's penalty), the deposit the plan asks for; and how the current deposit is set off."""
    lines = []
    if leaving is not None:
        for contract in leaving.contracts:
            if contract.penalty_fen:
                lines.append(
                    CostLine(
                        PENALTY,
                        contract.penalty_fen,
                        params={
                            "contract": contract.contract_id,
                            "sn": sn_of.get(contract.terminal_id, ""),
                            "rule": contract.penalty_rule,
                            "min_term_months": contract.min_term_months,
                            "months_served": contract.months_served,
                            "months_left": max(0, contract.min_term_months - contract.months_served),
                            "on": leaving.on.isoformat(),
                        },
                    )
                )
    if plan.deposit_fen and terminals:
        lines.append(
            CostLine(
                NEW_DEPOSIT,
                plan.deposit_fen * terminals,
                params={"per_terminal_fen": plan.deposit_fen, "terminals": terminals},
            )
        )
    if leaving is not None and leaving.deposit_held_fen:
        set_off = leaving.set_off
        lost = leaving.penalty_from_deposit_fen
        lines.append(
            CostLine(
                DEPOSIT_HELD,
                leaving.deposit_held_fen,
                counted=False,
                params={
                    "held_fen": leaving.deposit_held_fen,
                    "penalty_fen": lost,
                    "owed_fen": set_off.kept_fen - lost,
                    "refund_fen": set_off.refund_fen,
                },
            )
        )
    return lines


def _pieces(book: PlanBook, plans: Iterable[RatePlan], first: date, last: date) -> list[tuple[date, date]]:
    """``first``..``last`` cut at every month's start and every day a compared plan's version
    changes: within a piece, each plan has one version and the month is one."""
    cuts = {
        v.effective_from
        for p in plans
        for v in book.versions.get(p.pk, [])
        if first < v.effective_from <= last
    }
    month = Month.of(first).plus(1)
    while month.first_day <= last:
        cuts.add(month.first_day)
        month = month.plus(1)
    starts = [first, *sorted(cuts)]
    ends = [c - timedelta(days=1) for c in sorted(cuts)] + [last]
    return list(zip(starts, ends, strict=True))


def _approved(merchant_id: int) -> QuerySet[Transaction]:
    return Transaction.objects.filter(merchant_id=merchant_id, status=TransactionStatus.APPROVED)


def _sales(merchant_id: int, start: date, end: date) -> Iterable[tuple[str, int, int, int]]:
    """The merchant's approved sales of ``start``..``end`` grouped by method and amount: one row per
    distinct amount, (method, amount, count, stored fees)."""
    return (
        _approved(merchant_id)
        .filter(kind=TransactionKind.SALE, txn_date__gte=start, txn_date__lte=end)
        .order_by()
        .values("method", "amount_fen")
        .annotate(n=Count("id"), fees=Sum("fee_fen"))
        .values_list("method", "amount_fen", "n", "fees")
        .iterator(chunk_size=5000)
    )


def _follow_ups(merchant_id: int, first: date, last: date) -> Iterable[Any]:
    """Every approved refund or reversal of the sales refunded in ``first``..``last`` (earlier ones
    too: they decide how much fee is left to hand back), in the order they were recorded."""
    follow_up = ~Q(kind=TransactionKind.SALE)
    sales = (
        _approved(merchant_id)
        .filter(follow_up, txn_date__gte=first, txn_date__lte=last)
        .values("original_id")
    )
    return (
        _approved(merchant_id)
        .filter(follow_up, original_id__in=sales, txn_date__lte=last)
        .order_by("original_id", "id")
        .values(
            "original_id",
            "txn_date",
            "amount_fen",
            "fee_fen",
            "original__amount_fen",
            "original__method",
            "original__txn_date",
        )
        .iterator(chunk_size=5000)
    )
