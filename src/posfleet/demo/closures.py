"""The demo's payment-channel bindings, device credentials and closure cases (注销), made through the real
services by the people who would, each call at its moment of the story on the simulated clock
(``clock.py``), between the money's calls (``money/timeline.py``), so the chain stays in time order.

- **Channel bindings** (``parties.services.channel_bind``): a few channels for each active terminal of
  the merchants with a demo login and of the closure cases, a second after the terminal's activation.
- **Device credentials** (``fleet.services.device_credential_issue``): for those terminals that are
  smart. The live ones are written to ``var/demo-devices.json`` (owner-only; demo data only), which
  ``posfleet run`` hands to the device simulator (``posfleet simulate devices --credentials``).
- **Closure cases**, one in every step (``STAGES``): waiting for review; review late (past its 7-day
  clock: reminded, then escalated); running with a channel that refused to unbind (the unbind step needs
  attention); waiting for the device to come back; return overdue (recovery fee charged, escalated, then
  run to its certificate); completed with its certificate; withdrawn; rejected. A case's channels
  answer through the real channel simulator (``parties.channels.simulator``) started in this process on
  a free loopback port; a device acknowledges its wipe through the device channel's service, as the
  device would when it polls; the warehouse receives and grades the returned device.

``merchant1`` keeps every terminal it has (none of them is in a case): the walk-through closes one.
The cases' terminals are active ones whose history ended more than a month ago; the money story stops
their sales while they are stopped (``Money.pauses``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, Max, OuterRef
from django.test.utils import override_settings

from posfleet.billing.models import SettlementRun, Transaction
from posfleet.closure.models import CaseTerminal
from posfleet.closure.runner import advance
from posfleet.closure.services import (
    closure_decide,
    closure_inspect,
    closure_quote,
    closure_receive,
    closure_report_shipment,
    closure_request,
    closure_withdraw,
    review_remind_sweep,
)
from posfleet.demo import vocabulary as V
from posfleet.demo.money.timeline import Op
from posfleet.demo.plan import Plan, TerminalPlan
from posfleet.fleet.models import DeviceCredential, Terminal
from posfleet.fleet.services import device_command_ack, device_commands_fetch, device_credential_issue
from posfleet.fleet.states import Command, Status
from posfleet.parties.services import channel_bind
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.testing.servers import ChannelSimulator

SYSTEM = Actor.system("demo")
REMIND_JOB = Actor.job("closure_review_remind")
QUIET_DAYS = 31  # a case's terminal has no planned step within this many days of today

# Channels by terminal kind: (always, each by the terminal's own dice).
CHANNELS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "smart": (("unionpay_card", "alipay", "wechat_pay"), ("unionpay_qr", "jd_pay")),
    "traditional": (("unionpay_card",), ("unionpay_qr",)),
    "wireless": (("unionpay_card", "alipay"), ("wechat_pay",)),
    "mpos": (("unionpay_card",), ("alipay", "wechat_pay")),
    "e_signature": (("unionpay_card",), ("wechat_pay",)),
}
REJECTION = (
    "服务问题已由服务商解决，请与服务商确认 / the agent has fixed the service problem; talk to your agent"
)
STUCK_CHANNEL = "alipay"  # the channel that refuses the stuck case's unbind


@dataclass(frozen=True)
class Stage:
    """A case of the demo: where it stands, who asks (a demo login, or ``agentN`` on behalf of one of
    its merchants without a login), why, and when (days before today) it is asked for."""

    name: str
    requester: str
    reason: str
    ago: int
    smart: bool | None  # the terminal's kind: smart, not smart, either
    note: str = ""


STAGES = (
    Stage("requested", "merchant4", "cost", 2, None, "换用费率更低的服务商 / moving to a cheaper provider"),
    Stage("review_late", "merchant5", "moving_away", 10, None),
    Stage("channel_stuck", "merchant3", "shop_closed", 1, True),
    Stage("awaiting_return", "merchant2", "switching_provider", 6, True),
    Stage("return_overdue", "agent1", "shop_closed", 23, False),
    Stage("completed", "merchant4", "not_needed", 21, True),
    Stage("withdrawn", "merchant5", "cost", 13, None),
    Stage(
        "rejected",
        "agent2",
        "unsatisfied",
        12,
        None,
        "商户投诉服务响应慢 / the merchant complains of slow service",
    ),
)
MONEY_DAYS_NEEDED = max(s.ago for s in STAGES) + 2  # the settlement runs of the cases' stop days


@dataclass
class Case:
    stage: Stage
    terminal: TerminalPlan
    pk: int | None = None
    number: str = ""


@dataclass
class DemoClosures:
    """The bindings, credentials and cases of one demo (``plan``), and the calls that make them."""

    plan: Plan
    zone: Any
    contracts: dict[int, Any]  # terminal index -> its ContractPlan (money/contracts.py)
    cases: list[Case] = field(default_factory=list)
    devices: list[tuple[str, str, str]] = field(default_factory=list)  # (SN, key id, secret)
    made: dict[str, str] = field(default_factory=dict)  # stage -> case number

    # -- choosing (pure: the plan only) ------------------------------------------------------------

    def choose(self) -> list[str]:
        """Pick each stage's terminal; returns the stages left out (no suitable terminal)."""
        used: set[int] = set()
        missing = []
        for stage in STAGES:
            terminal = self._pick(stage, used)
            if terminal is None:
                missing.append(stage.name)
                continue
            used.add(terminal.index)
            self.cases.append(Case(stage, terminal))
        return missing

    def _merchants_of(self, requester: str) -> list[int]:
        plan = self.plan
        if requester.startswith("merchant"):
            return [m.index for m in plan.merchants if m.username == requester]
        agent = next((a for a in plan.agents if a.username == requester), None)
        if agent is None:
            return []
        under = {a.index for a in plan.agents if a.index == agent.index or a.parent == agent.index}
        return [m.index for m in plan.merchants if m.agent in under and not m.username]

    def _pick(self, stage: Stage, used: set[int]) -> TerminalPlan | None:
        merchants = set(self._merchants_of(stage.requester))
        candidates = [
            t
            for t in self.plan.terminals
            if t.merchant in merchants
            and t.final == Status.ACTIVE
            and t.index not in used
            and min(s.ago for s in t.steps) >= QUIET_DAYS
            and (stage.smart is None or (_kind(t) == "smart") == stage.smart)
        ]

        def rank(t: TerminalPlan) -> tuple[int, int, str]:
            contract = self.contracts.get(t.index)
            return (0 if contract is not None and contract.deposit_fen else 1, t.merchant or 0, t.sn)

        return min(candidates, key=rank, default=None)

    def pauses(self) -> dict[int, list[tuple[datetime, datetime | None]]]:
        """When each case's terminal did not sell (terminal index -> [(from, until)]): from the request
        until it was active again (withdrawn, rejected) or for good."""
        stops: dict[int, list[tuple[datetime, datetime | None]]] = {}
        for case in self.cases:
            start = self.moment(case.stage.ago, 10)
            until = {
                "withdrawn": self.moment(case.stage.ago - 1, 9),
                "rejected": self.moment(case.stage.ago - 1, 10),
            }.get(case.stage.name)
            stops[case.terminal.index] = [(start, until)]
        return stops

    def moment(self, ago: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
        day = self.plan.today - timedelta(days=ago)
        return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=self.zone)

    # -- the calls ---------------------------------------------------------------------------------

    def ops(self, demo: Any, simulator: ChannelSimulator) -> list[Op]:
        """Every call of the bindings, credentials and cases, at its moment (``demo``: the fleet being
        written: users, merchants, terminal ids, replays)."""
        self.demo = demo
        self.simulator = simulator
        ops: list[Op] = []
        for terminal, activated in self._bound_terminals():
            ops.append(
                Op(activated + timedelta(seconds=1), 5, f"closure bind {terminal.sn}", self._bind(terminal))
            )
        first = max(case.stage.ago for case in self.cases) if self.cases else 1
        case_smart = [c.terminal for c in self.cases if _kind(c.terminal) == "smart"]
        ops.append(Op(self.moment(first + 1, 8), 5, "closure devices", self._credentials(case_smart)))
        login_smart = [t for t, _at in self._bound_terminals() if _kind(t) == "smart" and t not in case_smart]
        ops.append(Op(self.moment(1, 22), 5, "closure devices of the logins", self._credentials(login_smart)))
        for n, case in enumerate(self.cases):
            ops.extend(self._story(case, n))
        return ops

    def _bound_terminals(self) -> list[tuple[TerminalPlan, datetime]]:
        """The terminals given channel bindings, with the moment they were (last) activated."""
        logins = {m.index for m in self.plan.merchants if m.username}
        cases = {c.terminal.index for c in self.cases}
        chosen = []
        for replay in self.demo.replays:
            terminal = replay.plan
            if terminal.final != Status.ACTIVE or (
                terminal.merchant not in logins and terminal.index not in cases
            ):
                continue
            steps = [i for i, s in enumerate(terminal.steps) if s.command == Command.ACTIVATE]
            chosen.append((terminal, replay.times[steps[-1]]))
        return chosen

    def _bind(self, terminal: TerminalPlan) -> Callable[[], None]:
        def run() -> None:
            merchant = self.demo.merchants[terminal.merchant]
            terminal_id = self.demo.terminal_ids[terminal.index]
            for channel in _channels_of(terminal, self.plan.seed):
                channel_bind(
                    actor=SYSTEM,
                    merchant_id=merchant.pk,
                    terminal_id=terminal_id,
                    channel=channel,
                    channel_merchant_id=_channel_id(channel, merchant.mid),
                )

        return run

    def _credentials(self, terminals: list[TerminalPlan]) -> Callable[[], None]:
        def run() -> None:
            for terminal in sorted(terminals, key=lambda t: t.sn):
                credential, secret = device_credential_issue(actor=SYSTEM, sn=terminal.sn)
                self.devices.append((terminal.sn, credential.key_id, secret))

        return run

    def _story(self, case: Case, n: int) -> list[Op]:
        stage, ago = case.stage, case.stage.ago
        at = self.moment
        ops = [Op(at(ago, 10), 6 + n, f"closure request {stage.name}", self._request(case))]

        def op(when: datetime, what: str, run: Callable[[], Any]) -> None:
            ops.append(Op(when, 6 + n, f"closure {what} {stage.name}", run))

        if stage.name == "withdrawn":
            op(
                at(ago - 1, 9),
                "withdraw",
                lambda: closure_withdraw(
                    actor=self._person(stage.requester),
                    number=case.number,
                    note="店铺转让取消 / the sale of the shop fell through",
                ),
            )
        elif stage.name == "rejected":
            op(
                at(ago - 1, 10),
                "reject",
                lambda: closure_decide(
                    actor=self._person("reviewer"),
                    number=case.number,
                    decision="reject",
                    note=REJECTION,
                ),
            )
        elif stage.name == "review_late":
            op(at(ago - 6, 10, 30), "remind", lambda: review_remind_sweep(actor=REMIND_JOB))
            op(at(ago - 7, 10, 30), "escalate", lambda: review_remind_sweep(actor=REMIND_JOB))
        elif stage.name != "requested":
            op(at(ago, 15), "approve", self._approve(case, stuck=stage.name == "channel_stuck"))
            if ago > 1:  # the T+1 run of yesterday is today's: the running system goes on from here
                op(at(ago - 1, 4), "advance", self._advance(case))  # after the T+1 run of the stop day
            if stage.smart and ago > 1:
                op(at(ago - 1, 9), "device", self._device_acks(case))
                op(at(ago - 1, 9, 5), "advance", self._advance(case))  # the wipe's next look
        if stage.name == "completed":
            op(
                at(ago - 2, 11),
                "shipment",
                lambda: closure_report_shipment(
                    actor=self._person(stage.requester),
                    number=case.number,
                    tracking_no=f"SF{1_300_000_000 + n * 7919}",
                ),
            )
            op(
                at(ago - 4, 10),
                "receive",
                lambda: closure_receive(
                    actor=self._person("warehouse"), sn=case.terminal.sn, note="外包装完好 / parcel intact"
                ),
            )
            op(at(ago - 4, 10, 30), "inspect", self._inspect(case))
        if stage.name == "return_overdue":
            # The return deadline is 14 days after the wipe (the day after the stop day); the runner
            # looks again the morning after it.
            due = self.plan.today - timedelta(days=ago - 1) + timedelta(days=14)
            ago_after = (self.plan.today - due).days - 1
            op(at(ago_after, 0, 5), "overdue", self._advance(case))
        return ops

    def _person(self, username: str) -> Actor:
        return Actor.for_user(self.demo.users[username], request_id="demo").with_step_up(now())

    def _request(self, case: Case) -> Callable[[], None]:
        def run() -> None:
            stage = case.stage
            who = self._person(stage.requester)
            quote = closure_quote(actor=who, sns=[case.terminal.sn]).quote
            made = closure_request(
                actor=who,
                sns=[case.terminal.sn],
                reason=stage.reason,
                note=stage.note,
                quote_digest=quote.digest,
            )
            case.pk, case.number = made.pk, made.number
            self.made[stage.name] = made.number

        return run

    def _approve(self, case: Case, *, stuck: bool) -> Callable[[], None]:
        def run() -> None:
            closure_decide(
                actor=self._person("reviewer"), number=case.number, decision="approve", note="同意 / approved"
            )
            if stuck:
                self.simulator.control(STUCK_CHANNEL, "refuse", times=1)
            assert case.pk is not None
            with _channels_in_the_demo_transaction():
                advance(case.pk)
            if stuck:
                self.simulator.control(STUCK_CHANNEL, "answer")

        return run

    def _advance(self, case: Case) -> Callable[[], None]:
        def run() -> None:
            assert case.pk is not None
            with _channels_in_the_demo_transaction():
                advance(case.pk)

        return run

    def _device_acks(self, case: Case) -> Callable[[], None]:
        """The device polls the command channel, carries out its wipe and answers."""

        def run() -> None:
            terminal = Terminal.objects.select_related("model").get(sn=case.terminal.sn)
            for command in device_commands_fetch(terminal=terminal):
                device_command_ack(
                    terminal=terminal,
                    command_id=command.pk,
                    ok=True,
                    result={"wiped": True, "at": now().isoformat()},
                )

        return run

    def _inspect(self, case: Case) -> Callable[[], None]:
        def run() -> None:
            closure_inspect(
                actor=self._person("warehouse"),
                sn=case.terminal.sn,
                grade="B",
                human_damage=True,
                note="屏幕划痕，外壳磨损 / scratched screen, worn case",
                disposal="refurbish",
            )
            assert case.pk is not None
            with _channels_in_the_demo_transaction():
                advance(case.pk)

        return run

    def live_devices(self) -> list[tuple[str, str, str]]:
        """The credentials issued that are still live (a closed terminal's was revoked)."""
        from posfleet.fleet.selectors import device_credential_of

        live = []
        for sn, key_id, secret in self.devices:
            credential = device_credential_of(Terminal.objects.get(sn=sn))
            if credential is not None and credential.key_id == key_id:
                live.append((sn, key_id, secret))
        return live


