"""Request and response bodies of the money endpoints: rate plans, contracts, deposits, the ledger.

Amounts are integer fen in fields named ``*_fen`` (debit +, credit − where a sign means something),
with ``*_display`` beside the ones people read (``¥1,234.56``). Rates are decimal strings
(``"0.006000"`` is 0.60 %), never binary floats. Status fields are read-only (STYLE.md §1).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, model_validator

from posfleet.api.schemas import QueryDate, in_order
from posfleet.billing.models import AccountKind, JournalKind, PaymentMethod, PenaltyRule
from posfleet.billing.models.plans import SettlementCycle

# Bounds that keep input inside what the database and date arithmetic can hold.
MAX_FEN = 10**13  # ¥100,000,000,000.00
Fen = Annotated[int, Field(ge=0, le=MAX_FEN, strict=True)]  # "99.00" is refused, never read as 99 fen
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
Rate = Annotated[
    str,
    Field(
        pattern=r"^0(\.[0-9]{1,6})?$",
        examples=["0.006000"],
        description="A decimal fraction with up to 6 places: 0.0060 is 0.60 %.",
    ),
]
Mid = Annotated[str, Field(min_length=1, max_length=15, description="Merchant ID (MID).")]
Sn = Annotated[str, Field(min_length=1, max_length=32, description="Terminal serial number (SN).")]


class MerchantQuery(Schema):
    merchant: str = Field("", max_length=15, description="Merchant ID (MID).")


# ---------------------------------------------------------------------------------------------
# Rate plans


class RateRuleIn(Schema):
    method: PaymentMethod
    rate: Rate
    cap_fen: Fen | None = Field(None, description="Most a transaction pays, in fen.")
    min_fen: Fen | None = Field(None, description="Least a transaction pays, in fen.")


def _unique_methods(rules: list[RateRuleIn]) -> None:
    methods = [r.method for r in rules]
    if len(set(methods)) != len(methods):
        raise ValueError("each payment method appears once")


class RulesIn(Schema):
    rules: list[RateRuleIn] = Field(min_length=1, max_length=len(PaymentMethod))
    settlement_cycle: SettlementCycle = SettlementCycle.T1
    d0_surcharge_rate: Rate = Field("0", description="Added to every rate for same-day (D0) settlement.")

    @model_validator(mode="after")
    def _check(self) -> RulesIn:
        _unique_methods(self.rules)
        return self


class RatePlanIn(RulesIn):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[-a-z0-9_]+$")
    name: str = Field(min_length=1, max_length=120)
    is_competitor: bool = Field(False, description="A competitor's plan, entered for the comparison only.")
    provider_name: str = Field("", max_length=120, description="Who offers it (competitor plans).")
    annual_fee_fen: Fen = Field(
        0, description="Service/SIM fee per terminal and year (the comparison adds it)."
    )
    deposit_fen: Fen = Field(0, description="Deposit per terminal, paid when moving to the plan.")
    effective_from: Day


class RatePlanVersionIn(RulesIn):
    effective_from: Day = Field(description="Today or later; history is never rewritten.")
    note: str = Field("", max_length=255)


class PlanAssignmentIn(Schema):
    merchant: Mid
    terminal: Sn | None = Field(None, description="Only this terminal of the merchant (it then wins).")
    effective_from: Day = Field(description="Today or later.")
    d0_settlement: bool = False


class RateRuleOut(Schema):
    method: PaymentMethod
    method_label: str
    rate: str
    rate_percent: str = Field(examples=["0.60%"])
    cap_fen: int | None
    min_fen: int | None


class RatePlanVersionOut(Schema):
    number: int
    effective_from: date
    in_force: bool = Field(description="The version that applies today.")
    settlement_cycle: SettlementCycle
    d0_surcharge_rate: str
    note: str
    rules: list[RateRuleOut]


class RatePlanOut(Schema):
    code: str
    name: str
    is_competitor: bool
    provider_name: str
    annual_fee_fen: int = Field(description="Service/SIM fee per terminal and year.")
    deposit_fen: int = Field(description="Deposit per terminal, paid when moving to the plan.")
    created_at: datetime
    versions: list[RatePlanVersionOut] = Field(description="Newest first.")


class RatePlanPage(Schema):
    items: list[RatePlanOut]
    next_cursor: str | None


class PlanAssignmentOut(Schema):
    id: int
    plan: str
    merchant: str
    terminal: str | None
    effective_from: date
    d0_settlement: bool
    created_at: datetime


class PlanAssignmentPage(Schema):
    items: list[PlanAssignmentOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------------------------
# Contracts and deposits


class DamagePrices(Schema):
    """What damage costs by inspection grade, in fen (grades without a price are left out)."""

    model_config = ConfigDict(extra="forbid")

    A: Fen | None = None
    B: Fen | None = None
    C: Fen | None = None


class ContractIn(Schema):
    terminal: Sn = Field(description="A terminal bound to the merchant who will sign.")
    plan: str = Field("standard", min_length=1, max_length=40, description="Rate plan code.")
    starts_on: Day
    term_months: int = Field(12, ge=12, le=60, description="12, 24, 36, 48 or 60.")
    annual_fee_fen: Fen = 0
    deposit_fen: Fen = 0
    min_term_months: int = Field(0, ge=0, le=60)
    penalty_rule: PenaltyRule = PenaltyRule.NONE
    penalty_fixed_fen: Fen = 0
    penalty_monthly_fen: Fen = 0
    penalty_cap_fen: Fen | None = None
    recovery_fee_fen: Fen = 0
    recovery_value_fen: Fen = Field(
        0, description="Credited to the merchant at closure when the device comes back as new (grade A)."
    )
    damage_prices: DamagePrices = Field(default_factory=DamagePrices)


class ContractQuery(MerchantQuery):
    terminal: str = Field("", max_length=32, description="Terminal serial number (SN).")
    status: list[Literal["offered", "active", "ended"]] = Field(default_factory=list)


class FeeDueOut(Schema):
    period: int = Field(description="Year of the contract, from 1.")
    due_on: date
    amount_fen: int
    amount_display: str
    charged: bool = Field(description="Charged to the merchant's fees receivable.")


class DepositOut(Schema):
    id: int
    contract: int
    merchant: str
    terminal: str
    amount_fen: int
    amount_display: str
    status: Literal["held", "refunded", "forfeited"]
    status_label: str
    collected_at: datetime
    refunded_fen: int
    forfeited_fen: int
    released_at: datetime | None
    release_journal: str | None = Field(description="Reference of the release journal.")


class DepositPage(Schema):
    items: list[DepositOut]
    next_cursor: str | None


class DepositQuery(MerchantQuery):
    status: list[Literal["held", "refunded", "forfeited"]] = Field(default_factory=list)


class DepositRefundIn(Schema):
    refund_fen: Fen = Field(description="What goes back to the merchant; the rest is forfeited.")
    reason: str = Field(min_length=1, max_length=48, examples=["contract_closed"])
    note: str = Field("", max_length=2000)


class ContractOut(Schema):
    id: int
    status: Literal["offered", "active", "ended"]
    status_label: str
    merchant: str
    terminal: str
    plan: str
    starts_on: date
    ends_on: date = Field(description="The end of the term.")
    term_months: int
    annual_fee_fen: int
    annual_fee_display: str
    deposit_fen: int
    deposit_display: str
    min_term_months: int
    penalty_rule: PenaltyRule
    penalty_rule_label: str
    penalty_fixed_fen: int
    penalty_monthly_fen: int
    penalty_cap_fen: int | None
    recovery_fee_fen: int
    recovery_value_fen: int = Field(
        description="Credited to the merchant at closure when the device comes back as new (grade A)."
    )
    damage_prices: dict[str, int]
    accepted_at: datetime | None
    ended_on: date | None
    created_at: datetime


class ContractDetailOut(ContractOut):
    fees_due: list[FeeDueOut]
    fees_outstanding_fen: int = Field(description="Scheduled fees not charged yet.")
    deposit: DepositOut | None
    penalty_if_ended_today_fen: int | None = Field(
        description="The early-termination penalty if the contract ended today (active contracts)."
    )
    penalty_if_ended_today_display: str | None


class ContractPage(Schema):
    items: list[ContractOut]
    next_cursor: str | None


# ---------------------------------------------------------------------------------------------
# The ledger


class AccountOut(Schema):
    kind: AccountKind
    kind_label: str
    balance_fen: int = Field(description="As people read it: what an asset holds or a liability owes.")
    balance_display: str
    posted: bool = Field(description="False when nothing was ever posted to it (balance 0).")


class AccountList(Schema):
    owner: str = Field(description="The merchant's MID, or `provider`.")
    items: list[AccountOut]


class LedgerQuery(MerchantQuery):
    kind: list[JournalKind] = Field(default_factory=list)
    date_from: QueryDate | None = Field(None, description="Business date, inclusive.")
    date_to: QueryDate | None = None

    range_in_order = in_order("date_from", "date_to")


class EntryOut(Schema):
    account: AccountKind
    owner: str = Field(description="MID, agent code, or `provider`.")
    amount_fen: int = Field(description="Debit +, credit −.")
    amount_display: str


class JournalOut(Schema):
    id: int
    reference: str
    kind: JournalKind
    kind_label: str
    business_date: date
    occurred_at: datetime
    merchant: str | None
    memo: str
    reverses: str | None = Field(description="Reference of the journal this one corrects.")
    entries: list[EntryOut] = Field(description="They sum to zero.")


class JournalPage(Schema):
    items: list[JournalOut]
    next_cursor: str | None


class LedgerReportOut(Schema):
    ok: bool
    journals: int
    entries: int
    accounts: int
    total_fen: int = Field(description="All entries summed: 0 when money is conserved.")
    problems: list[str]
