"""Transactions (交易): ingest from the API or a CSV file, priced at ingest, booked once.

``transactions_ingest(actor=..., items=[TxnIn(...), ...]) -> [TxnResult, ...]``; see ``ingest``.
"""

from posfleet.billing.services.transactions.ingest import transactions_ingest
from posfleet.billing.services.transactions.items import MAX_BATCH, TxnIn, TxnResult
from posfleet.billing.services.transactions.rows import returned_fee

__all__ = ["MAX_BATCH", "TxnIn", "TxnResult", "returned_fee", "transactions_ingest"]
