"""The demo's transactions, a day at a time: what each active terminal sold, declined, reversed and
refunded, as the acquirer reports it (``TxnIn``). Pure Python, determined by the seed and each
terminal's active periods.

A terminal sells only while it is active (its status periods), more at lunch and in the evening than
at night, more at weekends; how much depends on the shop (MCC): a convenience store's ¥5–¥80 tickets,
a restaurant's ¥30–¥400, car supplies up to several thousand (log-normal, some round numbers). The
payment method follows the Chinese retail mix (QR first) and what the device can do (no QR without a
scanner, no tap without NFC); big tickets go on credit cards more often. About 3 % of attempts are
declined (51, 05, 55), 1 % of sales are refunded in part or in full days later, 0.3 % reversed within
minutes. Trace numbers run on per terminal, batch numbers per day.

Random draws are floats; an amount is an int of fen from the moment it is drawn.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

from posfleet.billing.models import EntryMode, PaymentMethod, TransactionKind, TransactionStatus
from posfleet.billing.services.transactions import TxnIn
from posfleet.demo.money import vocabulary as M

Interval = tuple[datetime, datetime | None]
APPROVED, DECLINED = TransactionStatus.APPROVED.value, TransactionStatus.DECLINED.value
SALE, REFUND, REVERSAL = (
    TransactionKind.SALE.value,
    TransactionKind.REFUND.value,
    TransactionKind.REVERSAL.value,
)
_HOURS = {name: list(accumulate(weights)) for name, weights in M.HOURS.items()}


@dataclass
class _Event:
    at: datetime
    kind: str
    status: str
    method: str
    entry_mode: str
    amount_fen: int
    card: str = ""
    response_code: str = "00"
    sale: _Event | None = None  # the sale a reversal or refund names
    key: tuple[str, str, str, date] | None = None


@dataclass
class _Refund:
    sale: _Event
    amount_fen: int


@dataclass
class Till:
    """One terminal's selling over the window."""

    tid: str
    merchant: int  # index in the fleet plan
    mcc: str
    capabilities: tuple[str, ...]
    busy: float  # sales a day on average
    intervals: list[Interval]  # active periods, in order
    rng: random.Random
    force_on: tuple[date, ...] = ()  # days to make sure of a sale on (see ``Sales.__init__``)
    trace: int = 0
    batch: int = 0
    sold: bool = False
    refunds: dict[date, list[_Refund]] = field(default_factory=lambda: defaultdict(list))

    def active_at(self, at: datetime) -> bool:
        return any(start <= at and (end is None or at < end) for start, end in self.intervals)

    def active_during(self, start: datetime, end: datetime) -> bool:
        return any(s < end and (e is None or e > start) for s, e in self.intervals)


class Sales:
    """Day by day, every till's transactions. ``settled_until``: the last day settlement will cover;
    a terminal active on some day up to it is sure to have sold on one of them (so its merchant has a
    settlement), and one active on any day of the window has sold in it."""

    def __init__(
        self, tills: list[Till], *, first: date, last: date, settled_until: date, zone: ZoneInfo
    ) -> None:
        self.tills = tills
        self.first, self.last = first, last
        self.zone = zone
        for till in tills:
            days = [d for d in _days(first, last) if till.active_during(*self.bounds(d))]
            settled = [d for d in days if d <= settled_until]
            till.force_on = tuple(sorted({d for d in (settled[-1:] + days[-1:])}))

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(0), self.zone)
        return start, datetime.combine(day + timedelta(days=1), time(0), self.zone)

    def day(self, day: date) -> dict[int, list[TxnIn]]:
        """The day's transactions by merchant (index in the fleet plan), each till's in time order."""
        by_merchant: dict[int, list[TxnIn]] = defaultdict(list)
        start, end = self.bounds(day)
        weekend = day.weekday() >= 5
        for till in self.tills:
            if not till.active_during(start, end) and day not in till.refunds:
                continue
            events = self._sales(till, day, start, end, weekend) + self._refunds(till, day, start)
            if not events:
                continue
            events.sort(key=lambda e: e.at)
            till.batch += 1
            batch_no = f"{till.batch % 1_000_000:06d}"
            for event in events:
                till.trace = till.trace % 999_999 + 1
                event.key = (till.tid, batch_no, f"{till.trace:06d}", day)
                by_merchant[till.merchant].append(_txn(event))
        return by_merchant

    # -- sales -----------------------------------------------------------------------------------

    def _sales(self, till: Till, day: date, start: datetime, end: datetime, weekend: bool) -> list[_Event]:
        rng = till.rng
        profile = M.SALES[till.mcc]
        count = _poisson(rng, till.busy * (M.WEEKEND if weekend else 1.0))
        events: list[_Event] = []
        for _ in range(count):
            at = start + timedelta(seconds=_second_of_day(rng, profile.hours))
            if not till.active_at(at):
                continue
            events.extend(self._sale(till, rng, at, day))
        if day in till.force_on and not till.sold:
            at = self._moment_active(till, rng, start, end, profile.hours)
            amount = _amount(rng, profile)
            method = _method(rng, till, amount)
            events.append(
                _Event(at, SALE, APPROVED, method, _entry(rng, till, method), amount, _card(rng, method))
            )
            till.sold = True
        return events

    def _sale(self, till: Till, rng: random.Random, at: datetime, day: date) -> list[_Event]:
        profile = M.SALES[till.mcc]
        amount = _amount(rng, profile)
        method = _method(rng, till, amount)
        entry = _entry(rng, till, method)
        card = _card(rng, method)
        if rng.randrange(1000) < M.DECLINED_PER_MILLE:
            codes = M.DECLINE_CODES_QR if method == PaymentMethod.QR else M.DECLINE_CODES_CARD
            code = rng.choices(list(codes), weights=list(codes.values()))[0]
            return [_Event(at, SALE, DECLINED, method, entry, amount, card, code)]
        sale = _Event(at, SALE, APPROVED, method, entry, amount, card)
        till.sold = True
        roll = rng.randrange(1000)
        if roll < M.REVERSED_PER_MILLE:
            back = at + timedelta(seconds=rng.randint(40, 600))
            if back.astimezone(self.zone).date() == day and till.active_at(back):
                return [sale, _Event(back, REVERSAL, APPROVED, method, entry, amount, card, sale=sale)]
        elif roll < M.REVERSED_PER_MILLE + M.REFUNDED_PER_MILLE:
            due = day + timedelta(days=rng.randint(1, 10))
            if due <= self.last:
                refund = amount if rng.random() < 0.55 else _part(rng, amount)
                till.refunds[due].append(_Refund(sale, refund))
        return [sale]

    def _refunds(self, till: Till, day: date, start: datetime) -> list[_Event]:
        events = []
        for refund in till.refunds.pop(day, []):
            at = start + timedelta(seconds=_second_of_day(till.rng, M.SALES[till.mcc].hours))
            if till.active_at(at):  # else the shop was closed for it: no refund through this terminal
                sale = refund.sale
                events.append(
                    _Event(
                        at,
                        REFUND,
                        APPROVED,
                        sale.method,
                        sale.entry_mode,
                        refund.amount_fen,
                        sale.card,
                        sale=sale,
                    )
                )
        return events

    def _moment_active(
        self, till: Till, rng: random.Random, start: datetime, end: datetime, hours: str
    ) -> datetime:
        for _ in range(40):
            at = start + timedelta(seconds=_second_of_day(rng, hours))
            if till.active_at(at):
                return at
        for s, e in till.intervals:  # the active part of the day, whatever the hour
            low, high = max(s, start), min(e or end, end)
            if high - low > timedelta(seconds=2):
                return low + timedelta(seconds=rng.uniform(1, (high - low).total_seconds() - 1))
        raise ValueError(f"{till.tid} is not active on {start.date()}")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _second_of_day(rng: random.Random, hours: str) -> float:
    cumulative = _HOURS[hours]
    hour = bisect_right(cumulative, rng.random() * cumulative[-1])
    return min(hour, 23) * 3600 + rng.random() * 3599


