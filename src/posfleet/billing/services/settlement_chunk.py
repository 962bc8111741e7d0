"""What one settlement chunk writes, in set-based SQL: per merchant of the chunk whose net is positive,
one journal with its entries, the balances moved, and one batch.

The chunk's sums go into a temporary table (one GROUP BY over the day totals of the run's days, with
the merchants' accounts, what each pays and owes), and every write is one ``INSERT … SELECT`` or
``UPDATE … FROM`` over it: a few statements per chunk, whatever its number of merchants, with no
row built in Python. The same SQL runs on SQLite (3.33 or later: ``UPDATE … FROM``) and PostgreSQL.

What keeps it honest is the same as for every posting: the ledger's database guards (every journal
balanced, with exactly the entries it declares, and every reference checked; migrations 0002, 0005
and 0009), the unique journal reference and batch per merchant and day, the batch's CHECK
constraints (payout = sales − refunds − fees − service fees ≥ 0), and ``posfleet ledger verify``.
The entries add up by construction: the merchant's payable is debited its net, and the net is
credited to the bank (the payout) and to what the merchant owed in fees (deducted first).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import connection

from posfleet.billing.models import AccountKind, JournalKind

CHUNK_TABLE = "billing_settle_chunk"


class SettlementCorrupt(RuntimeError):
    """The data settlement pays breaks an invariant ingest keeps; nothing of the chunk is written."""


_CREATE = f"""
CREATE TEMPORARY TABLE {CHUNK_TABLE} (
    merchant_id BIGINT NOT NULL,
    organisation_id BIGINT NOT NULL,
    mid VARCHAR(15) NOT NULL,
    txn_count BIGINT NOT NULL,
    gross_fen BIGINT NOT NULL,
    refunds_fen BIGINT NOT NULL,
    fees_fen BIGINT NOT NULL,
    net_fen BIGINT NOT NULL,
    payable_id BIGINT,
    receivable_id BIGINT,
    deducted_fen BIGINT NOT NULL DEFAULT 0,
    payout_fen BIGINT NOT NULL DEFAULT 0,
    journal_id BIGINT
)
"""

# The chunk's merchants and their sums (day totals with a settlement day in (after, day], merchant
# ids in (first, last]; ``{window}`` is the lower bound when there is one; summed before the join,
# one row per merchant), their accounts, what is deducted for fees they owe (their fees receivable,
# when positive, up to the net), the payout, and (PostgreSQL) the journal id taken from the sequence.
_SUMS = f"""
INSERT INTO {CHUNK_TABLE} (merchant_id, organisation_id, mid, txn_count, gross_fen, refunds_fen,
                           fees_fen, net_fen, payable_id, receivable_id, deducted_fen, payout_fen,
                           journal_id)
SELECT s.merchant_id, m.organisation_id, m.mid, s.n, s.gross, s.refunds, s.fees, s.net, p.id,
       CASE WHEN s.net > 0 THEN r.id END,
       CASE WHEN s.net <= 0 OR r.id IS NULL THEN 0 WHEN r.balance_fen < s.net THEN r.balance_fen
            ELSE s.net END,
       CASE WHEN s.net <= 0 THEN 0 WHEN r.id IS NULL THEN s.net WHEN r.balance_fen < s.net
            THEN s.net - r.balance_fen ELSE 0 END,
       {{journal_id}}
  FROM (SELECT t.merchant_id, SUM(t.txn_count) AS n, SUM(t.gross_fen) AS gross,
               SUM(t.refunds_fen) AS refunds, SUM(t.fees_fen) AS fees,
               SUM(t.gross_fen) - SUM(t.refunds_fen) - SUM(t.fees_fen) AS net
          FROM billing_dailytotal AS t
         WHERE t.settle_day <= %s {{window}} AND t.merchant_id > %s AND t.merchant_id <= %s
         GROUP BY t.merchant_id) AS s
  JOIN parties_merchant AS m ON m.id = s.merchant_id
  LEFT JOIN billing_account AS p ON p.organisation_id = m.organisation_id AND p.kind = %s
  LEFT JOIN billing_account AS r ON r.organisation_id = m.organisation_id AND r.kind = %s
                                AND r.balance_fen > 0
"""  # noqa: S608
# The sequence is looked up once (an InitPlan), not once per row.
_NEXT_JOURNAL_ID = (
    "CASE WHEN s.net > 0 THEN nextval((SELECT pg_get_serial_sequence('billing_journal', 'id'))::regclass) END"
)

_JOURNALS = f"""
INSERT INTO billing_journal ({{id}}kind, reference, business_date, occurred_at, memo, entry_count,
                             merchant_id)
SELECT {{journal_id}}%s, %s || c.mid, %s, %s, %s || CAST(c.txn_count AS VARCHAR(20)) || %s,
       1 + CASE WHEN c.payout_fen > 0 THEN 1 ELSE 0 END + CASE WHEN c.deducted_fen > 0 THEN 1 ELSE 0 END,
       c.merchant_id
  FROM {CHUNK_TABLE} AS c WHERE c.net_fen > 0 ORDER BY c.merchant_id
"""  # noqa: S608

_JOURNAL_IDS = f"""
UPDATE {CHUNK_TABLE} SET journal_id = (SELECT j.id FROM billing_journal AS j
                                        WHERE j.reference = %s || {CHUNK_TABLE}.mid)
 WHERE net_fen > 0