def _kind(terminal: TerminalPlan) -> str:
    return V.TERMINAL_MODELS[terminal.model][3]


def _channels_of(terminal: TerminalPlan, seed: int) -> list[str]:
    always, maybe = CHANNELS[_kind(terminal)]
    rng = random.Random(seed * 7_919 + terminal.index)
    return [*always, *[c for c in maybe if rng.random() < 0.5]]


def _channel_id(channel: str, mid: str) -> str:
    """The merchant's id at the channel, in the channel's own style (made up, deterministic)."""
    digits = "".join(c for c in mid if c.isdigit()).rjust(12, "0")[-12:]
    return {
        "unionpay_card": f"898{digits}",
        "unionpay_qr": f"QR{digits}",
        "alipay": f"2088{digits}",
        "wechat_pay": f"19{digits[-8:]}",
        "jd_pay": f"JD{digits[-10:]}",
    }[channel]


@contextmanager
def _channels_in_the_demo_transaction() -> Iterator[None]:
    """Let the channel service's durable transactions nest in the demo's one transaction.

    ``channel_unbind`` commits before and after it calls the channel (never a lock held while it waits
    on the network). The demo writes its whole story in one transaction, so that a failure leaves the
    database empty, and its channels are a simulator on loopback in this very process: the service's
    blocks become savepoints of the demo's, as they do inside a test case."""
    block: Any = connection.atomic_blocks[-1] if connection.atomic_blocks else None
    if block is None:
        yield
        return
    before = block._from_testcase  # Django's own mark of a test case's block (django.db.transaction)
    block._from_testcase = True
    try:
        yield
    finally:
        block._from_testcase = before


