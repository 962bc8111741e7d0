"""Re-application after closure: a waiting period, debt that blocks, a score from the merchant's real
history (built through the fleet and billing services), explained factor by factor; policies are
versioned files, chosen by date or pinned, refused with a clear message when wrong."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import translation
from django.utils.functional import Promise
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from posfleet.billing.services.contracts import renewal_fee_charge
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.enrollment.eligibility import (
    FACTORS,
    POLICY_DIR,
    Assessment,
    Facts,
    MerchantNotClosed,
    Outcome,
    PolicyError,
    assess,
    decide,
    load_policies,
    load_policy,
    merchant_facts,
    parse_policy,
    policy_in_force,
    policy_version,
    shipped_policies,
)
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import DeactivationReason, Status
from posfleet.platform.context import Actor
from posfleet.testing.money import on_standard_plan, signed_contract
from posfleet.testing.personas import SYSTEM, make_terminal

SH = ZoneInfo("Asia/Shanghai")
JOB = Actor.job("test-closure")
INGEST = Actor.job("test-ingest")
ACTIVE_FROM = datetime(2024, 3, 1, 9, 0, tzinfo=SH)
CLOSED_AT = datetime(2026, 5, 10, 15, 0, tzinfo=SH)  # 800 days and 6 hours later
WAIT_ENDS = date(2026, 8, 8)  # 90 days after 10 May
DECISION = date(2026, 9, 1)
KYC_CHECKED = date(2026, 8, 20)  # 12 days before the decision
V1 = policy_version(1)
SHIPPED = json.loads(POLICY_DIR.joinpath("eligibility-1.json").read_text(encoding="utf-8"))


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=SH)


def open_shop(world, merchant, sn: str, when: datetime = ACTIVE_FROM) -> Terminal:
    """``merchant`` on the standard plan with terminal ``sn`` active since ``when``."""
    on_standard_plan(merchant)
    with time_machine.travel(when, tick=False):
        return make_terminal(world, sn, Status.ACTIVE, merchant=merchant)


def sale(terminal: Terminal, trace: int, day: date, amount: int, **fields) -> TxnIn:
    values = {
        "tid": terminal.tid,
        "batch_no": "000001",
        "trace_no": f"{trace:06d}",
        "txn_date": day,
        "occurred_at": noon(day),
        "method": "credit",
        "entry_mode": "insert",
        "amount_fen": amount,
        "card_masked": "622202******1234",
        **fields,
    }
    return TxnIn(**values)


def follow_up(original: TxnIn, trace: int, amount: int, kind: str) -> TxnIn:
    values = {**original.__dict__, "trace_no": f"{trace:06d}", "amount_fen": amount, "kind": kind}
    return TxnIn(**{**values, "original": original.key})


def record(items: list[TxnIn], when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        results = transactions_ingest(actor=INGEST, items=items)
    assert [r.code for r in results if not r.ok] == []


def run(sn: str, when: datetime, *steps: tuple[str, dict[str, object]]) -> None:
    with time_machine.travel(when, tick=False):
        for action, kwargs in steps:
            terminal_transition(actor=JOB, sn=sn, action=action, **kwargs)  # type: ignore[arg-type]


def close(sn: str, when: datetime, reason: str) -> None:
    """The closure's terminal steps, by the job: deactivate, then deregister (注销)."""
    run(sn, when, ("deactivate", {"reason": reason}), ("deregister", {"reason": reason}))


def reissue(sn: str, when: datetime, merchant) -> None:
    """The device comes back, is refurbished (its binding cleared) and goes to ``merchant``."""
    run(
        sn,
        when,
        ("receive_return", {}),
        ("refurbish", {}),
        ("allocate", {"params": {"agent_code": merchant.agent.code}}),
        ("ship", {}),
        ("bind", {"params": {"merchant_mid": merchant.mid}}),
        ("activate", {}),
    )


def monthly_sales(terminal: Terminal, months: list[date], amount: int, first_trace: int = 1) -> list[TxnIn]:
    return [sale(terminal, first_trace + i, day, amount) for i, day in enumerate(months)]


LAST_YEAR = [date(2025, 6, 1) + timedelta(days=31 * i) for i in range(12)]  # 12 days, one a month


