"""POS terminals signing on to the gateway and selling: sales, reversals and heartbeats at a given rate.

``posfleet simulate terminals`` plays N active terminals of the local database (or those of ``--tid``)
against a running ``posfleet gateway``, with the issuer simulator (``posfleet simulate issuer``) behind
it, and reports every ``--report`` seconds and at the end: messages sent, approvals, declines by
response code and the latency percentiles of the sales and reversals.

**The simulator plays the key-loading facility.** A real terminal gets its master key (TMK) loaded in a
secure room; here each simulated terminal reads its live key from the database
(``fleet.services.master_key(live_key(...))``), so it needs the same database as the gateway and
terminals that have a key (``fleet.services.keys_issue_missing`` gives the demo's one). When the
gateway hands out a session key the master key can no longer unwrap (the terminal was reactivated: a
new key), the facility loads the new one and the terminal signs on again.

What each terminal does, as a real one would: it connects and signs on (0800), then sends what the
schedule gives it, one message at a time on its own connection:

- sales (0200), realistic: scanned codes (QR, ~55 %), chip (~25 %), tap (~15 %) and swipe (~5 %) cards
  from a few BINs (debit, the credit BINs of ``dialect.CREDIT_BINS``, a foreign one); amounts
  log-normal around 60 yuan by method (tap at most 1,000 yuan, the no-PIN limit); a few amounts end in
  ``51`` or ``05``, which the issuer simulator declines (``--declines``); amounts the issuer simulator
  would never answer or answer late (ending ``68``, ``77``) are not sent;
- reversals (0400, ``--reversals`` of the financial messages) of the terminal's last approved sale,
  and, after a connection was lost while a sale waited for its answer, of that sale (the outcome is
  unknown: POS specifications have the terminal reverse it);
- heartbeats (0820) every ``--heartbeat`` seconds with its firmware and, when its store has
  coordinates, where it is (the store's, jittered by ~50 m).

It signs on again when a sale is answered ``A0`` (no valid session key), and reconnects (with backoff)
when the gateway closes the connection or is not there yet. ``--rate`` is the financial messages per
second of all terminals together (Poisson arrivals, some terminals busier than others); with
``--clock real`` it follows the hour of the day in Asia/Shanghai (quiet at night, busy at lunch and in
the evening), ``--rate`` being the day's average. ``--rate 0`` is a closed loop: every terminal sends
its next sale as soon as it has the answer (the benchmark's maximum throughput).

One asyncio event loop plays every terminal (one connection each); the benchmark (``bench/gateway.py``)
drives the gateway with the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from posfleet.fleet.selectors import terminals_with_live_key
from posfleet.fleet.services import live_key, master_key
from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.terminal import TPDU, GatewayError, Reply, Terminal, read_answer
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


def _declines_text(declined: Counter[str]) -> str:
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
        f" | approved {tally.approved():,} | declined {_declines_text(tally.declined())}"
        f" | errors {errors:,}"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(tally.errors.items()))})" if errors else "")
        + f" | {'' if final else 'last interval '}ms p50 {percentile(sample, 0.5):.1f} "
        f"p95 {percentile(sample, 0.95):.1f} p99 {percentile(sample, 0.99):.1f}"
    )


# -- playing them ---------------------------------------------------------------------------------


@dataclass
class Job:
    kind: str  # sale, reversal, heartbeat
    due: float


@dataclass
class Player:
    """One simulated terminal on its connection."""

    profile: Profile
    terminal: Terminal
    rng: random.Random
    weight: float = 1.0
    queue: asyncio.Queue[Job | None] | None = None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    needs_sign_on: bool = True
    next_sign_on: float = 0.0  # a refused sign-on is tried again after SIGN_ON_AGAIN seconds
    next_heartbeat: float = math.inf
    approved_sales: list[dict[str, str]] = field(default_factory=list)  # not reversed yet (last few)
    unsure: list[dict[str, str]] = field(default_factory=list)  # sales whose answer never came
    failures: int = 0

    @property
    def connected(self) -> bool:
        return self.writer is not None


def _batch_number() -> str:
    """A batch number for this run (the seconds of the clock): a restarted simulator does not repeat
    the (TID, batch, trace, date) of its last run, which the gateway would answer ``94``."""
    return f"{int(time.time()) % 1_000_000:06d}"


class Simulation:
    """The terminals of ``profiles`` against the gateway at ``host``:``port``; ``run()`` plays them."""

    def __init__(
        self,
        profiles: Sequence[Profile],
        host: str,
        port: int,
        *,
        rate: float = 2.0,
        reversals: float = 0.02,
        heartbeat: float = 60.0,
        declines: float = 0.02,
        seed: int | None = None,
        clock: str = "flat",
        sign_on: bool = True,
        check_mac: bool = True,
        reload_key: Callable[[int], tuple[bytes, paycrypto.Algorithm] | None] | None = None,
        say: Callable[[str], None] | None = None,
        each: bool = False,
        tally: Tally | None = None,
        batch_no: str | None = None,
    ) -> None:
        if not profiles:
            raise ValueError("no terminals to play")
        self.host, self.port = host, port
        self.rate, self.reversals, self.heartbeat = rate, reversals, heartbeat
        self.clock, self.sign_on, self.check_mac = clock, sign_on, check_mac
        self.reload_key = reload_key
        self.say = say or (lambda line: None)
        self.each = each
        self.rng = random.Random(seed)
        self.mix = Mix(random.Random(self.rng.random()), declines)
        self.tally = tally or Tally()
        batch = batch_no or _batch_number()
        self.players = [
            Player(
                profile=p,
                terminal=Terminal(
                    tid=p.tid, mid=p.mid, master_key=p.master_key, scheme=p.scheme, batch_no=batch
                ),
                rng=random.Random(self.rng.random()),
                weight=self.rng.lognormvariate(0, 0.6),  # some shops sell more than others
            )
            for p in profiles
        ]
        self.cumulative: list[float] = []
        total = 0.0
        for player in self.players:
            total += player.weight
            self.cumulative.append(total)
        self.stop = asyncio.Event()
        self.told: set[str] = set()

    # -- the schedule ------------------------------------------------------------------------------

    def current_rate(self) -> float:
        if self.clock != "real":
            return self.rate
        return self.rate * hour_weight(timezone.localtime().hour)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(seconds, 0.0))

    async def _dispatch(self) -> None:
        """Open loop: financial messages at ``rate`` a second (Poisson), each to a terminal drawn by
        its weight; whatever the answers take."""
        due = time.monotonic()
        while not self.stop.is_set():
            rate = self.current_rate()
            if rate <= 0:
                await self._pause(1.0)
                due = time.monotonic()
                continue
            due += self.rng.expovariate(rate)
            now = time.monotonic()
            if due > now:
                await self._pause(due - now)
                if self.stop.is_set():
                    break
            elif due < now - 1.0:  # this process could not keep up: skip ahead rather than burst
                self.tally.errors["schedule behind"] += 1
                due = now
            player = self.rng.choices(self.players, cum_weights=self.cumulative)[0]
            kind = "reversal" if self.rng.random() < self.reversals else "sale"
            assert player.queue is not None
            player.queue.put_nowait(Job(kind, due))

    # -- one terminal ------------------------------------------------------------------------------

    async def _play(self, player: Player, closed_loop: bool) -> None:
        if self.heartbeat > 0:
            player.next_heartbeat = time.monotonic() + player.rng.uniform(0, self.heartbeat)
        try:
            while not self.stop.is_set():
                if not player.connected and not await self._connect(player):
                    continue
                job = await self._next_job(player, closed_loop)
                if job is None:
                    break
                if job.kind != "heartbeat" and time.monotonic() - job.due > STALE:
                    self.tally.errors["not sent (offline)"] += 1
                    continue
                await self._do(player, job)
        finally:
            self._close(player)

    async def _next_job(self, player: Player, closed_loop: bool) -> Job | None:
        now = time.monotonic()
        if now >= player.next_heartbeat:
            player.next_heartbeat = now + self.heartbeat
            return Job("heartbeat", now)
        if closed_loop:
            kind = "reversal" if player.rng.random() < self.reversals else "sale"
            return Job(kind, now)
        assert player.queue is not None
        if player.queue.empty():
            wait = player.next_heartbeat - now
            try:
                if math.isinf(wait):
                    return await player.queue.get()
                async with asyncio.timeout(wait):
                    return await player.queue.get()
            except TimeoutError:
                player.next_heartbeat = time.monotonic() + self.heartbeat
                return Job("heartbeat", time.monotonic())
        return player.queue.get_nowait()

    async def _connect(self, player: Player) -> bool:
        """Connect, then sign on and send the reversals of unanswered sales; on failure wait (backoff)."""
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                player.reader, player.writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            self.tally.errors["connect failed"] += 1
            if "connect" not in self.told:
                self.told.add("connect")
                self.say(
                    f"gateway {self.host}:{self.port} not answering ({exc.__class__.__name__}); retrying"
                )
            await self._backoff(player)
            return False
        self.told.discard("connect")
        player.needs_sign_on = self.sign_on
        if player.needs_sign_on and not await self._sign_on(player):
            return player.connected
        while player.unsure and player.connected and not self.stop.is_set():
            await self._send_financial(player, "reversal", player.unsure.pop(), time.monotonic())
        player.failures = 0
        return player.connected

    async def _backoff(self, player: Player) -> None:
        pause = BACKOFF[min(player.failures, len(BACKOFF) - 1)]
        player.failures += 1
        await self._pause(pause * player.rng.uniform(0.8, 1.2))

    def _close(self, player: Player) -> None:
        if player.writer is not None:
            player.writer.close()
        player.reader = player.writer = None

    async def _exchange_raw(self, player: Player, raw: bytes) -> bytes:
        """Send a message, return the answer's message bytes (after the TPDU)."""
        assert player.reader is not None
        assert player.writer is not None
        player.writer.write(codec.frame(TPDU, raw))
        async with asyncio.timeout(ANSWER_TIMEOUT):
            await player.writer.drain()
            head = await player.reader.readexactly(2)
            body = await player.reader.readexactly(struct.unpack(">H", head)[0])
        return body[d.TPDU_BYTES :]

    async def _exchange(self, player: Player, raw: bytes) -> codec.Message:
        return read_answer(await self._exchange_raw(player, raw))

    def _lost(self, player: Player, exc: BaseException) -> None:
        what = "timeout" if isinstance(exc, TimeoutError) else "connection lost"
        self.tally.errors[what] += 1
        self._close(player)

    async def _sign_on(self, player: Player) -> bool:
        terminal = player.terminal
        for attempt in range(2):
            sent = time.monotonic()
            self.tally.sent["sign-on"] += 1
            try:
                answer = await self._exchange(player, terminal.sign_on_request(timezone.localtime()))
                reply = terminal.sign_on_reply(answer)
            except GatewayError as exc:
                if "check value" in str(exc) and attempt == 0 and await self._reload(player):
                    continue  # a new key was issued (reactivation): the facility loads it
                self.tally.errors["sign-on refused"] += 1
                self._close(player)
                await self._backoff(player)
                return False
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self._lost(player, exc)
                await self._backoff(player)
                return False
            if reply.code == d.MAC_FAILURE and attempt == 0 and await self._reload(player):
                continue  # the sign-on's MAC is the master key's: a new key was issued (reactivation)
            self.tally.answered("sign-on", reply.code, sent, sent, time.monotonic())
            player.needs_sign_on = not reply.approved
            player.next_sign_on = time.monotonic() + SIGN_ON_AGAIN
            if not reply.approved and reply.code not in self.told:
                self.told.add(reply.code)
                self.say(f"{player.profile.tid}: sign-on answered {reply.code}")
            return True
        return False

    async def _reload(self, player: Player) -> bool:
        """Load the terminal's current master key (the key-loading facility); True when it changed."""
        if self.reload_key is None:
            return False
        terminal_id = player.profile.terminal_id

        def fetch() -> tuple[bytes, paycrypto.Algorithm] | None:
            try:
                return self.reload_key(terminal_id)  # type: ignore[misc]
            finally:
                connections.close_all()

        loaded = await asyncio.to_thread(fetch)
        if loaded is None or loaded[0] == player.terminal.master_key:
            return False
        player.terminal.master_key, player.terminal.scheme = loaded
        player.profile.master_key, player.profile.scheme = loaded
        self.tally.errors["key reloaded"] += 1
        return True

    async def _do(self, player: Player, job: Job) -> None:
        if job.kind == "heartbeat":
            await self._heartbeat(player)
            return
        if player.needs_sign_on and self.sign_on and time.monotonic() >= player.next_sign_on:
            await self._sign_on(player)  # after an A0, or a refused sign-on a while ago
            if not player.connected:
                return
        at = timezone.localtime()
        if job.kind == "reversal" and player.approved_sales:
            sale = player.approved_sales.pop(player.rng.randrange(len(player.approved_sales)))
            await self._send_financial(player, "reversal", sale, job.due, at=at)
            return
        method, fields = self.mix.sale(player.terminal, at)
        self.tally.methods[method] += 1
        await self._send_financial(player, "sale", fields, job.due, method=method)

    async def _send_financial(
        self,
        player: Player,
        kind: str,
        fields: dict[str, str],
        due: float,
        *,
        at: datetime | None = None,
        method: str = "",
    ) -> None:
        """Send a sale (``fields``) or the reversal of the sale ``fields``."""
        terminal = player.terminal
        if kind == "reversal":
            fields, sale = terminal.reversal_fields(fields, at or timezone.localtime()), fields
            mti = d.REVERSAL
        else:
            sale, mti = fields, d.SALE
        raw = terminal.financial_request(mti, fields)
        sent = time.monotonic()
        self.tally.sent[kind] += 1
        try:
            answer = await self._exchange_raw(player, raw)
            if self.check_mac:
                reply = terminal.financial_reply(read_answer(answer))
            else:  # field 39 only (the benchmark's load: the client must cost little)
                reply = Reply(answer_code(answer), {})
        except (OSError, TimeoutError, asyncio.IncompleteReadError, GatewayError) as exc:
            self._lost(player, exc)
            player.unsure.append(sale)  # its outcome is unknown: reverse it once reconnected
            if kind == "sale" and len(player.unsure) > 20:
                player.unsure.pop(0)
            return
        now = time.monotonic()
        self.tally.answered(kind, reply.code, sent, min(due, sent), now)
        if reply.mac_ok is False:
            self.tally.errors["answer MAC"] += 1
        if reply.code == d.MAC_FAILURE and not player.needs_sign_on:
            player.needs_sign_on, player.next_sign_on = self.sign_on, 0.0
        if kind == "sale" and reply.approved:
            player.approved_sales.append(fields)
            del player.approved_sales[:-5]
        if self.each:
            amount = int(fields.get("4", "0")) / 100
            self.say(
                f"{terminal.tid} {kind:<8} {method or '':<5} {amount:>10,.2f}  {reply.code}  "
                f"{(now - sent) * 1000:6.1f} ms"
            )

    async def _heartbeat(self, player: Player) -> None:
        profile = player.profile
        lat = lon = None
        if profile.location is not None:
            lat, lon = profile.location
            jitter_m = player.rng.gauss(0, 50), player.rng.gauss(0, 50)  # ~50 m of GPS noise
            lat += jitter_m[0] / 111_320
            lon += jitter_m[1] / (111_320 * max(math.cos(math.radians(lat)), 0.01))
        raw = player.terminal.heartbeat_request(lat=lat, lon=lon, firmware=profile.firmware)
        sent = time.monotonic()
        self.tally.sent["heartbeat"] += 1
        try:
            answer = await self._exchange(player, raw)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, GatewayError) as exc:
            self._lost(player, exc)
            return
        self.tally.answered("heartbeat", answer.get("39"), sent, sent, time.monotonic())

    # -- the run -----------------------------------------------------------------------------------

    async def run(
        self,
        duration: float | None = None,
        *,
        report: Callable[[Tally, list[float]], None] | None = None,
        report_every: float = 10.0,
    ) -> Tally:
        """Play until ``duration`` seconds have passed (None: until ``stop`` is set), calling ``report``
        every ``report_every`` seconds with the tally and the last interval's latencies. One run per
        ``Simulation``."""
        closed_loop = self.rate <= 0
        for player in self.players:
            player.queue = asyncio.Queue()
        self.tally.started = time.monotonic()
        tasks = [asyncio.create_task(self._play(p, closed_loop)) for p in self.players]
        helpers = [] if closed_loop else [asyncio.create_task(self._dispatch())]

        async def reporter() -> None:
            while not self.stop.is_set():
                await self._pause(report_every)
                if not self.stop.is_set() and report is not None:
                    report(self.tally, self.tally.take_window())

        helpers.append(asyncio.create_task(reporter()))
        try:
            if duration is None:
                await self.stop.wait()
            else:
                await self._pause(duration)
        finally:
            self.stop.set()
            for player in self.players:
                if player.queue is not None:
                    player.queue.put_nowait(None)
            # in-flight messages finish (bounded by ANSWER_TIMEOUT); the helpers only wait
            done = await asyncio.gather(*tasks, *helpers, return_exceptions=True)
            for result in done:
                if isinstance(result, Exception):
                    raise result
        return self.tally