def _amount(rng: random.Random, profile: M.Sales) -> int:
    """A ticket in fen: log-normal around the shop's median, within its range; a round price
    sometimes, a price in jiao (0.1 yuan) often, an exact weighed price otherwise."""
    yuan = min(max(math.exp(rng.gauss(math.log(profile.median), profile.spread)), profile.low), profile.high)
    roll = rng.random()
    if roll < profile.round_share:
        step = 100 if yuan >= 500 else 10 if yuan >= 50 else 1
        return max(1, round(yuan / step)) * step * 100
    if roll < profile.round_share + 0.45:
        return max(1, round(yuan * 10)) * 10
    return max(1, round(yuan * 100))


def _part(rng: random.Random, amount: int) -> int:
    """A partial refund: a share of the sale in whole yuan, at least ¥1, less than the sale."""
    part = amount * rng.randint(15, 85) // 100 // 100 * 100
    return part if 100 <= part < amount else amount


def _method(rng: random.Random, till: Till, amount: int) -> str:
    weights = dict(M.METHODS)
    weights["foreign"] = 100 * M.SALES[till.mcc].foreign
    if amount >= 100_000:  # ¥1,000 and more: cards
        weights["credit"] *= 2.2
        weights["debit"] *= 1.3
        weights["qr"] *= 0.6
    elif amount < 3_000:  # under ¥30: scan
        weights["qr"] *= 1.3
        weights["credit"] *= 0.4
    if "qr_scan" not in till.capabilities:
        weights["qr"] = 0
    if "nfc" not in till.capabilities:
        weights["nfc"] = 0
    methods = list(weights)
    return rng.choices(methods, weights=[weights[m] for m in methods])[0]


def _entry(rng: random.Random, till: Till, method: str) -> str:
    if method == PaymentMethod.QR:
        return EntryMode.SCAN.value
    if method == PaymentMethod.NFC:
        return EntryMode.TAP.value
    modes = dict(M.FOREIGN_ENTRY if method == PaymentMethod.FOREIGN else M.CARD_ENTRY)
    if "nfc" not in till.capabilities:
        modes.pop("tap", None)
    return rng.choices(list(modes), weights=list(modes.values()))[0]


def _card(rng: random.Random, method: str) -> str:
    """A masked card number (first six and last four digits), as a receipt prints it; none for QR."""
    if method == PaymentMethod.QR:
        return ""
    if method == PaymentMethod.NFC:  # a contactless card, debit or credit
        bins = M.BINS["debit" if rng.random() < 0.5 else "credit"]
    else:
        bins = M.BINS[method]
    return f"{rng.choice(bins)}******{rng.randrange(10_000):04d}"


def _txn(event: _Event) -> TxnIn:
    assert event.key is not None
    original = event.sale.key if event.sale is not None else None
    return TxnIn(
        tid=event.key[0],
        batch_no=event.key[1],
        trace_no=event.key[2],
        txn_date=event.key[3],
        occurred_at=event.at,
        method=event.method,
        entry_mode=event.entry_mode,
        amount_fen=event.amount_fen,
        kind=event.kind,
        status=event.status,
        card_masked=event.card,
        response_code=event.response_code,
        original=original,
    )
