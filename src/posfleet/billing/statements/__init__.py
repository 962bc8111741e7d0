"""Statements (对账单): the monthly merchant statement and the settlement batch detail, on screen and
as PDF from the same template."""

from posfleet.billing.statements.batch import BatchDetail, batch_detail
from posfleet.billing.statements.monthly import MonthlyStatement, monthly_statement, statement_months
from posfleet.billing.statements.periods import Month, months_between
from posfleet.billing.statements.render import (
    BATCH_BODY,
    BATCH_DOCUMENT,
    MONTHLY_BODY,
    MONTHLY_DOCUMENT,
    PDF_CONTENT_TYPE,
    render_document,
    render_pdf,
)
from posfleet.billing.statements.settlements import Deduction, SettlementRow, settlement_rows

__all__ = [
    "BATCH_BODY",
    "BATCH_DOCUMENT",
    "MONTHLY_BODY",
    "MONTHLY_DOCUMENT",
    "PDF_CONTENT_TYPE",
    "BatchDetail",
    "Deduction",
    "Month",
    "MonthlyStatement",
    "SettlementRow",
    "batch_detail",
    "monthly_statement",
    "months_between",
    "render_document",
    "render_pdf",
    "settlement_rows",
    "statement_months",
]