@pytest.fixture
def veteran(world):
    """Merchant A: 26 months active, ¥360,000 of takings in its last year, no declines, no refunds,
    closed on 10 May 2026 for a business change."""
    terminal = open_shop(world, world.merchant_a, "SN-VET-1")
    older = sale(terminal, 900, date(2025, 1, 15), 5_000_000)  # before the 12 months: not counted
    record([older, *monthly_sales(terminal, LAST_YEAR, 3_000_000)], CLOSED_AT - timedelta(days=1))
    close("SN-VET-1", CLOSED_AT, "business_change")
    return world


def texts(assessment: Assessment, which: str = "merchant_text") -> dict[str, str]:
    with translation.override("en"):
        return {f.code: str(getattr(f, which)) for f in assessment.factors}


def points(assessment: Assessment) -> dict[str, int]:
    return {f.code: f.contribution for f in assessment.factors}


# ---------------------------------------------------------------------------------------------
# Decisions from real history


def test_a_long_clean_history_is_approved_and_explained(veteran):
    result = assess(veteran.merchant_a, on=DECISION, kyc_checked_on=KYC_CHECKED)
    assert (result.outcome, result.score, result.policy_version) == (Outcome.APPROVE, 100, 1)
    assert result.policy_version == policy_in_force(DECISION).version
    assert points(result) == {
        "months_active": 25,
        "volume": 20,
        "anomaly_rate": 20,
        "disputes": 10,
        "closure_reason": 15,
        "kyc_freshness": 10,
    }
    assert sum(points(result).values()) == result.score
    assert [(f.code, f.value, f.weight) for f in result.factors] == [
        ("months_active", 26, 25),
        ("volume", 36_000_000, 20),
        ("anomaly_rate", 0, 20),
        ("disputes", 0, 10),
        ("closure_reason", "business_change", 15),
        ("kyc_freshness", 12, 10),
    ]
    facts = result.facts
    assert (facts.active_days, facts.terminals, facts.sales, facts.transactions) == (800, 1, 12, 12)
    assert (facts.closed_at, facts.closed_on, facts.debt_fen) == (CLOSED_AT, date(2026, 5, 10), 0)
    assert texts(result) == {
        "months_active": "You used your terminals for 26 months — this counts in your favour.",
        "volume": "In the 12 months before you closed, you took ¥360,000.00 in 12 sales"
        " — this counts in your favour.",
        "anomaly_rate": "0.00% of your payments were declined or cancelled — this counts in your favour.",
        "disputes": "None of your payments was refunded to a customer — this counts in your favour.",
        "closure_reason": "You closed because of: business change — this counts in your favour.",
        "kyc_freshness": "Your identity documents were last checked 12 days ago"
        " — this counts in your favour.",
    }
    staff = texts(result, "staff_text")
    assert staff["months_active"] == (
        "26 months active: 800 days with a terminal active, 1 terminal in all; "
        "full points from 24 months, none at 0 months or less: 25 of 25 points."
    )
    assert staff["volume"] == (
        "Takings ¥360,000.00 from 12 approved sales in the 12 months before closure, refunds and reversals "
        "deducted; full points from ¥360,000.00, none at ¥0.00 or less: 20 of 20 points."
    )
    assert staff["anomaly_rate"].endswith("full points at 3.00% or less, none from 20.00%: 20 of 20 points.")
    with translation.override("en"):
        assert [str(g.merchant_text) for g in result.gates] == [
            "The waiting period after your closure is over.",
            "You owe us nothing.",
        ]
        assert str(result.merchant_text) == "Your application to use our terminals again is approved."
        assert str(result.staff_text) == (
            "Approve: score 100 of 100 under eligibility policy 1 (approve from 70, manual review from 45)."
        )


