"""The simulated terminals at play: each signs on, sells, reverses and beats on one asyncio loop,
re-signs on after ``A0``, reconnects with backoff, and every answer is tallied. Driven by
``posfleet simulate terminals`` (``terminal_simulator``) and ``bench/gateway.py``."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connections
from django.utils import timezone

from posfleet.gateway import codec
from posfleet.gateway import dialect as d
from posfleet.gateway.simulated_traffic import (
    Mix,
    Profile,
    Tally,
    answer_code,
    hour_weight,
)
from posfleet.gateway.terminal import TPDU, GatewayError, Reply, Terminal, read_answer
from posfleet.platform import paycrypto

DEFAULT_FIRMWARE = "SIM-2.1.0"
ANSWER_TIMEOUT = 10.0  # seconds a terminal waits for an answer before it gives the connection up
STALE = 5.0  # seconds: a message due longer ago than this (the terminal was offline) is not sent
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between reconnection attempts
SIGN_ON_AGAIN = 30.0  # seconds before a terminal whose sign-on was refused tries again
FINANCIAL = ("sale", "reversal")

# -- playing them ---------------------------------------------------------------------------------


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
