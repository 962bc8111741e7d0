"""The demo's money: the history's contracts and deposits (``contracts.py``, in bulk), and the money
that moves through the real services, each call at its moment on the simulated clock (``clock.py``):

- rate plans entered before the window: three competitors' plans for the comparison, our VIP plan
  (and its second version in the middle of the window), the VIP plan assigned to two merchants —
  ``plan_create``, ``plan_version_add``, ``plan_assign``;
- on the first of every month before the window, the annual service fees that fell due are charged
  (``charge_service_fees``); in the window the settlement run charges them;
- every day of the window at 23:55, the day's transactions (``Sales``) are ingested
  (``transactions_ingest``, at most 10,000 a call, a merchant's in one call, each call in time
  order), and at 03:00 the next morning the day is settled (``settlement_run``, T+1). The last day
  (yesterday) is ingested but not settled yet: it is settled tomorrow, like any day.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, Sum

from posfleet.billing.defaults import ensure_standard_plan
from posfleet.billing.models import (
    Deposit,
    RatePlan,
    ServiceContract,
    ServiceFeeDue,
    SettlementBatch,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from posfleet.billing.services.contracts import add_months
from posfleet.billing.services.plans import RuleSpec, plan_assign, plan_create, plan_version_add
from posfleet.billing.services.settlement import charge_service_fees, settlement_run
from posfleet.billing.services.transactions import MAX_BATCH, TxnIn, transactions_ingest
from posfleet.demo import vocabulary as V
from posfleet.demo.money import vocabulary as M
from posfleet.demo.money.contracts import ContractHistory, Extra, plan_contracts
from posfleet.demo.money.sales import Interval, Sales, Till
from posfleet.demo.plan import Plan
from posfleet.fleet.states import TRANSITIONS, Status
from posfleet.platform.context import Actor
from posfleet.platform.money import format_fen

SYSTEM = Actor.system("demo")
FEES_JOB = Actor.job("service_fees")
FEED = Actor.job("acquirer-feed")  # the acquirer's daily file
SETTLE_JOB = Actor.job("settle_yesterday")  # as billing.tasks.settle_yesterday


@dataclass(order=True)
class Op:
    """One call of a service at its moment."""

    at: datetime
    order: int
    label: str = field(compare=False)
    run: Callable[[], Any] = field(compare=False)

    @property
    def kind(self) -> str:
        """``plan``, ``service`` (fees), ``settle``, ``ingest``…: the label's first word."""
        return self.label.split()[0]


