"""The demo's money: status periods that tile every terminal's history, contracts and deposits as the
services leave them, transactions only while a terminal was active, T+1 settlement up to the day
before yesterday, statements and the comparison on demo data, both verifiers, determinism."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import translation

from posfleet.audit.models import AuditEvent
from posfleet.audit.verify import verify_chain
from posfleet.audit.vocabulary import EventType
from posfleet.billing.comparison import compare_plans
from posfleet.billing.models import (
    Account,
    Deposit,
    Journal,
    PlanAssignment,
    RatePlan,
    ServiceContract,
    ServiceFeeDue,
    SettlementBatch,
    SettlementRun,
    Transaction,
)
from posfleet.billing.selectors import with_settlement
from posfleet.billing.services.contracts import Terms, contract_accept, contract_offer
from posfleet.billing.services.deposits import deposit_release
from posfleet.billing.services.settlement import unsettled_totals
from posfleet.billing.statements import (
    MONTHLY_DOCUMENT,
    Month,
    monthly_statement,
    render_document,
    render_pdf,
)
from posfleet.billing.verify import verify_ledger
from posfleet.demo import clock
from posfleet.demo.build import build_demo
from posfleet.demo.money import vocabulary as M
from posfleet.fleet.models import StatusPeriod, Terminal
from posfleet.fleet.selectors import active_periods, was_active
from posfleet.fleet.states import IN_SERVICE, Status
from posfleet.iam.models import User
from posfleet.parties.models import Merchant
from posfleet.platform.context import Actor
from posfleet.testing.refusals import assert_nothing_recorded

TODAY = date(2026, 11, 23)
YESTERDAY = TODAY - timedelta(days=1)
SETTLED_UNTIL = TODAY - timedelta(days=2)
DAYS = 14
FIRST = TODAY - timedelta(days=DAYS)
SMALL = {
    "agents": 2,
    "merchants": 20,
    "terminals": 200,
    "seed": 4242,
    "today": TODAY,
    "money_days": DAYS,
    "sales_per_day": 1.0,
}


@pytest.fixture
def demo(db):
    return build_demo(**SMALL)


def test_small_demo_with_money(demo):
    """One build, every property checked on it."""
    check_status_periods_tile_every_history()
    check_both_verifiers_pass_and_the_chain_is_in_time_order()
    check_every_selling_merchant_has_transactions_and_settlements()
    check_no_approved_transaction_outside_active_periods()
    check_refunds_and_reversals_name_their_sales_and_stay_within_them()
    check_settled_up_to_the_day_before_yesterday()
    check_plans_and_assignments()
    check_contracts_fees_and_deposits()
    check_a_statement_renders_with_the_sql_totals()
    check_the_comparison_lists_the_competitors()
    check_the_mix_is_a_chinese_retail_mix()
    check_summary_lines(demo)


def check_status_periods_tile_every_history():
    periods = defaultdict(list)
    for row in StatusPeriod.objects.order_by("terminal_id", "started_at").values_list(
        "terminal_id", "status", "started_at", "ended_at"
    ):
        periods[row[0]].append(row[1:])
    changes = defaultdict(list)
    for sn, status, at in (
        AuditEvent.objects.filter(subject_type="terminal")
        .order_by("seq")
        .values_list("subject_id", "after__status", "occurred_at")
    ):
        if status is not None:  # a move of its life (not a device's report, e.g. a relocation alert)
            changes[sn].append((status, at))
    terminals = list(Terminal.objects.values_list("pk", "sn", "status"))
    assert len(terminals) == 200
    for pk, sn, status in terminals:
        rows = periods.get(pk, [])
        if not changes[sn]:  # in stock since its delivery: no period before the first change
            assert not rows
            assert status == Status.IN_STOCK
            continue
        assert [(s, start) for s, start, _end in rows] == changes[sn], sn
        for (_s, _start, end), (_next, start, _e) in itertools.pairwise(rows):
            assert end == start, sn  # no gap, no overlap
        assert rows[-1][2] is None, sn  # the open one…
        assert rows[-1][0] == status, sn  # …is the present
    assert StatusPeriod.objects.filter(ended_at__isnull=True).count() == sum(
        1 for t in terminals if changes[t[1]]
    )


def check_both_verifiers_pass_and_the_chain_is_in_time_order():
    ledger = verify_ledger()
    assert ledger.ok, ledger.problems
    assert ledger.journals > 0
    chain = verify_chain()
    assert chain.ok, chain.problem
    assert chain.checked == AuditEvent.objects.count()
    times = list(AuditEvent.objects.order_by("seq").values_list("occurred_at", flat=True))
    assert times == sorted(times)
    assert times[-1].date() < TODAY


def selling_terminals():
    """Terminals bound to a merchant now that were active at some time in the money window."""
    start = clock_start(FIRST)
    ids = list(
        Terminal.objects.filter(merchant__isnull=False, tid__isnull=False).values_list("pk", flat=True)
    )
    periods = active_periods(ids, start, clock_start(TODAY))
    return {pk: spans for pk, spans in periods.items() if spans}


def clock_start(day: date) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.combine(day, datetime.min.time(), ZoneInfo("Asia/Shanghai"))


def check_every_selling_merchant_has_transactions_and_settlements():
    active_now = set(Terminal.objects.filter(status=Status.ACTIVE).values_list("merchant_id", flat=True))
    with_txns = set(Transaction.objects.values_list("merchant_id", flat=True))
    assert active_now
    assert active_now <= with_txns
    # A merchant with a terminal active on a day that is settled by now has at least one batch.
    settled_end = clock_start(SETTLED_UNTIL + timedelta(days=1))
    terminals = dict(Terminal.objects.values_list("pk", "merchant_id"))
    due = {
        terminals[pk]
        for pk, spans in selling_terminals().items()
        if any(started < settled_end for started, _ended in spans)
    }
    assert due
    batched = set(SettlementBatch.objects.values_list("merchant_id", flat=True))
    assert due <= batched
    assert Transaction.objects.filter(status="approved").count() > 1000


def check_no_approved_transaction_outside_active_periods():
    approved = list(Transaction.objects.filter(status="approved").values_list("terminal_id", "occurred_at"))
    periods = active_periods(
        sorted({t for t, _at in approved}), min(at for _t, at in approved), max(at for _t, at in approved)
    )
    outside = [(t, at) for t, at in approved if not was_active(periods[t], at)]
    assert outside == []
    assert not Transaction.objects.exclude(terminal__merchant_id=F("merchant_id")).exists()


def check_refunds_and_reversals_name_their_sales_and_stay_within_them():
    follow_ups = Transaction.objects.exclude(kind="sale")
    assert follow_ups.filter(kind="refund").exists()
    assert follow_ups.filter(kind="reversal").exists()
    assert not follow_ups.filter(original__isnull=True).exists()
    assert not follow_ups.exclude(original__merchant_id=F("merchant_id")).exists()
    assert not follow_ups.exclude(original__kind="sale").exists()
    assert not follow_ups.filter(txn_date__lt=F("original__txn_date")).exists()
    assert follow_ups.filter(kind="refund", txn_date__gt=F("original__txn_date")).exists()  # days later
    reversals = follow_ups.filter(kind="reversal")
    assert not reversals.exclude(txn_date=F("original__txn_date")).exists()
    assert not reversals.exclude(terminal_id=F("original__terminal_id")).exists()
    assert not reversals.exclude(amount_fen=F("original__amount_fen")).exists()
    refunded = (
        Transaction.objects.filter(status="approved", original__isnull=False)
        .values("original_id", "original__amount_fen", "original__fee_fen")
        .annotate(amount=Sum("amount_fen"), fee=Sum("fee_fen"))
    )
    assert refunded
    for row in refunded:
        assert row["amount"] <= row["original__amount_fen"]
        assert row["fee"] <= row["original__fee_fen"]
    partial = [r for r in refunded if r["amount"] < r["original__amount_fen"]]
    full = [r for r in refunded if r["amount"] == r["original__amount_fen"]]
    assert partial
    assert full


def check_settled_up_to_the_day_before_yesterday():
    runs = dict(SettlementRun.objects.values_list("business_date", "status"))
    assert runs == {FIRST + timedelta(days=n): "done" for n in range(DAYS - 1)}
    assert max(runs) == SETTLED_UNTIL
    yesterday = Transaction.objects.filter(txn_date=YESTERDAY, status="approved")
    assert yesterday.exists()
    assert not with_settlement(yesterday).filter(settled_by__isnull=False).exists()  # T+1: tomorrow
    waiting = unsettled_totals(SETTLED_UNTIL)  # only merchants whose net is not positive wait
    assert all(t.net_fen <= 0 for t in waiting.values())
    assert not Transaction.objects.filter(status="declined", daily_total__isnull=False).exists()
    for batch in SettlementBatch.objects.all():
        sums = Transaction.objects.filter(batch.pays("daily_total__")).aggregate(
            gross=Sum("amount_fen", filter=Q(kind="sale"), default=0),
            back=Sum("amount_fen", filter=~Q(kind="sale"), default=0),
        )
        assert (sums["gross"], sums["back"]) == (batch.gross_fen, batch.refunds_fen)
        assert batch.paid_on == batch.business_date + timedelta(days=1)


def check_plans_and_assignments():
    codes = set(RatePlan.objects.filter(is_competitor=True).values_list("code", flat=True))
    assert codes == {p.code for p in M.COMPETITORS}
    vip = RatePlan.objects.get(code=M.VIP.code)
    assert vip.versions.count() == 2
    merchants = Merchant.objects.count()
    standard = PlanAssignment.objects.filter(plan__code="standard", terminal__isnull=True)
    assert standard.count() == merchants
    for merchant in Merchant.objects.all():  # the standard plan from before its first activation
        first = (
            AuditEvent.objects.filter(event_type=EventType.TERMINAL_ACTIVATED, after__merchant=merchant.mid)
            .order_by("seq")
            .first()
        )
        assigned = standard.get(merchant=merchant).effective_from
        if first is not None:
            assert assigned <= first.occurred_at.date()
    on_vip = PlanAssignment.objects.filter(plan=vip)
    assert on_vip.count() == 2
    merchant2 = Merchant.objects.get(organisation=User.objects.get(username="merchant2").organisation)
    later = on_vip.get(merchant=merchant2).effective_from
    priced = Transaction.objects.filter(merchant=merchant2, kind="sale", status="approved")
    assert set(priced.filter(txn_date__lt=later).values_list("plan_version__plan__code", flat=True)) <= {
        "standard"
    }
    assert set(priced.filter(txn_date__gte=later).values_list("plan_version__plan__code", flat=True)) == {
        "vip"
    }
    assert AuditEvent.objects.filter(event_type=EventType.PLAN_ASSIGNED).count() == merchants + 2


def check_contracts_fees_and_deposits():
    bound = set(
        AuditEvent.objects.filter(event_type=EventType.TERMINAL_BOUND).values_list("subject_id", flat=True)
    )
    contracts = ServiceContract.objects.select_related("terminal")
    assert {c.terminal.sn for c in contracts} == bound
    assert contracts.count() == len(bound)
    for c in contracts:
        assert c.term_months in {12, 24}
        assert c.min_term_months == 12
        assert 9_900 <= c.annual_fee_fen <= 19_900
        assert c.deposit_fen in {0, 9_900, 19_900, 29_900}
        ended = c.terminal.status in {Status.DEREGISTERED, Status.RETURNED, Status.SCRAPPED} or (
            c.terminal.status in {Status.IN_STOCK, Status.BLOCKED} and c.ended_on is not None
        )
        assert (c.status == "ended") == ended, c.terminal.sn
        fees = list(c.fees_due.order_by("period").values_list("due_on", flat=True))
        assert fees
        assert fees[0] == c.starts_on
        assert c.ended_on is None or fees[-1] < c.ended_on
    # Every fee due of a terminal in service is charged; a stopped terminal's fee waits (and lapses if
    # it is closed instead).
    assert not ServiceFeeDue.objects.filter(
        due_on__lte=FIRST, journal__isnull=True, contract__terminal__status__in=IN_SERVICE
    ).exists()
    assert ServiceFeeDue.objects.filter(journal__isnull=False).count() > 0
    deposits = Deposit.objects.select_related("contract__terminal")
    assert deposits.filter(status="held").exists()
    assert deposits.filter(status="refunded", forfeited_fen=0).exists()  # in full
    assert deposits.exclude(status="held").filter(forfeited_fen__gt=0).exists()  # in part, or all
    for d in deposits.exclude(status="held"):
        assert d.contract.status == "ended"
        assert d.refunded_fen + d.forfeited_fen == d.amount_fen
        assert d.release_journal is not None
        assert d.release_journal.reference == f"deposit_release:{d.pk}"
    assert not deposits.filter(status="held", contract__terminal__status=Status.RETURNED).exists()
    assert Deposit.objects.count() == ServiceContract.objects.filter(deposit_fen__gt=0).count()


def check_a_statement_renders_with_the_sql_totals():
    merchant = Merchant.objects.get(organisation=User.objects.get(username="merchant1").organisation)
    month = Month.of(SETTLED_UNTIL)
    statement = monthly_statement(merchant, month)
    rows = Transaction.objects.filter(
        merchant=merchant, txn_date__gte=month.first_day, txn_date__lte=month.last_day, status="approved"
    )
    sums = rows.aggregate(
        sales=Sum("amount_fen", filter=Q(kind="sale"), default=0),
        back=Sum("amount_fen", filter=~Q(kind="sale"), default=0),
        fees=Sum("fee_fen", filter=Q(kind="sale"), default=0),
        returned=Sum("fee_fen", filter=~Q(kind="sale"), default=0),
    )
    assert statement.totals.sales_fen == sums["sales"] > 0
    assert statement.totals.refunds_fen == sums["back"]
    assert statement.totals.fees_fen == sums["fees"] - sums["returned"]
    batches = SettlementBatch.objects.filter(
        merchant=merchant, business_date__gte=month.first_day, business_date__lte=month.last_day
    ).aggregate(paid=Sum("payout_fen"))
    assert statement.settlement_totals.payout_fen == batches["paid"] > 0
    with translation.override("zh-hans"):
        html = render_document(MONTHLY_DOCUMENT, {"statement": statement, "provider_name": "云汇通支付"})
        pdf = render_pdf(MONTHLY_DOCUMENT, {"statement": statement, "provider_name": "云汇通支付"})
    assert merchant.mid in html
    assert f"{month.year}年{month.month}月" in html
    assert "商户" in html
    assert pdf.startswith(b"%PDF")


def check_the_comparison_lists_the_competitors():
    merchant = Merchant.objects.get(organisation=User.objects.get(username="merchant1").organisation)
    result = compare_plans(merchant_id=merchant.pk, first=Month.of(FIRST), last=Month.of(YESTERDAY), on=TODAY)
    codes = [p.code for p in result.plans]
    assert {p.code for p in M.COMPETITORS} <= set(codes)
    assert result.current is not None
    assert result.current.code == "standard"
    assert result.has_transactions
    assert result.current.fees_total_fen == sum(result.actual_fees_fen)  # our plan, priced again, to the fen


def check_the_mix_is_a_chinese_retail_mix():
    sales = Transaction.objects.filter(kind="sale")
    total = sales.count()
    share = {m: sales.filter(method=m).count() / total for m in ("qr", "debit", "credit", "nfc", "foreign")}
    assert share["qr"] > share["debit"] > share["nfc"] > share["foreign"]
    assert share["credit"] > share["nfc"]
    assert not sales.filter(method="qr").exclude(entry_mode="scan").exists()
    assert not sales.filter(method="nfc").exclude(entry_mode="tap").exists()
    assert not sales.filter(method__in=["debit", "credit"], entry_mode__in=["scan", "tap"]).exists()
    assert not sales.filter(method="qr").exclude(card_masked="").exists()
    declined = sales.filter(status="declined")
    assert 0.01 < declined.count() / total < 0.06
    assert set(declined.values_list("response_code", flat=True)) <= {"51", "05", "55"}
    hours = [t.hour for t in sales.values_list("occurred_at", flat=True)]
    assert hours  # (UTC here; the shape is checked on the plan in test_sales_shape)


def check_summary_lines(demo):
    lines = dict(demo.money)
    assert lines["money window"].startswith(f"{FIRST} … {YESTERDAY}")
    assert lines["settlement batches (days)"].endswith(f"({DAYS - 1})")
    assert demo.audit_events == AuditEvent.objects.count()


# ---------------------------------------------------------------------------------------------


def test_bulk_contracts_and_deposits_are_what_the_services_write(demo):
    """For a released deposit of the demo, the real services with the same terms write the same
    contract, fees due, deposit, journals and audit entries (ids and times aside)."""
    deposit = (
        Deposit.objects.exclude(status="held")
        .filter(forfeited_fen__gt=0, refunded_fen__gt=0)
        .select_related("contract", "contract__terminal", "merchant")
        .first()
    )
    assert deposit is not None
    ours = deposit.contract
    system = Actor.system("demo")
    moment = datetime.combine(ours.starts_on, datetime.min.time(), ours.accepted_at.tzinfo) + timedelta(
        hours=8
    )
    terms = Terms(
        starts_on=ours.starts_on,
        term_months=ours.term_months,
        annual_fee_fen=ours.annual_fee_fen,
        deposit_fen=ours.deposit_fen,
        min_term_months=ours.min_term_months,
        penalty_rule=ours.penalty_rule,
        penalty_fixed_fen=ours.penalty_fixed_fen,
        penalty_monthly_fen=ours.penalty_monthly_fen,
        penalty_cap_fen=ours.penalty_cap_fen,
        recovery_fee_fen=ours.recovery_fee_fen,
        recovery_value_fen=ours.recovery_value_fen,
        damage_prices=ours.damage_prices,
    )
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    with transaction.atomic(), clock.at(moment):
        theirs = contract_offer(
            actor=system, terminal_id=ours.terminal_id, merchant=deposit.merchant, plan=ours.plan, terms=terms
        )
        contract_accept(actor=system, contract=theirs)
    ours_release = AuditEvent.objects.get(event_type=EventType.DEPOSIT_RELEASED, subject_id=str(deposit.pk))
    released = Deposit.objects.get(contract=theirs)
    with clock.at(deposit.released_at):
        deposit_release(
            actor=system,
            deposit_id=released.pk,
            refund_fen=deposit.refunded_fen,
            reason=ours_release.reason,
            note=ours_release.note,
        )
    theirs.refresh_from_db()
    released.refresh_from_db()

    fields = [
        f.name
        for f in ServiceContract._meta.concrete_fields
        if f.name not in {"id", "status", "ended_on", "created_at"}
    ]
    assert {f: getattr(theirs, f) for f in fields if f != "accepted_at"} == {
        f: getattr(ours, f) for f in fields if f != "accepted_at"
    }
    their_fees = list(theirs.fees_due.values_list("period", "due_on", "amount_fen"))
    our_fees = list(ours.fees_due.values_list("period", "due_on", "amount_fen"))
    assert our_fees == [f for f in their_fees if f[1] < ours.ended_on]  # the ended contract's later years go
    for name in ("amount_fen", "status", "refunded_fen", "forfeited_fen"):
        assert getattr(released, name) == getattr(deposit, name)

    def journal(j: Journal, *ids: int) -> tuple:
        memo = j.memo
        for pk, name in zip(ids, ("C", "D"), strict=False):
            memo = memo.replace(str(pk), name)
        entries = sorted(j.entries.values_list("account__kind", "account__organisation_id", "amount_fen"))
        return (j.kind, j.business_date, memo, j.reference.split(":")[0], entries)

    assert journal(released.collect_journal, theirs.pk) == journal(deposit.collect_journal, ours.pk)
    assert journal(released.release_journal, theirs.pk, released.pk) == journal(
        deposit.release_journal, ours.pk, deposit.pk
    )

    def events(contract: int, dep: int, after_seq: int | None, before_seq: int | None) -> list[tuple]:
        rows = AuditEvent.objects.filter(
            Q(subject_type="contract", subject_id=str(contract))
            | Q(subject_type="deposit", subject_id=str(dep))
        )
        if after_seq is not None:
            rows = rows.filter(seq__gt=after_seq)
        out = []
        for e in rows.order_by("seq"):
            after = {k: ("<id>" if k in {"contract", "terminal"} else v) for k, v in e.after.items()}
            if "journal" in after:
                after["journal"] = after["journal"].split(":")[0]
            out.append(
                (e.event_type, e.subject_type, e.actor_kind, e.actor_label, e.reason, e.note, e.before, after)
            )
        return out

    assert events(theirs.pk, released.pk, seq, None) == events(ours.pk, deposit.pk, None, seq)
    report = verify_ledger()
    assert report.ok, report.problems
    assert verify_chain().ok


def test_same_seed_same_money(db):
    """Two builds in fresh databases (the first rolled back): the same transactions and the same ledger."""

    class Undo(Exception):
        pass

    options = {**SMALL, "terminals": 120, "money_days": 6}
    try:
        with transaction.atomic():
            build_demo(**options)
            first = money_snapshot()
            raise Undo
    except Undo:
        pass
    assert not Transaction.objects.exists()
    build_demo(**options)
    second = money_snapshot()
    assert second == first
    assert len(first[0]) > 100


def money_snapshot():
    """The transactions and the ledger, without database ids."""
    txns = list(
        Transaction.objects.order_by("tid", "txn_date", "batch_no", "trace_no").values_list(
            "tid",
            "batch_no",
            "trace_no",
            "txn_date",
            "occurred_at",
            "kind",
            "status",
            "method",
            "entry_mode",
            "amount_fen",
            "fee_fen",
            "card_masked",
            "response_code",
            "original__tid",
            "original__trace_no",
            "merchant__mid",
            "plan_version__plan__code",
            "daily_total__settle_day",
        )
    )
    owners = {m.organisation_id: m.mid for m in Merchant.objects.all()}
    balances = sorted(
        (owners.get(org, "provider"), kind, balance)
        for org, kind, balance in Account.objects.values_list("organisation_id", "kind", "balance_fen")
    )
    batches = sorted(
        SettlementBatch.objects.values_list(
            "merchant__mid",
            "business_date",
            "txn_count",
            "gross_fen",
            "fees_fen",
            "service_fees_fen",
            "payout_fen",
        )
    )
    return txns, balances, batches


def test_if_empty_is_a_no_op_the_second_time_with_money(db):
    options = ["--agents", "2", "--merchants", "8", "--terminals", "40", "--today", TODAY.isoformat()]
    options += ["--money-days", "3"]
    call_command("demo", *options, "--if-empty", stdout=_Sink())
    assert Transaction.objects.exists()
    out = _Sink()
    # no transaction, contract, deposit or settlement more; no journal, audit event or outbox message
    with assert_nothing_recorded(
        Transaction.objects.all(),
        ServiceContract.objects.all(),
        Deposit.objects.all(),
        SettlementBatch.objects.all(),
        Account.objects.all(),
    ):
        call_command("demo", *options, "--if-empty", stdout=out)
    assert "nothing done" in out.text


def test_no_money_days_means_no_money(db):
    call_command(
        "demo", "--agents", "2", "--merchants", "8", "--terminals", "40", "--money-days", "0", stdout=_Sink()
    )
    assert Terminal.objects.count() == 40
    assert StatusPeriod.objects.exists()
    assert not Transaction.objects.exists()
    assert not ServiceContract.objects.exists()
    assert not Journal.objects.exists()
    assert verify_chain().ok


def test_the_summary_shows_the_money(db):
    out = _Sink()
    call_command(
        "demo", "--agents", "2", "--merchants", "8", "--terminals", "40", "--money-days", "4", stdout=out
    )
    for line in (
        "Money",
        "sales approved / declined",
        "settlement batches",
        "deposits held",
        "service contracts",
    ):
        assert line in out.text


def test_the_simulated_clock():
    from django.utils import timezone

    from posfleet.platform.clock import now, today

    moment = datetime(2026, 3, 1, 0, 30, tzinfo=clock_start(TODAY).tzinfo)
    with clock.at(moment):
        first, second = now(), now()
        assert first == moment
        assert second > first
        assert today() == date(2026, 3, 1)  # local date, though UTC is still 28 February
    assert abs(timezone.now() - now()) < timedelta(seconds=5)
    naive = datetime(2026, 3, 1)
    with pytest.raises(ValueError, match="aware"), clock.at(naive):
        pass


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