def test_it_is_too_early_until_the_waiting_period_ends(veteran):
    early = assess(veteran.merchant_a, on=WAIT_ENDS - timedelta(days=1), kyc_checked_on=KYC_CHECKED)
    assert (early.outcome, early.score, early.waiting_ends_on) == (Outcome.TOO_EARLY, 100, WAIT_ENDS)
    assert [(g.code, g.passed, g.value) for g in early.gates] == [
        ("waiting_period", False, "2026-08-08"),
        ("outstanding_debt", True, 0),
    ]
    with translation.override("en"):
        assert str(early.merchant_text) == "It is too early to apply again: you can apply from 8 Aug 2026."
        assert str(early.gates[0].merchant_text) == (
            "You can apply again from 8 Aug 2026, 90 days after your closure."
        )
        assert str(early.gates[0].staff_text) == (
            "Closed on 10 May 2026; the waiting period of 90 days ends on 8 Aug 2026."
        )
    on_the_day = assess(veteran.merchant_a, on=WAIT_ENDS, kyc_checked_on=KYC_CHECKED)
    assert on_the_day.outcome == Outcome.APPROVE


def test_debt_blocks_even_a_perfect_history(veteran):
    terminal = Terminal.objects.get(sn="SN-VET-1")
    with time_machine.travel(ACTIVE_FROM, tick=False):
        contract = signed_contract(terminal, deposit_fen=0, annual_fee_fen=9900, starts_on=date(2024, 3, 1))
    with time_machine.travel(noon(date(2026, 3, 1)), tick=False):
        renewal_fee_charge(actor=SYSTEM, contract=contract, years=1, on=date(2026, 3, 1))
    result = assess(veteran.merchant_a, on=DECISION, kyc_checked_on=KYC_CHECKED)
    assert (result.outcome, result.score) == (Outcome.BLOCKED, 100)
    assert (result.facts.fees_owed_fen, result.facts.penalties_owed_fen) == (9900, 0)
    assert [(g.code, g.passed, g.value) for g in result.gates][1] == ("outstanding_debt", False, 9900)
    with translation.override("en"):
        assert str(result.merchant_text) == "You still owe us ¥99.00: please pay it before you apply again."
        assert str(result.gates[1].merchant_text) == (
            "You still owe us ¥99.00. We can consider a new application once it is paid."
        )
        assert str(result.gates[1].staff_text) == (
            "Owes ¥99.00 (fees ¥99.00, penalties ¥0.00): blocks re-application until paid."
        )
    # The waiting period still comes first.
    assert assess(veteran.merchant_a, on=date(2026, 6, 1)).outcome == Outcome.TOO_EARLY


def test_a_short_troubled_history_is_rejected(world):
    """Merchant B: three months, one in five payments declined or reversed, five refunds, closed for
    compliance reasons, KYC date unknown."""
    terminal = open_shop(world, world.merchant_b, "SN-SHORT-1", datetime(2026, 2, 1, 9, 0, tzinfo=SH))
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(20)]
    sales = monthly_sales(terminal, days, 10_000)
    declines = [
        sale(terminal, 100 + i, days[i], 10_000, status="declined", response_code="51") for i in range(4)
    ]
    reversals = [follow_up(sales[i], 200 + i, 10_000, "reversal") for i in range(2)]
    refunds = [follow_up(sales[10 + i], 300 + i, 5_000, "refund") for i in range(5)]
    record([*sales, *declines], datetime(2026, 4, 1, 9, 0, tzinfo=SH))
    record([*reversals, *refunds], datetime(2026, 4, 2, 9, 0, tzinfo=SH))
    close("SN-SHORT-1", CLOSED_AT, "regulation")

    result = assess(world.merchant_b, on=DECISION, policy=V1)
    facts = result.facts
    assert (facts.active_days, facts.months_active) == (98, 3)
    assert (facts.transactions, facts.declined, facts.reversals, facts.refunds) == (31, 4, 2, 5)
    assert (facts.sales, facts.volume_fen, facts.refunds_fen) == (20, 155_000, 25_000)
    assert [(f.code, f.value, f.share_permille, f.contribution) for f in result.factors] == [
        ("months_active", 3, 125, 3),
        ("volume", 155_000, 4, 0),
        ("anomaly_rate", 1935, 38, 0),  # 6 of 31: 19.35 %
        ("disputes", 5, 925, 9),
        ("closure_reason", "regulation", 0, 0),
        ("kyc_freshness", None, 500, 5),
    ]
    assert (result.outcome, result.score) == (Outcome.REJECT, 17)
    merchant = texts(result)
    assert (
        merchant["anomaly_rate"]
        == "19.35% of your payments were declined or cancelled — this counts against you."
    )
    assert merchant["disputes"] == "5 payments were refunded to customers — this counts in your favour."
    assert merchant["kyc_freshness"] == (
        "We have no recent check of your identity documents on file — this neither helps nor hurts."
    )
    assert texts(result, "staff_text")["kyc_freshness"] == (
        "No KYC check date given; unknown, so 50% of the weight: 5 of 10 points."
    )
    with translation.override("en"):
        assert str(result.merchant_text) == (
            "We cannot accept your application to use our terminals again at this time."
        )