@contextmanager
def channel_simulator_for_the_demo() -> Iterator[ChannelSimulator]:
    """The payment channels' simulator on a free loopback port, the channel clients pointed at it."""
    simulator = ChannelSimulator(port=0, delay=1.0)
    simulator.start()
    try:
        with override_settings(POSFLEET_CHANNELS_URL=simulator.url, POSFLEET_CHANNELS_TIMEOUT=5.0):
            yield simulator
    finally:
        simulator.stop()


def walkthrough_terminal(username: str = "merchant1") -> str | None:
    """The terminal the README's closure walk-through closes: one of ``username``'s active smart
    terminals with a live device credential, all of whose sales are settled already (so the final
    settlement is there today), in no closure case — the first by SN, or None."""
    settled = SettlementRun.objects.filter(status="done").aggregate(day=Max("business_date"))["day"]
    waiting = Transaction.objects.filter(terminal=OuterRef("pk"), daily_total__isnull=False)
    if settled is not None:
        waiting = waiting.filter(daily_total__settle_day__gt=settled)
    candidates = (
        Terminal.objects.filter(
            merchant__organisation__users__username=username, status="active", model__kind="smart"
        )
        .filter(Exists(DeviceCredential.objects.filter(terminal=OuterRef("pk"), revoked_at__isnull=True)))
        .exclude(Exists(waiting))
        .exclude(Exists(CaseTerminal.objects.filter(terminal=OuterRef("pk"))))
        .order_by("sn")
        .values_list("sn", flat=True)
    )
    return candidates.first()