"""  # noqa: S608

# Debit the payable its net; credit the bank the payout and the fees receivable what is deducted.
_ENTRIES = f"""
INSERT INTO billing_entry (journal_id, account_id, amount_fen)
SELECT c.journal_id, c.payable_id, c.net_fen FROM {CHUNK_TABLE} AS c WHERE c.net_fen > 0
UNION ALL
SELECT c.journal_id, %s, -c.payout_fen FROM {CHUNK_TABLE} AS c WHERE c.net_fen > 0 AND c.payout_fen > 0
UNION ALL
SELECT c.journal_id, c.receivable_id, -c.deducted_fen FROM {CHUNK_TABLE} AS c
 WHERE c.net_fen > 0 AND c.deducted_fen > 0
"""  # noqa: S608

_PAYABLE_BALANCES = f"""
UPDATE billing_account SET balance_fen = billing_account.balance_fen + c.net_fen
  FROM {CHUNK_TABLE} AS c WHERE billing_account.id = c.payable_id AND c.net_fen > 0
"""  # noqa: S608

_RECEIVABLE_BALANCES = f"""
UPDATE billing_account SET balance_fen = billing_account.balance_fen - c.deducted_fen
  FROM {CHUNK_TABLE} AS c WHERE billing_account.id = c.receivable_id AND c.deducted_fen > 0
"""  # noqa: S608

_BANK_BALANCE = f"""
UPDATE billing_account
   SET balance_fen = balance_fen - (SELECT COALESCE(SUM(payout_fen), 0) FROM {CHUNK_TABLE} WHERE net_fen > 0)
 WHERE id = %s
"""  # noqa: S608

_BATCHES = f"""
INSERT INTO billing_settlementbatch (merchant_id, business_date, paid_on, run_id, txn_count, gross_fen,
                                     refunds_fen, fees_fen, service_fees_fen, payout_fen, journal_id,
                                     covers_after, created_at)
SELECT c.merchant_id, %s, %s, %s, c.txn_count, c.gross_fen, c.refunds_fen, c.fees_fen, c.deducted_fen,
       c.payout_fen, c.journal_id, %s, %s
  FROM {CHUNK_TABLE} AS c WHERE c.net_fen > 0 ORDER BY c.merchant_id
"""  # noqa: S608


def pay_chunk(
    *,
    run_id: int,
    day: date,
    after: date | None,
    ids_in: tuple[int, int],
    bank_id: int,
    at: datetime,
) -> tuple[int, list[int]]:
    """Pay the merchants with ids in ``ids_in`` = (first, last] their day totals with a settlement day
    in (``after``, ``day``]: returns how many merchants were paid and the ids of those whose net is not
    positive (they wait). Runs inside the chunk's transaction, under the money lock."""
    first, last = ids_in
    prefix = f"settlement:{day.isoformat()}:"
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(at)
    on, paid_on = ops.adapt_datefield_value(day), ops.adapt_datefield_value(day + timedelta(days=1))
    since = ops.adapt_datefield_value(after) if after is not None else None
    postgres = connection.vendor == "postgresql"
    window = "AND t.settle_day > %s" if since is not None else ""
    chunk = [on, *([since] if since is not None else []), first, last]
    payable_kind, receivable_kind = AccountKind.SETTLEMENT_PAYABLE, AccountKind.FEES_RECEIVABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHUNK_TABLE}")
        cursor.execute(_CREATE)
        try:
            cursor.execute(
                _SUMS.format(window=window, journal_id=_NEXT_JOURNAL_ID if postgres else "NULL"),
                [*chunk, payable_kind, receivable_kind],
            )
            cursor.execute(
                f"SELECT merchant_id, net_fen, payable_id FROM {CHUNK_TABLE} ORDER BY merchant_id"  # noqa: S608
            )
            nets = cursor.fetchall()
            # Ingest opens a merchant's settlement payable with its first capture, in the transaction
            # that writes the day total: a total without one was not written by ingest.
            orphans = [merchant for merchant, _net, payable in nets if payable is None]
            if orphans:
                raise SettlementCorrupt(
                    f"merchants {orphans[:10]} have day totals but no settlement payable account"
                )
            waiting = [merchant for merchant, net, _payable in nets if net <= 0]
            paid = len(nets) - len(waiting)
            if paid:
                cursor.execute(
                    _JOURNALS.format(
                        id="id, " if postgres else "", journal_id="c.journal_id, " if postgres else ""
                    ),
                    [
                        JournalKind.SETTLEMENT,
                        prefix,
                        on,
                        stamp,
                        f"settlement of {day.isoformat()}: ",
                        " transactions",
                    ],
                )
                if not postgres:
                    cursor.execute(_JOURNAL_IDS, [prefix])
                cursor.execute(_ENTRIES, [bank_id])
                cursor.execute(_PAYABLE_BALANCES)
                cursor.execute(_RECEIVABLE_BALANCES)
                cursor.execute(_BANK_BALANCE, [bank_id])
                cursor.execute(_BATCHES, [on, paid_on, run_id, since, stamp])
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {CHUNK_TABLE}")
    return paid, waiting