def test_a_middling_history_goes_to_manual_review(world):
    """Merchant A1: a year, ¥180,000 of takings, clean, closed under financial pressure."""
    terminal = open_shop(world, world.merchant_a1, "SN-MID-1", datetime(2025, 5, 1, 9, 0, tzinfo=SH))
    record(monthly_sales(terminal, LAST_YEAR[:6], 3_000_000), CLOSED_AT - timedelta(days=1))
    close("SN-MID-1", CLOSED_AT, "financial_pressure")
    result = assess(world.merchant_a1, on=DECISION, policy=V1)
    assert points(result) == {
        "months_active": 12,
        "volume": 10,
        "anomaly_rate": 20,
        "disputes": 10,
        "closure_reason": 7,
        "kyc_freshness": 5,
    }
    assert (result.outcome, result.score, result.facts.months_active) == (Outcome.MANUAL_REVIEW, 64, 12)
    assert texts(result)["closure_reason"] == (
        "You closed because of: financial pressure — this counts partly in your favour."
    )
    with translation.override("en"):
        assert str(result.merchant_text) == "Our staff will look at your application and come back to you."


def test_history_survives_the_device_going_back_to_stock_and_to_others(world, django_assert_num_queries):
    """The merchant's device is refurbished (binding cleared), goes to merchant B, comes back to A and
    is closed again: A's two stretches count, B's does not, and the reason is the last closure's."""
    terminal = open_shop(world, world.merchant_a, "SN-BACK-1")
    on_standard_plan(world.merchant_b)
    record([sale(terminal, 1, date(2024, 6, 1), 100_000)], datetime(2024, 6, 2, 9, 0, tzinfo=SH))
    close("SN-BACK-1", datetime(2025, 3, 1, 9, 0, tzinfo=SH), "device_fault")  # 365 days active
    reissue("SN-BACK-1", datetime(2025, 4, 1, 9, 0, tzinfo=SH), world.merchant_b)
    with_b = Terminal.objects.get(sn="SN-BACK-1")
    record([sale(with_b, 1, date(2025, 6, 1), 777_700)], datetime(2025, 6, 2, 9, 0, tzinfo=SH))
    close("SN-BACK-1", datetime(2025, 9, 1, 9, 0, tzinfo=SH), "cost")
    reissue("SN-BACK-1", datetime(2025, 10, 1, 9, 0, tzinfo=SH), world.merchant_a)  # 221 days 6 h to closure
    again = Terminal.objects.get(sn="SN-BACK-1")
    record([sale(again, 1, date(2026, 1, 5), 3_000_000)], datetime(2026, 1, 6, 9, 0, tzinfo=SH))
    close("SN-BACK-1", CLOSED_AT, "competition")

    with django_assert_num_queries(6):  # + which of the device's stretches hold A's sales
        facts = merchant_facts(world.merchant_a, lookback_months=12)
    assert (facts.active_days, facts.terminals, facts.closed_at) == (586, 1, CLOSED_AT)
    assert (facts.closure_reason, facts.volume_fen, facts.sales) == ("competition", 3_000_000, 1)
    b = merchant_facts(world.merchant_b, lookback_months=12)
    assert (b.active_days, b.closure_reason, b.volume_fen) == (153, "cost", 777_700)

    # Now the device goes back to stock for good: the binding and the status reason are gone, the
    # reason comes from the deregistration's audit row.
    run("SN-BACK-1", datetime(2026, 6, 1, 9, 0, tzinfo=SH), ("receive_return", {}), ("refurbish", {}))
    assert Terminal.objects.filter(sn="SN-BACK-1", merchant__isnull=True, status_reason="").exists()
    with django_assert_num_queries(7):  # + the deregistration's audit row
        assert merchant_facts(world.merchant_a, lookback_months=12) == facts


