"""What the simulated terminals are and sell, and the tally of their answers: the terminals of the
database (with the master keys the key-loading facility would have loaded), a realistic mix of
sales (methods, cards, amounts, hours), and counts and latency percentiles for the reports.
Used by ``terminal_simulator`` (``posfleet simulate terminals``) and ``bench/gateway.py``."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError

from posfleet.fleet.selectors import terminals_with_live_key
from posfleet.fleet.services import live_key, master_key
from posfleet.gateway import dialect as d
from posfleet.gateway.terminal import Terminal, read_answer
from posfleet.platform import paycrypto

DEFAULT_FIRMWARE = "SIM-2.1.0"
ANSWER_TIMEOUT = 10.0  # seconds a terminal waits for an answer before it gives the connection up
STALE = 5.0  # seconds: a message due longer ago than this (the terminal was offline) is not sent
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between reconnection attempts
SIGN_ON_AGAIN = 30.0  # seconds before a terminal whose sign-on was refused tries again
FINANCIAL = ("sale", "reversal")

# How a sale is read (field 22, entry mode; ``dialect.ENTRY_MODES``): share, entry mode, median yuan.
METHODS: dict[str, tuple[float, str, float]] = {
    "scan": (0.55, "031", 40.0),
    "chip": (0.25, "051", 120.0),
    "tap": (0.15, "071", 60.0),
    "swipe": (0.05, "021", 150.0),
}
SIGMA = 0.9  # of the amounts' log-normal
MAX_FEN = 2_000_000  # 20,000 yuan
TAP_MAX_FEN = 100_000  # 1,000 yuan: contactless without a PIN
# Cards: (share, BINs, length). Debit: CCB, ABC, ICBC, BOC; credit: the acquirer's credit BINs; a Visa.
CARDS: tuple[tuple[float, tuple[str, ...], int], ...] = (
    (0.55, ("621700", "622848", "621226", "621661"), 19),
    (0.38, tuple(sorted(d.CREDIT_BINS)), 16),
    (0.07, ("453201",), 16),
)
# Payment codes a terminal scans: (share, prefix, length) — Alipay, WeChat Pay, UnionPay QR.
CODES: tuple[tuple[float, str, int], ...] = ((0.45, "28", 18), (0.45, "13", 18), (0.10, "62", 19))
# The issuer simulator's rules on the amount's last two digits (``gateway.issuer``).
DECLINES = {d.INSUFFICIENT_FUNDS: 51, d.DO_NOT_HONOUR: 5}
NOT_SENT_TAILS = frozenset({5, 51, 68, 77})  # declines only when asked; never silence or lateness
# Sales by hour of the day (Asia/Shanghai), for --clock real: lunch and the evening are the peaks.
HOUR_WEIGHTS = (
    0.15, 0.08, 0.05, 0.04, 0.04, 0.08, 0.25, 0.60, 0.90, 0.80, 0.80, 1.30,
    2.00, 1.70, 1.00, 0.80, 0.80, 1.00, 1.60, 2.00, 1.70, 1.20, 0.70, 0.35,
)  # fmt: skip


# -- the terminals --------------------------------------------------------------------------------


@dataclass
class Profile:
    """One terminal to play: who it is and its master key (the key-loading facility's part)."""

    terminal_id: int
    sn: str
    tid: str
    mid: str
    master_key: bytes = field(repr=False)
    scheme: paycrypto.Algorithm
    location: tuple[float, float] | None = None  # its store's, when the store has coordinates
    firmware: str = DEFAULT_FIRMWARE


def _store_location(store: object) -> tuple[float, float] | None:
    lat, lon = getattr(store, "latitude", None), getattr(store, "longitude", None)
    if lat is None or lon is None:
        return None
    return float(lat), float(lon)


def load_key(terminal_id: int) -> tuple[bytes, paycrypto.Algorithm] | None:
    """The terminal's live master key in clear and its algorithm (None without one)."""
    key = live_key(terminal_id)
    if key is None:
        return None
    return master_key(key), paycrypto.Algorithm(key.scheme)


def load_profiles(count: int = 20, tids: Sequence[str] = (), seed: int | None = None) -> list[Profile]:
    """``count`` active terminals with a live key, picked at random (``seed``), or those of ``tids``."""
    found = terminals_with_live_key(list(tids) if tids else None)
    if tids:
        rows = list(found)
        missing = sorted(set(tids) - {t.tid for t in rows if t.tid})
        if missing:
            raise CommandError(f"not active with a key (or no such TID): {', '.join(missing)}", returncode=2)
    else:
        pks = list(found.values_list("pk", flat=True))
        chosen = set(random.Random(seed).sample(pks, min(count, len(pks))))
        rows = [t for t in found.filter(pk__in=chosen)]
    profiles = []
    for row in rows:
        loaded = load_key(row.pk)
        if loaded is None or row.merchant is None or not row.tid:
            continue  # its key was revoked meanwhile
        key, scheme = loaded
        profiles.append(
            Profile(
                terminal_id=row.pk,
                sn=row.sn,
                tid=row.tid,
                mid=row.merchant.mid,
                master_key=key,
                scheme=scheme,
                location=_store_location(row.store),
                firmware=row.firmware_version or DEFAULT_FIRMWARE,
            )
        )
    return profiles


# -- what they sell -------------------------------------------------------------------------------


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


class Mix:
    """Realistic sales: how the card or code is read, the card number or payment code, the amount."""

    def __init__(self, rng: random.Random, declines: float = 0.02) -> None:
        self.rng = rng
        self.declines = declines
        self.methods = list(METHODS)
        self.method_weights = [METHODS[m][0] for m in self.methods]

    def card(self) -> str:
        _share, bins, length = self.rng.choices(CARDS, weights=[c[0] for c in CARDS])[0]
        body = self.rng.choice(bins) + "".join(self.rng.choice("0123456789") for _ in range(length - 7))
        return body + _luhn(body)

    def code(self) -> str:
        _share, prefix, length = self.rng.choices(CODES, weights=[c[0] for c in CODES])[0]
        return prefix + "".join(self.rng.choice("0123456789") for _ in range(length - len(prefix)))

    def amount(self, method: str) -> int:
        median = METHODS[method][2]
        fen = int(self.rng.lognormvariate(math.log(median * 100), SIGMA))
        if self.rng.random() < 0.4:  # many prices are whole yuan
            fen = round(fen, -2)
        fen = max(100, min(fen, TAP_MAX_FEN if method == "tap" else MAX_FEN))
        if self.rng.random() < self.declines:
            tail = DECLINES[d.INSUFFICIENT_FUNDS] if self.rng.random() < 0.7 else DECLINES[d.DO_NOT_HONOUR]
            return fen // 100 * 100 + tail
        return fen + 1 if fen % 100 in NOT_SENT_TAILS else fen

    def sale(self, terminal: Terminal, at: datetime) -> tuple[str, dict[str, str]]:
        """(method, the 0200's fields) of the terminal's next sale."""
        method = self.rng.choices(self.methods, weights=self.method_weights)[0]
        entry = METHODS[method][1]
        amount = self.amount(method)
        if method == "scan":
            return method, terminal.sale_fields(amount, qr_code=self.code(), entry_mode=entry, at=at)
        return method, terminal.sale_fields(amount, pan=self.card(), entry_mode=entry, at=at)


def _field_sizes() -> dict[int, tuple[int, int, bool]]:
    """For each field of the dialect: (length-prefix bytes, fixed length, length counts digits)."""
    sizes = {}
    for name, spec in d.SPEC.items():
        if not name.isdigit():
            continue
        digits = spec["data_enc"] == "b" and spec.get("len_count") == "nibbles"
        sizes[int(name)] = (int(spec["len_type"]), int(spec["max_len"]), digits)
    return sizes


_SIZES = _field_sizes()


def answer_code(raw: bytes) -> str:
    """Field 39 of an answer, read without decoding the rest (what a load client needs); the full
    decode when the layout is not the plain one (a secondary bitmap, a field we do not know)."""
    try:
        bitmap = int.from_bytes(raw[2:10], "big")
        if bitmap >> 63 or not bitmap >> (64 - 39) & 1:
            raise ValueError
        at = 10
        for number in range(2, 39):
            if not bitmap >> (64 - number) & 1:
                continue
            prefix, fixed, digits = _SIZES[number]
            if prefix:
                length = int(raw[at : at + prefix].hex())
                at += prefix
            else:
                length = fixed
            at += (length + 1) // 2 if digits else length
        return raw[at : at + 2].decode("ascii")
    except (ValueError, KeyError, UnicodeDecodeError):
        return read_answer(raw).get("39")


def hour_weight(hour: int) -> float:
    """The rate at ``hour`` (0–23) relative to the day's average."""
    return HOUR_WEIGHTS[hour] * len(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)


# -- the tally ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 of nothing)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Tally:
    """What was sent and answered. Latencies (ms) are those of sales and reversals: from the moment the
    message was written to the moment its answer was read (``ms``), and from the moment it was due
    (``late_ms``: includes waiting for the terminal's previous answer, the honest figure of an open
    loop)."""

    started: float = field(default_factory=time.monotonic)
    sent: Counter[str] = field(default_factory=Counter)  # by kind: sale, reversal, heartbeat, sign-on
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, field 39)
    methods: Counter[str] = field(default_factory=Counter)  # sales by method (as sent)
    errors: Counter[str] = field(default_factory=Counter)
    ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)
    window_ms: list[float] = field(default_factory=list)  # since the last report
    keep: int = 500_000  # latencies kept (a uniform sample beyond)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # Every answer as (due, sent, answered, kind, code), monotonic seconds, when a list is given.
    events: list[tuple[float, float, float, str, str]] | None = None
    seen: int = 0  # financial answers

    def answered(self, kind: str, code: str, sent_at: float, due: float, now: float) -> None:
        self.codes[(kind, code)] += 1
        if self.events is not None:
            self.events.append((due, sent_at, now, kind, code))
        if kind not in FINANCIAL:
            return
        ms, late = (now - sent_at) * 1000, (now - due) * 1000
        self.window_ms.append(ms)
        self.seen += 1
        if len(self.ms) < self.keep:
            self.ms.append(ms)
            self.late_ms.append(late)
        else:  # reservoir: every answer equally likely to be kept
            slot = self.rng.randrange(self.seen)
            if slot < self.keep:
                self.ms[slot], self.late_ms[slot] = ms, late

    def approved(self, kind: str | None = None) -> int:
        kinds = (kind,) if kind else FINANCIAL
        return sum(self.codes[(k, d.APPROVED)] for k in kinds)

    def declined(self) -> Counter[str]:
        """Sales and reversals not approved, by response code."""
        out: Counter[str] = Counter()
        for (kind, code), n in self.codes.items():
            if kind in FINANCIAL and code != d.APPROVED:
                out[code] += n
        return out

    def financial(self) -> int:
        return sum(n for (kind, _code), n in self.codes.items() if kind in FINANCIAL)

    def take_window(self) -> list[float]:
        window, self.window_ms = self.window_ms, []
        return window

    def summary(self) -> dict[str, Any]:
        """The figures as a dictionary (the benchmark's JSON)."""
        seconds = time.monotonic() - self.started
        return {
            "seconds": round(seconds, 3),
            "sent": dict(self.sent),
            "answered_financial": self.financial(),
            "approved": self.approved(),
            "approved_sales": self.approved("sale"),
            "approved_reversals": self.approved("reversal"),
            "declined": dict(sorted(self.declined().items())),
            "codes": {f"{kind}:{code}": n for (kind, code), n in sorted(self.codes.items())},
            "methods": dict(self.methods),
            "errors": dict(self.errors),
            "p50_ms": round(percentile(self.ms, 0.50), 2),
            "p95_ms": round(percentile(self.ms, 0.95), 2),
            "p99_ms": round(percentile(self.ms, 0.99), 2),
            "p99_from_due_ms": round(percentile(self.late_ms, 0.99), 2),
        }


def declines_text(declined: Counter[str]) -> str:
    return ", ".join(f"{code}×{n}" for code, n in sorted(declined.items())) or "none"


def report_line(tally: Tally, window: Sequence[float] | None = None, *, final: bool = False) -> str:
    """One plain line: cumulative counts, latency percentiles of ``window`` (the last interval), or of
    the whole run when ``final``."""
    elapsed = time.monotonic() - tally.started
    sample = tally.ms if final or window is None else window
    sent = tally.sent
    errors = sum(tally.errors.values())
    return (
        f"{'total' if final else 'after'} {elapsed:,.0f} s: sent {sent.total():,} (sales {sent['sale']:,}, "
        f"reversals {sent['reversal']:,}, heartbeats {sent['heartbeat']:,}, sign-ons {sent['sign-on']:,})"
        f" | approved {tally.approved():,} | declined {declines_text(tally.declined())}"
        f" | errors {errors:,}"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(tally.errors.items()))})" if errors else "")
        + f" | {'' if final else 'last interval '}ms p50 {percentile(sample, 0.5):.1f} "
        f"p95 {percentile(sample, 0.95):.1f} p99 {percentile(sample, 0.99):.1f}"
    )
