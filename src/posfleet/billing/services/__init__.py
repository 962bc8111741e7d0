"""The money context's services: the only writers of ledger entries, deposits, transactions and
settlements. Each runs in one transaction with its audit row."""