def test_facts_take_a_fixed_handful_of_queries(veteran, django_assert_num_queries):
    # terminals, per-terminal transaction range, status periods, the window's sums, the balances
    with django_assert_num_queries(5):
        merchant_facts(veteran.merchant_a, lookback_months=12)
    run("SN-VET-1", datetime(2026, 6, 1, 9, 0, tzinfo=SH), ("receive_return", {}), ("refurbish", {}))
    with django_assert_num_queries(6):  # + the audit row of the deregistration
        facts = merchant_facts(veteran.merchant_a, lookback_months=12)
    assert facts.closure_reason == "business_change"


def test_only_a_closed_merchant_is_assessed(world):
    open_shop(world, world.merchant_a, "SN-OPEN-1")
    with pytest.raises(MerchantNotClosed) as refused:
        assess(world.merchant_a, on=DECISION)
    assert refused.value.code == "merchant_not_closed"
    with translation.override("en"):
        assert str(refused.value.detail) == "Terminal SN-OPEN-1 is still in service: close it first."
    with pytest.raises(MerchantNotClosed, match="no closure on record"), translation.override("en"):
        assess(world.merchant_b, on=DECISION)


def test_texts_are_translated_when_shown_not_when_built(veteran):
    with translation.override("en"):
        result = assess(veteran.merchant_a, on=DECISION, kyc_checked_on=KYC_CHECKED)
    reason = next(f for f in result.factors if f.code == "closure_reason")
    assert isinstance(reason.merchant_text, Promise)
    with translation.override("zh-hans"):
        label = str(DeactivationReason.BUSINESS_CHANGE.label)
        shown = str(reason.merchant_text)
    assert label != "business change"
    assert label in shown


# ---------------------------------------------------------------------------------------------
# Storing a decision and explaining it again


def test_a_stored_decision_is_rebuilt_with_its_policy(veteran):
    result = assess(veteran.merchant_a, on=DECISION, kyc_checked_on=KYC_CHECKED)
    stored = json.loads(json.dumps(result.as_json()))
    assert stored["policy"] == {"version": 1, "sha256": V1.digest}
    assert (stored["outcome"], stored["score"]) == ("approve", 100)
    rebuilt = Assessment.from_json(stored)
    assert rebuilt == result
    assert texts(rebuilt, "staff_text") == texts(result, "staff_text")

    tampered = {**stored, "score": 90}
    with pytest.raises(ValueError, match="does not follow from its facts"):
        Assessment.from_json(tampered)
    edited = parse_policy({**SHIPPED, "waiting_days": 30}, origin="eligibility-1.json")
    with pytest.raises(PolicyError, match="the decision was made with rules"):
        Assessment.from_json(stored, policy=edited)


# ---------------------------------------------------------------------------------------------
# Policies


def test_every_shipped_policy_file_validates():
    files = sorted(entry.name for entry in POLICY_DIR.iterdir() if entry.name.endswith(".json"))
    policies = load_policies(POLICY_DIR)
    assert policies == shipped_policies()
    assert files == [f"eligibility-{p.version}.json" for p in policies]
    assert [p.version for p in policies] == list(range(1, len(policies) + 1))
    for policy in policies:
        assert [code for code, _rule in policy.rules] == list(FACTORS)
        assert sum(rule.weight for _code, rule in policy.rules) == 100
        assert 0 <= policy.review_at <= policy.approve_at <= 100
    assert (V1.waiting_days, V1.lookback_months, V1.approve_at, V1.review_at) == (90, 12, 70, 45)


