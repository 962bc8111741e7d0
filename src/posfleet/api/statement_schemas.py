"""Bodies of a merchant's statements (对账单) and of the plan cost comparison ("should I switch?").
Conventions as in ``money_schemas``: integer fen in ``*_fen`` fields, ``*_display`` beside headlines."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Schema
from pydantic import Field

from posfleet.api.money_flow_schemas import MethodLineOut

MONTH_PATTERN = r"^[0-9]{4}-[0-9]{2}$"


class StatementMonthOut(Schema):
    month: str = Field(examples=["2026-11"])
    label: str = Field(examples=["November 2026"])
    partial: bool = Field(description="The month is not over: its figures will still change.")
    sales_count: int
    sales_fen: int
    refunds_fen: int
    fees_fen: int
    net_fen: int = Field(description="Sales − refunds − fees.")
    net_display: str


class StatementMonthList(Schema):
    merchant: str
    items: list[StatementMonthOut] = Field(description="Newest first; at most 36 months.")


class MerchantHeadingOut(Schema):
    mid: str
    name: str
    legal_name: str


class SettlementLineOut(Schema):
    id: int | None = Field(
        description="The batch (its deductions: /settlements/{id}); null on the totals line."
    )
    business_date: date | None
    paid_on: date | None
    txn_count: int
    gross_fen: int
    refunds_fen: int = Field(
        description="Refunds and reversals the batch paid. On the totals line, summed over the month's "
        "batches, which may pay days of another month: the month's refund total is `totals.refunds_fen`."
    )
    fees_fen: int
    service_fees_fen: int = Field(description="Deducted from the payout for what the merchant owed.")
    payout_fen: int


class DepositLineOut(Schema):
    id: int
    contract: int
    terminal: str
    amount_fen: int
    collected_on: date
    status: str = Field(description="At the end of the month.")
    status_label: str
    refunded_fen: int = Field(description="Refunded in this month.")
    forfeited_fen: int = Field(description="Forfeited in this month.")
    released_on: date | None


class FeeDueLineOut(Schema):
    due_on: date
    contract: int
    terminal: str
    period: int
    amount_fen: int
    charged: bool


class MovementOut(Schema):
    kind: str = Field(
        description="`sales`, `refunds` (refunds and reversals), `fees` (net of those handed back): the "
        "month's figures, as in `totals`; `paid_out`, `deducted`: the month's settlements; "
        "`other_month`: what the ledger booked for transactions of another month than their date; "
        "`other`: any other movement (corrections). Opening + movements = closing."
    )
    label: str
    amount_fen: int = Field(description="Positive: the merchant is owed more.")


class StatementOut(Schema):
    merchant: MerchantHeadingOut
    month: str
    label: str
    generated_at: datetime
    partial: bool
    methods: list[MethodLineOut] = Field(description="Transactions of the month by payment method.")
    totals: MethodLineOut
    settlements: list[SettlementLineOut]
    settlement_totals: SettlementLineOut
    deposits: list[DepositLineOut]
    deposit_held_fen: int = Field(description="At the end of the month.")
    deposit_refunded_fen: int
    deposit_forfeited_fen: int
    fees_due: list[FeeDueLineOut] = Field(description="Service fees falling due in the month.")
    service_fees_due_fen: int
    service_fees_charged_fen: int
    service_fees_deducted_fen: int = Field(description="Taken from the month's settlements.")
    service_fees_outstanding_fen: int = Field(description="Owed at the end of the month.")
    opening_payable_fen: int = Field(description="Settlement payable at the start of the month.")
    opening_payable_display: str
    closing_payable_fen: int
    closing_payable_display: str
    payable_movements: list[MovementOut]


# ---------------------------------------------------------------------------------------------
# The comparison


class ComparisonQuery(Schema):
    start: str | None = Field(
        None, alias="from", pattern=MONTH_PATTERN, description="First month (YYYY-MM); default: 6 months ago."
    )
    end: str | None = Field(
        None, alias="to", pattern=MONTH_PATTERN, description="Last month (YYYY-MM); default: last month."
    )
    plans: str = Field(
        "",
        max_length=500,
        description="Plan codes, comma-separated; default: every plan. Yours is always in.",
    )


class CostLineOut(Schema):
    code: str = Field(
        description="fees, service (every month); penalty, new_deposit (once, when switching); "
        "deposit_held, contracts_kept (explain only: not counted)."
    )
    amount_fen: int
    counted: bool = Field(
        description="Part of the total (false: it explains, e.g. how the deposit is set off)."
    )
    text: str = Field(description="The line in the caller's language: which clause, how many months.")
    params: dict[str, str | int | None] = Field(
        description="What the words are made of (contract, months left…)."
    )


class PlanCostOut(Schema):
    code: str
    name: str
    provider_name: str
    is_competitor: bool
    is_current: bool = Field(description="The plan the merchant is on today.")
    monthly_fen: list[int] = Field(
        description="Per month: transaction fees plus the service and SIM fees' share (a twelfth a year)."
    )
    fees_fen: list[int] = Field(description="Per month: the transaction fees on the merchant's real sales.")
    service_fen: list[int] = Field(description="Per month: the service and SIM fees' share.")
    fees_total_fen: int
    service_total_fen: int
    once_total_fen: int = Field(description="Once, when switching: penalties and the new plan's deposit.")
    total_fen: int = Field(description="Over the period, everything included: the sum of the counted lines.")
    total_display: str
    average_fen: int | None = Field(
        description="Per month, over the months with sales only (none: no month had sales)."
    )
    saving_fen: int | None = Field(description="Against the current plan, in total: positive is cheaper.")
    saving_display: str | None
    complete: bool = Field(description="It could price every transaction (never recommended otherwise).")
    unpriced_fen: dict[str, int] = Field(description="Sales it could not price, by payment method.")
    lines: list[CostLineOut]


class ComparisonOut(Schema):
    merchant: str
    months: list[str]
    sales_count: list[int]
    sales_fen: list[int]
    refunds_fen: list[int]
    actual_fees_fen: list[int] = Field(description="The fees actually charged, month by month.")
    sales_total_fen: int
    actual_total_fen: int
    actual_total_display: str
    mix_fen: dict[str, int] = Field(description="The period's sales by payment method.")
    d0: bool = Field(description="The merchant settles same-day (D0 surcharge applied to every plan).")
    current: str | None = Field(description="Code of the merchant's plan today.")
    with_sales: list[bool] = Field(description="Per month: whether it had sales (the average's months).")
    terminals: int = Field(description="The merchant's terminals: what per-terminal fees and deposits count.")
    best: str | None = Field(description="The cheapest complete plan that would have saved money in total.")
    best_ours: str | None = Field(
        description="The same among our plans: the one to ask for (plan change request)."
    )
    cheapest: str | None
    verdict: str = Field(description="Which plan is cheaper over the period, by how much and why.")
    plans: list[PlanCostOut]