class Money:
    def __init__(self, plan: Plan, *, days: int, per_day: float, zone: ZoneInfo) -> None:
        self.plan = plan
        self.days = days
        self.per_day = per_day
        self.zone = zone
        self.first = plan.today - timedelta(days=days)
        self.last = plan.today - timedelta(days=1)
        self.settled_until = plan.today - timedelta(days=2)
        self.standard = ensure_standard_plan()
        self.contracts = plan_contracts(plan, plan.seed)
        self.history = ContractHistory(plan, self.contracts, self.standard)
        self.merchants: list[Any] = []
        self.ingested = 0
        # Stretches a terminal did not sell although its history says active (terminal index ->
        # [(from, until or None)]): the demo's closure cases stop their terminals (closures.py).
        self.pauses: dict[int, list[tuple[datetime, datetime | None]]] = {}

    def extra_events(self) -> list[Extra]:
        return self.history.extra_events()

    def write_history(
        self,
        *,
        times: dict[tuple[int, ...], datetime],
        merchants: list[Any],
        terminal_ids: list[int],
        provider_id: int,
    ) -> None:
        self.merchants = merchants
        self.history.write(
            times=times, merchants=merchants, terminal_ids=terminal_ids, provider_id=provider_id
        )

    def moment(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), self.zone)

    # -- the calls -------------------------------------------------------------------------------

    def ops(self, replays: list[Any]) -> list[Op]:
        """Every service call of the money story, in time order. ``replays`` are the fleet's
        terminals replayed through their history (``fleet._Terminal``: status, TID, step times)."""
        tills = self._tills(replays)
        ops = self._plans(tills) + self._fee_jobs()
        if self.days > 0:
            sales = Sales(
                tills, first=self.first, last=self.last, settled_until=self.settled_until, zone=self.zone
            )
            for n in range(self.days):
                day = self.first + timedelta(days=n)
                if day > self.first:
                    previous = day - timedelta(days=1)
                    ops.append(Op(self.moment(day, 3), 0, f"settle {previous}", _settle(previous)))
                ops.append(Op(self.moment(day, 23, 55), 0, f"ingest {day}", self._ingest(sales, day)))
        return sorted(ops)

    def _tills(self, replays: list[Any]) -> list[Till]:
        """A till per terminal that is bound to its merchant now and was active in the window."""
        start = self.moment(self.first, 0)
        raw: list[tuple[Any, list[Interval], float]] = []
        for replay in replays:
            terminal = replay.plan
            if replay.tid is None or replay.merchant is None or terminal.merchant is None:
                continue
            intervals = _paused(_active(replay), self.pauses.get(terminal.index, []))
            if not any(end is None or end > start for _start, end in intervals):
                continue
            rng = random.Random(self.plan.seed * 1_000_003 + terminal.index)
            raw.append((replay, intervals, math.exp(rng.gauss(0, 0.35))))
        if not raw:
            return []
        mccs = [self.plan.merchants[r.plan.merchant].mcc for r, _i, _f in raw]
        weights = [M.SALES[mcc].busy * factor for mcc, (_r, _i, factor) in zip(mccs, raw, strict=True)]
        scale = self.per_day * len(weights) / sum(weights)
        return [
            Till(
                tid=replay.tid,
                merchant=replay.plan.merchant,
                mcc=mcc,
                capabilities=V.TERMINAL_MODELS[replay.plan.model][4],
                busy=weight * scale,
                intervals=intervals,
                rng=random.Random(self.plan.seed * 1_000_003 + replay.plan.index + 1),
                trace=random.Random(replay.plan.index).randrange(1, 500_000),
                batch=random.Random(replay.plan.index).randrange(1, 300),
            )
            for (replay, intervals, _f), mcc, weight in zip(raw, mccs, weights, strict=True)
        ]

    def _plans(self, tills: list[Till]) -> list[Op]:
        """Competitors' plans, the VIP plan and its second version, and two merchants moved to it."""
        ops = []
        since = date(self.plan.today.year - 1, 1, 1)  # the competitors' published rates, in force since
        entered = self.first - timedelta(days=40)
        for n, spec in enumerate(M.COMPETITORS):
            ops.append(Op(self.moment(entered, 6), n, f"plan {spec.code}", _create(spec, since)))
        vip_day = self.first - timedelta(days=35)
        ops.append(Op(self.moment(vip_day, 6), 0, "plan vip", _create(M.VIP, vip_day)))
        middle = self.first + timedelta(days=self.days // 2)
        ops.append(Op(self.moment(middle - timedelta(days=7), 6), 0, "plan vip v2", _vip_v2(middle)))
        before, during = self._vip_merchants(tills)
        window_vip = self.first - timedelta(days=30)
        if before is not None:
            ops.append(
                Op(self.moment(window_vip, 6), 1, f"plan vip for {before}", self._vip(before, window_vip))
            )
        if during is not None:
            when = self.moment(middle - timedelta(days=3), 6)
            ops.append(Op(when, 1, f"plan vip for {during}", self._vip(during, middle)))
        return ops

    def _vip_merchants(self, tills: list[Till]) -> tuple[int | None, int | None]:
        """Who moves to the VIP plan: the biggest merchant without a demo login before the window,
        merchant2 (a demo login) from its middle; merchant1 stays on the standard plan."""
        selling = {t.merchant for t in tills}
        others = sorted(
            (m for m in self.plan.merchants if m.index in selling and not m.username),
            key=lambda m: (m.kind != "enterprise", -m.terminals, m.index),
        )
        second = next((m.index for m in self.plan.merchants if m.username == "merchant2"), None)
        return (others[0].index if others else None), (second if second in selling else None)

    def _vip(self, merchant: int, effective: date) -> Callable[[], Any]:
        def run() -> Any:
            row = self.merchants[merchant]
            vip = RatePlan.objects.get(code=M.VIP.code)
            return plan_assign(
                actor=SYSTEM, merchant_id=row.pk, merchant_mid=row.mid, plan=vip, effective_from=effective
            )

        return run

    def _fee_jobs(self) -> list[Op]:
        """On the first of each month up to the window, the fees due so far are charged."""
        if not self.contracts:
            return []
        earliest = min(
            self.plan.today - timedelta(days=self.plan.terminals[c.terminal].steps[c.bind].ago)
            for c in self.contracts
        )
        ops = []
        day = add_months(earliest.replace(day=1), 1)
        while day <= self.first:
            ops.append(Op(self.moment(day, 1), 0, f"fees {day}", _charge(day)))
            day = add_months(day, 1)
        return ops

    def _ingest(self, sales: Sales, day: date) -> Callable[[], None]:
        def run() -> None:
            for batch in _batches(sales.day(day)):
                results = transactions_ingest(actor=FEED, items=batch)
                refused = [(r.code, r.detail, batch[r.index]) for r in results if not r.ok]
                if refused:
                    raise RuntimeError(f"the demo's transactions of {day} were refused: {refused[:3]}")
                self.ingested += len(batch)

        return run

    # -- what there is ---------------------------------------------------------------------------

    def summary(self) -> list[tuple[str, str]]:
        """Money lines for the command's table (SQL aggregates over what was written)."""
        approved = Q(status=TransactionStatus.APPROVED)
        sale = approved & Q(kind=TransactionKind.SALE)
        txns = Transaction.objects.aggregate(
            sales=Count("id", filter=sale),
            declined=Count("id", filter=Q(status=TransactionStatus.DECLINED)),
            refunds=Count("id", filter=approved & Q(kind=TransactionKind.REFUND)),
            reversals=Count("id", filter=approved & Q(kind=TransactionKind.REVERSAL)),
            amount=Sum("amount_fen", filter=sale, default=0),
            back=Sum("amount_fen", filter=approved & ~Q(kind=TransactionKind.SALE), default=0),
            fees=Sum("fee_fen", filter=sale, default=0),
            returned=Sum("fee_fen", filter=approved & ~Q(kind=TransactionKind.SALE), default=0),
            merchants=Count("merchant", distinct=True),
        )
        batches = SettlementBatch.objects.aggregate(
            n=Count("id"), days=Count("business_date", distinct=True), paid=Sum("payout_fen", default=0)
        )
        held = Deposit.objects.filter(status=Deposit.Status.HELD).aggregate(
            n=Count("id"), fen=Sum("amount_fen", default=0)
        )
        released = Deposit.objects.exclude(status=Deposit.Status.HELD).aggregate(
            n=Count("id"), refunded=Sum("refunded_fen", default=0), forfeited=Sum("forfeited_fen", default=0)
        )
        contracts = ServiceContract.objects.aggregate(
            active=Count("id", filter=Q(status=ServiceContract.Status.ACTIVE)),
            ended=Count("id", filter=Q(status=ServiceContract.Status.ENDED)),
        )
        fees = ServiceFeeDue.objects.filter(journal__isnull=False).aggregate(
            n=Count("id"), fen=Sum("amount_fen", default=0)
        )
        plans = RatePlan.objects.aggregate(
            ours=Count("id", filter=Q(is_competitor=False)), rivals=Count("id", filter=Q(is_competitor=True))
        )
        return [
            ("money window", f"{self.first} … {self.last} ({self.days} days)"),
            ("rate plans (ours / competitors')", f"{plans['ours']} / {plans['rivals']}"),
            ("service contracts (active / ended)", f"{contracts['active']:,} / {contracts['ended']:,}"),
            ("service fees charged", f"{fees['n']:,} ({format_fen(fees['fen'])})"),
            ("deposits held", f"{held['n']:,} ({format_fen(held['fen'])})"),
            (
                "deposits released (refunded / forfeited)",
                f"{released['n']:,} ({format_fen(released['refunded'])} / "
                f"{format_fen(released['forfeited'])})",
            ),
            ("merchants with transactions", f"{txns['merchants']:,}"),
            ("sales approved / declined", f"{txns['sales']:,} / {txns['declined']:,}"),
            ("refunds / reversals", f"{txns['refunds']:,} / {txns['reversals']:,}"),
            ("sales amount (refunded)", f"{format_fen(txns['amount'])} ({format_fen(txns['back'])})"),
            ("fees (net of refunds)", format_fen(txns["fees"] - txns["returned"])),
            ("settlement batches (days)", f"{batches['n']:,} ({batches['days']})"),
            ("paid out to merchants", format_fen(batches["paid"])),
        ]


def _active(replay: Any) -> list[Interval]:
    """The stretches of time the terminal was active, from its replayed history."""
    intervals: list[Interval] = []
    state = Status.IN_STOCK
    for i, (step, started) in enumerate(zip(replay.plan.steps, replay.times, strict=True)):
        state = TRANSITIONS[(state, step.command)]
        if state == Status.ACTIVE:
            ended = replay.times[i + 1] if i + 1 < len(replay.times) else None
            intervals.append((started, ended))
    return intervals


def _paused(intervals: list[Interval], pauses: list[tuple[datetime, datetime | None]]) -> list[Interval]:
    """``intervals`` without the ``pauses``."""
    for stop, until in pauses:
        cut: list[Interval] = []
        for start, end in intervals:
            if (end is not None and end <= stop) or (until is not None and start >= until):
                cut.append((start, end))
                continue
            if start < stop:
                cut.append((start, stop))
            if until is not None and (end is None or end > until):
                cut.append((until, end))
        intervals = cut
    return intervals


def _batches(by_merchant: dict[int, list[TxnIn]]) -> list[list[TxnIn]]:
    """Calls of at most MAX_BATCH items, a merchant's day in one call, each in time order."""
    batches: list[list[TxnIn]] = []
    current: list[TxnIn] = []
    for merchant in sorted(by_merchant):
        items = by_merchant[merchant]
        if current and len(current) + len(items) > MAX_BATCH:
            batches.append(current)
            current = []
        current.extend(items)
    if current:
        batches.append(current)
    for batch in batches:
        batch.sort(key=lambda item: (item.occurred_at, item.tid, item.trace_no))
    return batches


def _rules(rules: M.Rules) -> dict[str, RuleSpec]:
    return {method: RuleSpec(rate, cap, minimum) for method, (rate, cap, minimum) in rules.items()}


def _create(spec: M.PlanSpec, effective_from: date) -> Callable[[], Any]:
    def run() -> Any:
        return plan_create(
            actor=SYSTEM,
            code=spec.code,
            name=spec.name,
            rules=_rules(spec.rules),
            effective_from=effective_from,
            is_competitor=spec.competitor,
            provider_name=spec.provider_name,
            annual_fee_fen=spec.annual_fee_fen,
            deposit_fen=spec.deposit_fen,
        )

    return run


def _vip_v2(effective_from: date) -> Callable[[], Any]:
    def run() -> Any:
        rules = _rules(M.VIP.rules)
        rules["qr"] = RuleSpec(M.VIP_V2_QR)
        return plan_version_add(
            actor=SYSTEM,
            plan=RatePlan.objects.get(code=M.VIP.code),
            effective_from=effective_from,
            rules=rules,
            note="扫码费率下调 / QR rate lowered",
        )

    return run


def _charge(day: date) -> Callable[[], Any]:
    return lambda: charge_service_fees(actor=FEES_JOB, up_to=day)


def _settle(day: date) -> Callable[[], Any]:
    return lambda: settlement_run(actor=SETTLE_JOB, business_date=day)