def write_policy(directory: Path, data: dict, name: str | None = None) -> Path:
    path = directory / (name or f"eligibility-{data['version']}.json")
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def changed(**changes) -> dict:
    """The shipped policy with ``changes`` (keys as dotted paths; None deletes)."""
    data = json.loads(json.dumps(SHIPPED))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (changed(factors__volume__weight=15), "factors: the weights add up to 95; they must add up to 100"),
        (changed(factors__disputes=None), "factors.disputes: missing"),
        (
            changed(factors__volume__full_at=None, factors__volume__ful_at=1),
            "factors.volume.ful_at: unknown key",
        ),
        (
            changed(factors__volume__weight=12.5),
            "factors.volume.weight: expected a whole number from 0 to 100",
        ),
        (changed(decision__review_at=80), "decision: review_at (80) is above approve_at (70)"),
        (
            changed(effective_from="2026-13-01"),
            "effective_from: expected a date as YYYY-MM-DD, got '2026-13-01'",
        ),
        (
            changed(factors__months_active__zero_at=24),
            "factors.months_active: zero_at and full_at are both 24",
        ),
        (
            changed(factors__closure_reason__shares__bankrupt=0),
            "factors.closure_reason.shares.bankrupt: unknown key",
        ),
        (
            changed(factors__anomaly_rate__zero_at=20000),
            "factors.anomaly_rate.zero_at: expected a whole number",
        ),
        (changed(lookback_months=1), "policy.lookback_months: expected a whole number from 3 to 36, got 1"),
        (changed(version=2), "version: the file holds version 2"),
    ],
)
def test_a_bad_policy_file_is_refused_with_a_clear_message(tmp_path, data, problem):
    path = write_policy(tmp_path, data, name="eligibility-1.json")
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert str(refused.value).startswith("eligibility-1.json: ")
    assert problem in str(refused.value)


def test_files_that_are_not_policies_are_refused(tmp_path):
    (tmp_path / "eligibility-1.json").write_text('{"version": 1,', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"eligibility-1.json: not JSON: .* line 1"):
        load_policy(tmp_path / "eligibility-1.json")
    odd = write_policy(tmp_path, SHIPPED, name="eligibility-one.json")
    with pytest.raises(PolicyError, match=r"a policy file is named eligibility-<version>\.json"):
        load_policy(odd)
    with pytest.raises(PolicyError, match="the file: expected a JSON object"):
        parse_policy([1, 2])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PolicyError, match=r"no eligibility-<version>\.json file"):
        load_policies(empty)


@pytest.fixture
def two_versions(tmp_path):
    write_policy(tmp_path, SHIPPED)
    write_policy(tmp_path, {**SHIPPED, "version": 2, "effective_from": "2026-07-01", "waiting_days": 60})
    return load_policies(tmp_path)


def test_the_policy_in_force_is_the_latest_that_has_started(two_versions):
    assert [p.version for p in two_versions] == [1, 2]
    assert policy_in_force(date(2026, 6, 30), policies=two_versions).version == 1
    assert policy_in_force(date(2026, 7, 1), policies=two_versions).version == 2
    with pytest.raises(PolicyError, match=r"none in force on 2025-12-31 \(the first starts on 2026-01-01\)"):
        policy_in_force(date(2025, 12, 31), policies=two_versions)


def test_a_later_version_must_start_later(tmp_path):
    write_policy(tmp_path, SHIPPED)
    write_policy(tmp_path, {**SHIPPED, "version": 2, "effective_from": "2026-01-01"})
    with pytest.raises(
        PolicyError, match=r"eligibility-2\.json: effective_from 2026-01-01 is not after version 1's"
    ):
        load_policies(tmp_path)


def test_settings_may_pin_a_version(two_versions, settings):
    settings.POSFLEET_ELIGIBILITY_POLICY = 1
    assert policy_in_force(date(2026, 8, 1), policies=two_versions).version == 1
    settings.POSFLEET_ELIGIBILITY_POLICY = "2"
    assert policy_in_force(date(2026, 1, 15), policies=two_versions).version == 2
    settings.POSFLEET_ELIGIBILITY_POLICY = 9
    with pytest.raises(PolicyError, match=r"eligibility policy 9: no such version \(have: 1, 2\)"):
        policy_in_force(date(2026, 8, 1), policies=two_versions)
    settings.POSFLEET_ELIGIBILITY_POLICY = "latest"
    with pytest.raises(PolicyError, match="expected a version number, got 'latest'"):
        policy_in_force(date(2026, 8, 1), policies=two_versions)