def run_simulation(simulation: Simulation, duration: float | None = None, **kwargs: Any) -> Tally:
    """Run ``simulation`` on a fresh event loop in this thread (uvloop when available)."""
    try:
        import uvloop

        return uvloop.run(simulation.run(duration, **kwargs))
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(simulation.run(duration, **kwargs))


# -- `posfleet simulate terminals` ----------------------------------------------------------------


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a host:port address: {value!r}") from exc


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError("a fraction from 0 to 1")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        default=settings.POSFLEET_GATEWAY_BIND,
        help=f"the gateway's host:port (default {settings.POSFLEET_GATEWAY_BIND})",
    )
    parser.add_argument(
        "--terminals", type=int, default=20, help="how many active terminals with a key to play (default 20)"
    )
    parser.add_argument(
        "--tid", action="append", default=[], metavar="TID", help="play this terminal (repeatable)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="sales and reversals a second, all terminals together (default 2; 0: each terminal as fast "
        "as it gets answers)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    parser.add_argument(
        "--reversals", type=_fraction, default=0.02, help="fraction of reversals (default 0.02)"
    )
    parser.add_argument(
        "--declines",
        type=_fraction,
        default=0.02,
        help="fraction of sales the issuer simulator declines: amounts ending 51 or 05 (default 0.02)",
    )
    parser.add_argument(
        "--heartbeat", type=float, default=60.0, help="seconds between a terminal's heartbeats (0: none)"
    )
    parser.add_argument(
        "--clock",
        choices=["flat", "real"],
        default="flat",
        help="flat: --rate all day; real: busier at lunch and in the evening (Asia/Shanghai), --rate "
        "being the day's average",
    )
    parser.add_argument("--report", type=float, default=10.0, help="seconds between reports (default 10)")
    parser.add_argument("--each", action="store_true", help="one line per sale and reversal")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same terminals and sales")


def run(options: dict[str, Any], stdout: TextIO) -> Tally:
    host, port = _address(options.get("gateway") or settings.POSFLEET_GATEWAY_BIND)
    profiles = load_profiles(
        int(options.get("terminals") or 20), options.get("tid") or (), options.get("seed")
    )
    connections.close_all()  # the event loop's thread uses the database only through a worker thread
    if not profiles:
        raise CommandError(
            "no active terminal with a key: build the demo (`posfleet demo`) or activate terminals",
            returncode=2,
        )
    out = getattr(stdout, "_out", stdout)
    tty = bool(getattr(out, "isatty", lambda: False)())

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def number(name: str, default: float) -> float:
        value = options.get(name)
        return default if value is None else float(value)

    rate = number("rate", 2.0)
    simulation = Simulation(
        profiles,
        host,
        port,
        rate=rate,
        reversals=number("reversals", 0.02),
        declines=number("declines", 0.02),
        heartbeat=number("heartbeat", 60.0),
        seed=options.get("seed"),
        clock=options.get("clock") or "flat",
        reload_key=load_key,
        say=say,
        each=bool(options.get("each")),
    )
    pace = f"{rate:g} msg/s" if rate > 0 else "closed loop"
    say(
        f"terminals simulator: {len(profiles)} terminal(s) → gateway {host}:{port}, {pace}, "
        f"until {'Ctrl-C' if options.get('duration') is None else str(options['duration']) + ' s'}"
    )
    live = _LiveTable(out) if tty else None

    def report(tally: Tally, window: list[float]) -> None:
        if live is not None:
            live.add(tally, window)
        else:
            say(report_line(tally, window))

    async def main() -> Tally:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, lambda: simulation.stop.set())
        task = asyncio.create_task(
            simulation.run(
                options.get("duration"), report=report, report_every=float(options.get("report") or 10.0)
            )
        )
        await asyncio.sleep(0)
        return await task

    try:
        import uvloop

        runner: Callable[[Any], Tally] = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main())
    tally = simulation.tally
    if live is not None:
        live.final(tally)
    else:
        say(report_line(tally, final=True))
    return tally


