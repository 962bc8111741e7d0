"""Money: rate plans, service contracts, the double-entry ledger, deposits, transactions, settlement."""

from posfleet.billing.models.contracts import PenaltyRule, ServiceContract, ServiceFeeDue
from posfleet.billing.models.deposits import Deposit
from posfleet.billing.models.ledger import Account, AccountKind, Entry, Journal, JournalKind
from posfleet.billing.models.plan_changes import PlanChangeRequest
from posfleet.billing.models.plans import PaymentMethod, PlanAssignment, RatePlan, RatePlanVersion, RateRule
from posfleet.billing.models.settlement import DailyTotal, SettlementBatch, SettlementRun
from posfleet.billing.models.transactions import (
    EntryMode,
    SalesMonth,
    Transaction,
    TransactionKind,
    TransactionStatus,
)

__all__ = [
    "Account",
    "AccountKind",
    "DailyTotal",
    "Deposit",
    "Entry",
    "EntryMode",
    "Journal",
    "JournalKind",
    "PaymentMethod",
    "PenaltyRule",
    "PlanAssignment",
    "PlanChangeRequest",
    "RatePlan",
    "RatePlanVersion",
    "RateRule",
    "SalesMonth",
    "ServiceContract",
    "ServiceFeeDue",
    "SettlementBatch",
    "SettlementRun",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
]
