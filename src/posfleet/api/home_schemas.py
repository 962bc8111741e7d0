"""Schemas of GET /me/home: the merchant's home, the read model the console's home renders
(``reports.merchant_home``)."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema

from posfleet.api.notification_schemas import InboxItemOut


class HomeMerchantOut(Schema):
    mid: str
    name: str


class HomeStatusCountOut(Schema):
    status: str
    status_label: str
    words: str = Field(description="The state in a shopkeeper's words, in the caller's language.")
    count: int


class HomeTerminalOut(Schema):
    sn: str
    status: str
    status_label: str
    words: str = Field(description="Whether it takes payments, in plain words.")
    store: str
    service_expires_on: date | None
    days_left: int | None = Field(description="Days until the service expires (negative: expired).")
    expiring_soon: bool
    last_transaction_at: datetime | None
    last_amount_fen: int | None
    last_amount_display: str | None
    last_note: str = Field(description="What the last transaction was when not an approved sale.")


class HomeNextPayoutOut(Schema):
    business_date: date = Field(description="The takings of this day and before, not paid yet.")
    paid_on: date
    first_day: date | None
    txn_count: int
    gross_fen: int
    refunds_fen: int
    fees_fen: int
    deducted_fen: int = Field(description="Fees owed, kept back from this payout.")
    net_fen: int
    payout_fen: int
    payout_display: str
    still_selling: bool = Field(description="The business date is today: its sales still add up.")


class HomeFeeDueOut(Schema):
    due_on: date
    amount_fen: int
    amount_display: str
    sn: str


class HomeMoneyOut(Schema):
    next_payout: HomeNextPayoutOut
    last_paid_on: date | None
    last_paid_fen: int | None
    owed_fen: int = Field(description="Service fees charged, not yet kept back from a payout.")
    penalties_fen: int
    owed_total_fen: int
    owed_total_display: str
    deposit_fen: int
    deposit_display: str
    fees_due: list[HomeFeeDueOut] = Field(description="The next service fees to come.")


class HomeOpenItemOut(Schema):
    number: str
    title: str
    state: str
    next_step: str = Field(description="What happens next, and by when.")
    late: bool


class MerchantHomeOut(Schema):
    merchant: HomeMerchantOut | None
    terminal_total: int
    in_use: int = Field(description="Terminals with the merchant: in service or stopped.")
    taking_payments: int
    by_status: list[HomeStatusCountOut]
    terminals: list[HomeTerminalOut] = Field(description="The first few, those with the merchant first.")
    more_terminals: int
    money: HomeMoneyOut | None
    applications: list[HomeOpenItemOut]
    closures: list[HomeOpenItemOut]
    complaints: list[HomeOpenItemOut]
    unread_notices: int
    notices: list[InboxItemOut] = Field(description="The newest unread notices.")
