"""Plan assignments, service contracts, annual fees due and deposits of the demo's history, in bulk.

Two years of history hold about one contract per terminal ever bound (8,000 in the default demo).
Through ``contract_offer`` + ``contract_accept`` that is 15–20 ms a contract on SQLite here (44 queries:
offer, accept, fees due, deposit journal, three audit appends) — over two minutes, more than the whole
demo may take. So, like the fleet history (``fleet.py``), these rows are written in bulk in exactly the
state the services leave them in, with the same journals (``post_many``: same kinds, references,
accounts and memos, checked by the ledger's own triggers) and the same audit entries, each at its
moment in the history. ``tests/test_demo_money.py`` compares them field by field with what the
services write for the same terms. The money that moves *now* — plans entered in the window,
transactions, service fees, settlement — goes through the services (``timeline.py``).

The story of a contract: the merchant signs on the morning its terminal is installed (the system's
money run, 07:30–08:30); the annual fee falls due on the start date and each anniversary; a deposit, if
the terminal kind asks for one, is collected with the signature. When the terminal is closed
(deregistered) or reported lost the contract ends and the fees not yet due are not charged (the closure
saga of a later issue will do this; see docs/adr/0011-demo-money.md); the deposit is released the
morning after the closure, or after the device comes back and is inspected: refunded, less the
early-termination penalty (before the 12-month minimum term) and the damage charge of its inspection
grade, the rest forfeited; a lost device forfeits its recovery fee. The contracts still running of
smart and wireless terminals carry a device recovery value, which the closure saga credits when the
device comes back as new (grade A).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection

from posfleet.audit.services import Entry, clean_text
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import (
    AccountKind,
    Deposit,
    JournalKind,
    PenaltyRule,
    PlanAssignment,
    RatePlan,
    ServiceContract,
    ServiceFeeDue,
)
from posfleet.billing.services.contracts import add_months, penalty_for
from posfleet.billing.services.transactions.posting import JournalSpec, accounts, post_many
from posfleet.demo import vocabulary as V
from posfleet.demo.money import vocabulary as M
from posfleet.demo.plan import Plan, TerminalPlan
from posfleet.fleet.states import Command
from posfleet.platform.bulk import insert_rows
from posfleet.platform.money import format_fen

C = Command
Extra = tuple[int, tuple[str, ...], tuple[int, ...], Callable[[datetime], Entry]]
ASSIGN, OFFER, ACCEPT, COLLECT, RELEASE = range(5)


@dataclass
class ContractPlan:
    terminal: int  # index in the fleet plan
    merchant: int
    bind: int  # index of the bind step
    term_months: int
    annual_fee_fen: int
    deposit_fen: int
    penalty_rule: str
    penalty_fixed_fen: int
    penalty_monthly_fen: int
    penalty_cap_fen: int | None
    recovery_fee_fen: int
    damage_prices: dict[str, int]
    recovery_value_fen: int = 0  # credited at closure when the device comes back as new (grade A)
    ends: int | None = None  # index of the step that ends it (deregister, report lost)
    release_ago: int | None = None  # day of the deposit's release (days ago)
    returned: bool = False
    grade: str | None = None  # inspection grade of the returned device
    lost: bool = False


def plan_contracts(plan: Plan, seed: int) -> list[ContractPlan]:
    """One contract per terminal ever bound, with terms by terminal kind. Pure: same plan, same seed,
    same contracts."""
    rng = random.Random(seed * 31 + 7)
    contracts = []
    for terminal in plan.terminals:
        commands = [s.command for s in terminal.steps]
        if C.BIND not in commands or terminal.merchant is None:
            continue
        bind = commands.index(C.BIND)
        kind = V.TERMINAL_MODELS[terminal.model][3]
        menu = M.CONTRACTS[kind]
        # A two-year term for terminals bound more than a year ago (a one-year one would have lapsed:
        # renewals are a later issue); one or two years for the others.
        bound_ago = terminal.steps[bind].ago
        term = 24 if bound_ago > 360 or rng.random() < 0.5 else 12
        deposit = rng.choice(menu.deposits) if menu.deposits and rng.random() < menu.deposit_share else 0
        contract = ContractPlan(
            terminal=terminal.index,
            merchant=terminal.merchant,
            bind=bind,
            term_months=term,
            annual_fee_fen=rng.choice(menu.annual_fees),
            deposit_fen=deposit,
            penalty_rule=menu.penalty_rule,
            penalty_fixed_fen=menu.penalty_fen if menu.penalty_rule == PenaltyRule.FIXED else 0,
            penalty_monthly_fen=menu.penalty_fen if menu.penalty_rule == PenaltyRule.REMAINING_MONTHS else 0,
            penalty_cap_fen=menu.penalty_cap_fen,
            recovery_fee_fen=menu.recovery_fee_fen,
            damage_prices=dict(menu.damage),
        )
        _plan_end(rng, terminal, contract)
        if contract.ends is None:
            # The recovery value is credited by the closure saga; the history's closures released their
            # deposits by hand before it existed, so only the contracts still running carry one.
            contract.recovery_value_fen = menu.recovery_value_fen
        contracts.append(contract)
    return contracts


def _plan_end(rng: random.Random, terminal: TerminalPlan, contract: ContractPlan) -> None:
    after = list(enumerate(terminal.steps))[contract.bind + 1 :]
    end = next(((i, s) for i, s in after if s.command in {C.DEREGISTER, C.REPORT_LOST}), None)
    if end is None:
        return
    contract.ends, step = end
    contract.lost = step.command == C.REPORT_LOST
    back = next((s for i, s in after if i > end[0] and s.command == C.RECEIVE_RETURN), None)
    if back is not None:
        contract.returned = True
        contract.grade = _weighted(rng, M.GRADES)
        step = back
    if contract.deposit_fen and step.ago > 1:
        contract.release_ago = step.ago - 1  # the morning after


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


# ---------------------------------------------------------------------------------------------
# The audit entries, placed in the history; built once the rows exist (ids).


@dataclass
class Written:
    """What the rows got from the database, for the entries that name them."""

    contracts: dict[int, int]  # terminal index -> contract id
    deposits: dict[int, int]  # terminal index -> deposit id
    terminal_ids: list[int]


class ContractHistory:
    def __init__(self, plan: Plan, contracts: list[ContractPlan], standard: RatePlan) -> None:
        self.plan = plan
        self.contracts = contracts
        self.standard = standard
        self.written = Written({}, {}, [])
        self.releases: dict[int, tuple[int, int, str, str]] = {}  # refund, forfeit, reason, note

    def extra_events(self) -> list[Extra]:
        """(days ago, actor, order key, entry maker) of every event: plan assigned when the merchant is
        created; contract offered, accepted and deposit collected on the installation morning;
        deposit released later."""
        from posfleet.demo.fleet import MONEY

        admin = ("user", "admin")
        events: list[Extra] = []
        for m in self.plan.merchants:
            after = {
                "plan": self.standard.code,
                "effective_from": str(self.day(m.created)),
                "terminal": None,
                "d0": False,
            }
            events.append(
                (
                    m.created,
                    admin,
                    (2, m.index, 90),
                    _maker(EventType.PLAN_ASSIGNED, "merchant", m.mid, after),
                )
            )
        for c in self.contracts:
            ago = self.plan.terminals[c.terminal].steps[c.bind].ago
            events.append((ago, MONEY, (c.terminal, OFFER), self._offered(c)))
            events.append((ago, MONEY, (c.terminal, ACCEPT), self._accepted(c)))
            if c.deposit_fen:
                events.append((ago, MONEY, (c.terminal, COLLECT), self._collected(c)))
            if c.release_ago is not None:
                events.append((c.release_ago, MONEY, (c.terminal, RELEASE), self._released(c)))
        return events

    def day(self, ago: int) -> date:
        return self.plan.today - timedelta(days=ago)

    def _offered(self, c: ContractPlan) -> Callable[[datetime], Entry]:
        def make(at: datetime) -> Entry:
            return Entry(
                event_type=EventType.CONTRACT_OFFERED,
                subject_type="contract",
                subject_id=str(self.written.contracts[c.terminal]),
                after={
                    "terminal": self.written.terminal_ids[c.terminal],
                    "merchant": self.plan.merchants[c.merchant].mid,
                    "plan": self.standard.code,
                    "annual_fee_fen": c.annual_fee_fen,
                    "deposit_fen": c.deposit_fen,
                },
                occurred_at=at,
            )

        return make

    def _accepted(self, c: ContractPlan) -> Callable[[datetime], Entry]:
        starts = self.day(self.plan.terminals[c.terminal].steps[c.bind].ago)

        def make(at: datetime) -> Entry:
            return Entry(
                event_type=EventType.CONTRACT_ACCEPTED,
                subject_type="contract",
                subject_id=str(self.written.contracts[c.terminal]),
                after={"starts_on": str(starts)},
                occurred_at=at,
            )

        return make

    def _collected(self, c: ContractPlan) -> Callable[[datetime], Entry]:
        def make(at: datetime) -> Entry:
            return Entry(
                event_type=EventType.DEPOSIT_COLLECTED,
                subject_type="deposit",
                subject_id=str(self.written.deposits[c.terminal]),
                after={"amount_fen": c.deposit_fen, "contract": self.written.contracts[c.terminal]},
                occurred_at=at,
            )

        return make

    def _released(self, c: ContractPlan) -> Callable[[datetime], Entry]:
        def make(at: datetime) -> Entry:
            deposit = self.written.deposits[c.terminal]
            refund, forfeit, reason, note = self.releases[c.terminal]
            return Entry(
                event_type=EventType.DEPOSIT_RELEASED,
                subject_type="deposit",
                subject_id=str(deposit),
                reason=reason[:48],
                note=clean_text(note),
                before={"status": "held"},
                after={
                    "refunded_fen": refund,
                    "forfeited_fen": forfeit,
                    "journal": f"deposit_release:{deposit}",
                },
                occurred_at=at,
            )

        return make

    # -- rows ------------------------------------------------------------------------------------

    def write(
        self,
        *,
        times: dict[tuple[int, ...], datetime],
        merchants: list[Any],
        terminal_ids: list[int],
        provider_id: int,
    ) -> None:
        """Plan assignments, contracts, fees due, deposits and their journals. ``times`` gives the
        moment of each money event by its order key (``fleet.events``)."""
        plan = self.plan
        self.written.terminal_ids = terminal_ids
        insert_rows(
            PlanAssignment,
            ("merchant", "effective_from", "created_at"),
            (
                (row.pk, self.day(m.created), times[(6, 2, m.index, 90)])
                for m, row in zip(plan.merchants, merchants, strict=True)
            ),
            plan=self.standard.pk,
            terminal=None,
            d0_settlement=False,
        )
        rows = []
        for c in self.contracts:
            terminal = plan.terminals[c.terminal]
            ended = self.day(terminal.steps[c.ends].ago) if c.ends is not None else None
            rows.append(
                (
                    terminal_ids[c.terminal],
                    merchants[c.merchant].pk,
                    ServiceContract.Status.ENDED if ended else ServiceContract.Status.ACTIVE,
                    self.day(terminal.steps[c.bind].ago),
                    c.term_months,
                    c.annual_fee_fen,
                    c.deposit_fen,
                    M.MIN_TERM_MONTHS,
                    c.penalty_rule,
                    c.penalty_fixed_fen,
                    c.penalty_monthly_fen,
                    c.penalty_cap_fen,
                    c.recovery_fee_fen,
                    c.recovery_value_fen,
                    c.damage_prices,  # insert_rows encodes JSON fields
                    times[(6, c.terminal, ACCEPT)],
                    ended,
                    times[(6, c.terminal, OFFER)],
                )
            )
        insert_rows(
            ServiceContract,
            (
                "terminal",
                "merchant",
                "status",
                "starts_on",
                "term_months",
                "annual_fee_fen",
                "deposit_fen",
                "min_term_months",
                "penalty_rule",
                "penalty_fixed_fen",
                "penalty_monthly_fen",
                "penalty_cap_fen",
                "recovery_fee_fen",
                "recovery_value_fen",
                "damage_prices",
                "accepted_at",
                "ended_on",
                "created_at",
            ),
            rows,
            plan=self.standard.pk,
        )
        by_terminal = dict(ServiceContract.objects.values_list("terminal_id", "pk"))
        index_of = {pk: i for i, pk in enumerate(terminal_ids)}
        self.written.contracts = {index_of[t]: pk for t, pk in by_terminal.items()}
        self._fees_due(rows)
        self._deposits(times, merchants, provider_id)

    def _fees_due(self, rows: list[tuple[Any, ...]]) -> None:
        """Every year's fee, as ``contract_accept`` writes them; an ended contract's later years
        are not owed (they fall after its end)."""
        fees = []
        for c, row in zip(self.contracts, rows, strict=True):
            starts, ended = row[3], row[16]
            for year in range(c.term_months // 12):
                due = add_months(starts, 12 * year)
                if c.annual_fee_fen and (ended is None or due < ended):
                    fees.append((self.written.contracts[c.terminal], year + 1, due, c.annual_fee_fen))
        insert_rows(ServiceFeeDue, ("contract", "period", "due_on", "amount_fen"), fees, journal=None)

    def _deposits(
        self, times: dict[tuple[int, ...], datetime], merchants: list[Any], provider_id: int
    ) -> None:
        plan = self.plan
        held = [c for c in self.contracts if c.deposit_fen]
        if not held:
            return
        orgs = {c.merchant: merchants[c.merchant].organisation_id for c in held}
        ids = accounts(
            [(provider_id, AccountKind.BANK_CLEARING), (provider_id, AccountKind.PENALTY_REVENUE)]
            + [(org, AccountKind.DEPOSIT_HELD) for org in orgs.values()]
        )
        bank, penalties = (
            ids[(provider_id, AccountKind.BANK_CLEARING)],
            ids[(provider_id, AccountKind.PENALTY_REVENUE)],
        )
        # Collected: one post_many per day (a journal's time is the day's last collection).
        collect_journal: dict[int, int] = {}
        by_day: dict[date, list[ContractPlan]] = defaultdict(list)
        for c in held:
            by_day[self.day(plan.terminals[c.terminal].steps[c.bind].ago)].append(c)
        for day in sorted(by_day):
            group = by_day[day]
            specs = []
            for c in group:
                contract = self.written.contracts[c.terminal]
                specs.append(
                    JournalSpec(
                        kind=JournalKind.DEPOSIT_COLLECT,
                        reference=f"deposit_collect:{contract}",
                        business_date=day,
                        merchant_id=merchants[c.merchant].pk,
                        memo=f"deposit for contract {contract}",
                        lines=[
                            (bank, c.deposit_fen),
                            (ids[(orgs[c.merchant], AccountKind.DEPOSIT_HELD)], -c.deposit_fen),
                        ],
                    )
                )
            last = max(times[(6, c.terminal, COLLECT)] for c in group)
            for c, journal in zip(group, post_many(specs, occurred_at=last), strict=True):
                collect_journal[c.terminal] = journal
        insert_rows(
            Deposit,
            ("contract", "merchant", "amount_fen", "collected_at", "collect_journal"),
            (
                (
                    self.written.contracts[c.terminal],
                    merchants[c.merchant].pk,
                    c.deposit_fen,
                    times[(6, c.terminal, COLLECT)],
                    collect_journal[c.terminal],
                )
                for c in held
            ),
            status=Deposit.Status.HELD,
            refunded_fen=0,
            forfeited_fen=0,
            released_at=None,
            release_journal=None,
        )
        by_contract = dict(Deposit.objects.values_list("contract_id", "pk"))
        self.written.deposits = {c.terminal: by_contract[self.written.contracts[c.terminal]] for c in held}
        self._releases(times, merchants, ids, orgs, bank, penalties)

    def _releases(
        self,
        times: dict[tuple[int, ...], datetime],
        merchants: list[Any],
        ids: dict[tuple[int, str], int],
        orgs: dict[int, int],
        bank: int,
        penalties: int,
    ) -> None:
        releasing = [c for c in self.contracts if c.deposit_fen and c.release_ago is not None]
        by_day: dict[date, list[ContractPlan]] = defaultdict(list)
        for c in releasing:
            refund, forfeit, reason, note = self._outcome(c)
            self.releases[c.terminal] = (refund, forfeit, reason, note)
            by_day[self.day(c.release_ago or 0)].append(c)
        updates = []
        for day in sorted(by_day):
            group = by_day[day]
            specs = []
            for c in group:
                deposit = self.written.deposits[c.terminal]
                refund, forfeit, reason, _note = self.releases[c.terminal]
                lines = [(ids[(orgs[c.merchant], AccountKind.DEPOSIT_HELD)], c.deposit_fen)]
                if refund:
                    lines.append((bank, -refund))
                if forfeit:
                    lines.append((penalties, -forfeit))
                specs.append(
                    JournalSpec(
                        kind=JournalKind.DEPOSIT_REFUND,
                        reference=f"deposit_release:{deposit}",
                        business_date=day,
                        merchant_id=merchants[c.merchant].pk,
                        memo=clean_text(f"deposit {deposit}: {reason}", 255),
                        lines=lines,
                    )
                )
            last = max(times[(6, c.terminal, RELEASE)] for c in group)
            for c, journal in zip(group, post_many(specs, occurred_at=last), strict=True):
                refund, forfeit, _reason, _note = self.releases[c.terminal]
                at = times[(6, c.terminal, RELEASE)]
                status = Deposit.Status.REFUNDED if refund else Deposit.Status.FORFEITED
                updates.append(
                    (
                        status,
                        refund,
                        forfeit,
                        connection.ops.adapt_datetimefield_value(at),
                        journal,
                        self.written.deposits[c.terminal],
                    )
                )
        if updates:
            quote = connection.ops.quote_name
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {quote(Deposit._meta.db_table)} SET status = %s, refunded_fen = %s, "  # noqa: S608
                    "forfeited_fen = %s, released_at = %s, release_journal_id = %s "
                    "WHERE id = %s AND status = 'held'",
                    updates,
                )

    def _outcome(self, c: ContractPlan) -> tuple[int, int, str, str]:
        """Refund and forfeit of a released deposit, with the reason and note a reviewer would write."""
        terminal = self.plan.terminals[c.terminal]
        assert c.ends is not None
        ends_on = self.day(terminal.steps[c.ends].ago)
        contract = ServiceContract(
            starts_on=self.day(terminal.steps[c.bind].ago),
            min_term_months=M.MIN_TERM_MONTHS,
            penalty_rule=c.penalty_rule,
            penalty_fixed_fen=c.penalty_fixed_fen,
            penalty_monthly_fen=c.penalty_monthly_fen,
            penalty_cap_fen=c.penalty_cap_fen,
        )
        penalty = penalty_for(contract, ends_on)
        damage = c.damage_prices.get(c.grade, 0) if c.grade else 0
        recovery = c.recovery_fee_fen if c.lost else 0
        forfeit = min(c.deposit_fen, penalty + damage + recovery)
        parts = []
        if penalty:
            parts.append(f"提前解约违约金 {format_fen(penalty)}")
        if damage:
            parts.append(f"设备损坏（等级{c.grade}）{format_fen(damage)}")
        if recovery:
            parts.append(f"设备未回收，回收费 {format_fen(recovery)}")
        if c.lost:
            reason = "终端挂失，押金抵扣设备回收费"
        elif c.returned:
            reason = f"终端注销，设备已回收（检验等级{c.grade}）"
        else:
            reason = "终端注销，押金结算"
        note = "；".join(parts) if parts else "押金全额退还"
        return c.deposit_fen - forfeit, forfeit, reason, note


def _maker(
    event_type: EventType, subject_type: str, subject_id: str, after: dict[str, Any]
) -> Callable[[datetime], Entry]:
    def make(at: datetime) -> Entry:
        return Entry(
            event_type=event_type,
            subject_type=subject_type,
            subject_id=subject_id,
            after=after,
            occurred_at=at,
        )

    return make