class _LiveTable:
    """On a terminal: one row per report in a rich table, then the totals by kind and code."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=out, force_terminal=True)
        self.header = True

    def add(self, tally: Tally, window: list[float]) -> None:
        from rich.table import Table

        table = Table(show_header=self.header, box=None)
        self.header = False
        for name in ("time", "sent", "approved", "declined", "errors", "p50 ms", "p95 ms", "p99 ms"):
            table.add_column(name, justify="right", min_width=8)
        table.add_row(
            f"{time.monotonic() - tally.started:,.0f} s",
            f"{tally.sent.total():,}",
            f"{tally.approved():,}",
            _declines_text(tally.declined()),
            f"{sum(tally.errors.values()):,}",
            f"{percentile(window, 0.5):.1f}",
            f"{percentile(window, 0.95):.1f}",
            f"{percentile(window, 0.99):.1f}",
        )
        self.console.print(table)

    def final(self, tally: Tally) -> None:
        from rich.table import Table

        table = Table("message", "answer", "count", title="Terminals simulator: totals")
        for (kind, code), n in sorted(tally.codes.items()):
            table.add_row(kind, code, f"{n:,}")
        for what, n in sorted(tally.errors.items()):
            table.add_row("(no answer)" if what in {"timeout", "connection lost"} else "", what, f"{n:,}")
        self.console.print(table)
        self.console.print(report_line(tally, final=True))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it as `posfleet simulate terminals`")
