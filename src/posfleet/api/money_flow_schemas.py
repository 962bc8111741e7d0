"""Bodies of the endpoints money flows through: transactions (search and ingest), settlement batches and
runs, monthly statements and the plan cost comparison. Conventions as in ``money_schemas``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from ninja import Schema
from pydantic import Field, field_validator

from posfleet.api.money_schemas import MAX_FEN, Day, MerchantQuery
from posfleet.api.schemas import QueryDate, in_order
from posfleet.billing.models import PaymentMethod, TransactionKind, TransactionStatus

MAX_ITEMS = 10_000
Text = Annotated[str, Field(max_length=64)]

# ---------------------------------------------------------------------------------------------
# Transactions


class TransactionQuery(MerchantQuery):
    terminal: str = Field("", max_length=32, description="Terminal serial number (SN).")
    tid: str = Field("", max_length=8, description="Terminal ID (TID).")
    date_from: QueryDate | None = Field(None, description="Transaction date, inclusive.")
    date_to: QueryDate | None = None
    method: list[PaymentMethod] = Field(default_factory=list)
    kind: list[TransactionKind] = Field(default_factory=list)
    status: list[TransactionStatus] = Field(default_factory=list)

    range_in_order = in_order("date_from", "date_to")


class TransactionOut(Schema):
    id: int
    merchant: str
    terminal: str
    tid: str
    batch_no: str
    trace_no: str
    txn_date: date
    occurred_at: datetime
    kind: TransactionKind
    kind_label: str
    status: TransactionStatus
    status_label: str
    method: PaymentMethod
    method_label: str
    entry_mode: str
    amount_fen: int
    amount_display: str
    fee_fen: int = Field(description="Charged on a sale; handed back with a refund or reversal.")
    fee_display: str
    card_masked: str
    response_code: str
    external_id: str | None
    original: int | None = Field(description="Id of the sale a refund or reversal belongs to.")
    settlement: int | None = Field(description="Id of the settlement batch that paid it out.")
    plan: str | None = Field(description="Code of the rate plan that priced it.")
    plan_version: int | None
    ingested_at: datetime


class TransactionPage(Schema):
    items: list[TransactionOut]
    next_cursor: str | None


class TransactionKeyIn(Schema):
    """The acquirer's natural key of a transaction."""

    tid: Text
    batch_no: Text
    trace_no: Text
    txn_date: Day


class TransactionIn(Schema):
    """One transaction as the acquirer or terminal reports it. Values are checked item by item: an item
    that is wrong gets its own `code` in the results and the others go through."""

    tid: Text = Field(description="8 digits or capital letters.")
    batch_no: Text = Field(description="1 to 6 digits.")
    trace_no: Text = Field(description="1 to 6 digits.")
    txn_date: Day
    occurred_at: datetime = Field(description="With a time zone.")
    method: Text = Field(description="credit, debit, qr, nfc or foreign.")
    entry_mode: Text = Field(description="swipe, insert, tap, scan or keyed.")
    amount_fen: int = Field(ge=-MAX_FEN, le=MAX_FEN, strict=True, description="Positive, in fen.")
    kind: Text = Field("sale", description="sale, refund or reversal.")
    status: Text = Field("approved", description="approved or declined.")
    card_masked: Text = Field("", description="First 6 and last 4 digits only, e.g. 622848******1234.")
    response_code: Text = "00"
    external_id: Text | None = None
    original: TransactionKeyIn | None = Field(None, description="The sale a refund or reversal belongs to.")
    original_external_id: Text | None = None

    @field_validator("occurred_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if not 2000 <= value.year <= 2099:
            raise ValueError("a time between the years 2000 and 2099")
        return value


class IngestIn(Schema):
    items: list[TransactionIn] = Field(min_length=1, max_length=MAX_ITEMS)


class IngestItemOut(Schema):
    index: int = Field(description="Position of the item in the request, from 0.")
    ok: bool
    transaction_id: int | None
    fee_fen: int | None
    code: str | None = Field(description="The refusal's stable code when not ok.")
    detail: str | None
    replayed: bool = Field(description="Stored before with the same content: nothing changed.")


class IngestOut(Schema):
    results: list[IngestItemOut]
    succeeded: int
    failed: int
    replayed: int


# ---------------------------------------------------------------------------------------------
# Settlement


class SettlementQuery(MerchantQuery):
    date_from: QueryDate | None = Field(
        None, description="Business date (the day of the takings), inclusive."
    )
    date_to: QueryDate | None = None

    range_in_order = in_order("date_from", "date_to")


class DeductionOut(Schema):
    kind: str = Field(
        description="The charge's journal kind: `service_fee` (per terminal and contract year), another "
        "kind posted to the merchant's fees receivable, or `other` (not explained by any charge)."
    )
    label: str = Field(examples=["Service fee of SN-00001, year 2"])
    terminal: str | None = Field(description="Serial number (SN) of the terminal a service fee is for.")
    period: int | None = Field(description="The contract year of a service fee.")
    charged_on: date | None = Field(description="Business date of the charge (a service fee's due date).")
    charge: str = Field(description="Reference of the charge's ledger journal.")
    amount_fen: int = Field(description="What this settlement kept back of the charge.")
    amount_display: str


class SettlementOut(Schema):
    id: int
    merchant: str
    business_date: date = Field(description="The day of the takings.")
    paid_on: date
    run: int
    txn_count: int
    gross_fen: int = Field(description="Sales.")
    refunds_fen: int = Field(description="Refunds and reversals.")
    fees_fen: int = Field(description="Fees on the sales, less those handed back with refunds.")
    service_fees_fen: int = Field(
        description="Kept back for what the merchant owed: the sum of `deductions`."
    )
    deductions: list[DeductionOut] = Field(
        description="What was kept back, charge by charge (oldest first): service fees per terminal, "
        "any other amount owed."
    )
    payout_fen: int = Field(description="gross − refunds − fees − service fees (the deductions).")
    payout_display: str
    journal: str | None = Field(description="Reference of its ledger journal.")
    created_at: datetime


class SettlementPage(Schema):
    items: list[SettlementOut]
    next_cursor: str | None


class MethodLineOut(Schema):
    method: str = Field(description="A payment method, or `total`.")
    label: str
    sales_count: int
    sales_fen: int
    refunds_count: int
    refunds_fen: int
    fees_fen: int = Field(description="Of the sales, less those handed back with refunds.")
    net_fen: int
    declined_count: int


class SettlementDetailOut(SettlementOut):
    methods: list[MethodLineOut]
    totals: MethodLineOut
    adds_up: bool = Field(
        description="The batch's figures equal those of its transactions, and its payout is gross − refunds "
        "− fees − deductions."
    )
    transactions: list[TransactionOut] = Field(description="A page of them, in id order.")
    next_cursor: str | None


class SettlementRunIn(Schema):
    business_date: Day = Field(description="The day to settle: yesterday or earlier (T+1).")


class SettlementRunOut(Schema):
    id: int
    business_date: date
    status: str
    status_label: str
    started_at: datetime
    finished_at: datetime | None
    merchants_total: int
    merchants_done: int
    attempts: int
    batches: int
    payout_fen: int = Field(description="Paid out by this run, all merchants.")
    payout_display: str


class SettlementRunPage(Schema):
    items: list[SettlementRunOut]
    next_cursor: str | None