def test_assess_uses_the_pinned_version(veteran, settings):
    settings.POSFLEET_ELIGIBILITY_POLICY = 1
    assert assess(veteran.merchant_a, on=DECISION).policy_version == 1
    settings.POSFLEET_ELIGIBILITY_POLICY = 2
    with pytest.raises(PolicyError, match="no such version"):
        assess(veteran.merchant_a, on=DECISION)


# ---------------------------------------------------------------------------------------------
# Properties of the score, for any facts and any valid policy


@st.composite
def policies(draw) -> dict:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=5, max_size=5)))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]

    def scale(weight: int, top: int) -> dict:
        zero, full = draw(st.lists(st.integers(0, top), min_size=2, max_size=2, unique=True))
        return {
            "weight": weight,
            "zero_at": zero,
            "full_at": full,
            "unknown_permille": draw(st.integers(0, 1000)),
        }

    approve = draw(st.integers(1, 100))
    reasons = st.dictionaries(st.sampled_from(DeactivationReason.values), st.integers(0, 1000))
    return {
        "version": 1,
        "effective_from": "2026-01-01",
        "waiting_days": draw(st.integers(0, 400)),
        "lookback_months": draw(st.integers(3, 36)),
        "decision": {"approve_at": approve, "review_at": draw(st.integers(0, approve))},
        "factors": {
            "months_active": scale(weights[0], 600),
            "volume": scale(weights[1], 10**12),
            "anomaly_rate": scale(weights[2], 10_000),
            "disputes": scale(weights[3], 1000),
            "closure_reason": {"weight": weights[4], "shares": draw(reasons)},
            "kyc_freshness": scale(weights[5], 5000),
        },
    }


counts = st.integers(0, 10**6)


@st.composite
def histories(draw) -> dict:
    transactions = draw(counts)
    declined = draw(st.integers(0, transactions))
    return {
        "merchant_mid": "100000000000001",
        "closed_at": datetime(2026, 5, 10, 15, 0, tzinfo=SH),
        "closure_reason": draw(st.sampled_from(["", *DeactivationReason.values])),
        "terminals": draw(st.integers(1, 50)),
        "active_days": draw(st.integers(0, 20_000)),
        "volume_fen": draw(st.integers(0, 10**13)),
        "sales": draw(counts),
        "transactions": transactions,
        "declined": declined,
        "reversals": draw(st.integers(0, transactions - declined)),
        "refunds": draw(counts),
        "refunds_fen": draw(st.integers(0, 10**12)),
        "fees_owed_fen": draw(st.sampled_from([0, 0, 1, 9900])),
        "penalties_owed_fen": draw(st.sampled_from([0, 0, 500])),
        "kyc_checked_on": draw(st.none() | st.dates(date(2015, 1, 1), date(2027, 1, 1))),
    }


@hypothesis_settings(max_examples=200, deadline=None)
@given(policies(), histories(), st.dates(date(2026, 1, 1), date(2028, 12, 31)))
def test_contributions_never_exceed_their_weight_and_the_score_stays_in_0_to_100(raw, history, on):
    policy = parse_policy(raw)
    result = decide(Facts(**history, lookback_months=policy.lookback_months), policy, on=on)
    for factor in result.factors:
        assert 0 <= factor.contribution <= factor.weight
        assert 0 <= factor.share_permille <= 1000
    assert sum(f.contribution for f in result.factors) == result.score
    assert 0 <= result.score <= 100
    waiting_over = on >= result.facts.closed_on + timedelta(days=policy.waiting_days)
    if not waiting_over:
        assert result.outcome == Outcome.TOO_EARLY
    elif result.facts.debt_fen:
        assert result.outcome == Outcome.BLOCKED
    else:
        expected = (
            Outcome.APPROVE
            if result.score >= policy.approve_at
            else Outcome.MANUAL_REVIEW
            if result.score >= policy.review_at
            else Outcome.REJECT
        )
        assert result.outcome == expected
    with translation.override("en"):  # every text renders, whatever the numbers
        assert all(str(f.staff_text) and str(f.merchant_text) for f in result.factors)
        assert str(result.staff_text)
        assert str(result.merchant_text)
    assert Assessment.from_json(json.loads(json.dumps(result.as_json())), policy=policy) == result
