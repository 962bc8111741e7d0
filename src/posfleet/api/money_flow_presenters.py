"""Transactions, ingest results, settlement batches and runs as response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from posfleet.api import money_flow_schemas as f
from posfleet.billing.models import PaymentMethod, SettlementRun, TransactionKind, TransactionStatus
from posfleet.platform.money import format_fen

if TYPE_CHECKING:
    from posfleet.billing.models import Transaction
    from posfleet.billing.services.transactions import TxnResult
    from posfleet.billing.statements.batch import BatchDetail
    from posfleet.billing.statements.figures import MethodLine
    from posfleet.billing.statements.settlements import Deduction, SettlementRow


def _label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def transaction(t: Transaction) -> f.TransactionOut:
    version = t.plan_version
    return f.TransactionOut(
        id=t.pk,
        merchant=t.merchant.mid,
        terminal=t.terminal.sn,
        tid=t.tid,
        batch_no=t.batch_no,
        trace_no=t.trace_no,
        txn_date=t.txn_date,
        occurred_at=t.occurred_at,
        kind=TransactionKind(t.kind),
        kind_label=_label(TransactionKind, t.kind),
        status=TransactionStatus(t.status),
        status_label=_label(TransactionStatus, t.status),
        method=PaymentMethod(t.method),
        method_label=_label(PaymentMethod, t.method),
        entry_mode=t.entry_mode,
        amount_fen=t.amount_fen,
        amount_display=format_fen(t.amount_fen),
        fee_fen=t.fee_fen,
        fee_display=format_fen(t.fee_fen),
        card_masked=t.card_masked,
        response_code=t.response_code,
        external_id=t.external_id,
        original=t.original_id,
        settlement=t.settlement_batch_id,
        plan=version.plan.code if version is not None else None,
        plan_version=version.number if version is not None else None,
        ingested_at=t.ingested_at,
    )


def ingest(results: Sequence[TxnResult]) -> f.IngestOut:
    items = [
        f.IngestItemOut(
            index=r.index,
            ok=r.ok,
            transaction_id=r.transaction_id,
            fee_fen=r.fee_fen,
            code=r.code,
            detail=r.detail,
            replayed=r.replayed,
        )
        for r in results
    ]
    return f.IngestOut(
        results=items,
        succeeded=sum(1 for r in results if r.ok),
        failed=sum(1 for r in results if not r.ok),
        replayed=sum(1 for r in results if r.replayed),
    )


def deduction(d: Deduction) -> f.DeductionOut:
    return f.DeductionOut(
        kind=d.kind,
        label=d.label,
        terminal=d.terminal_sn or None,
        period=d.period,
        charged_on=d.due_on,
        charge=d.charge,
        amount_fen=d.amount_fen,
        amount_display=format_fen(d.amount_fen),
    )


def _settlement_fields(row: SettlementRow) -> dict[str, Any]:
    return {
        "id": row.pk,
        "merchant": row.merchant_mid,
        "business_date": row.business_date,
        "paid_on": row.paid_on,
        "run": row.run_id,
        "txn_count": row.txn_count,
        "gross_fen": row.gross_fen,
        "refunds_fen": row.refunds_fen,
        "fees_fen": row.fees_fen,
        "service_fees_fen": row.service_fees_fen,
        "deductions": [deduction(d) for d in row.deductions],
        "payout_fen": row.payout_fen,
        "payout_display": format_fen(row.payout_fen),
        "journal": row.journal,
        "created_at": row.created_at,
    }


def settlement(row: SettlementRow) -> f.SettlementOut:
    return f.SettlementOut(**_settlement_fields(row))


def method_line(line: MethodLine) -> f.MethodLineOut:
    return f.MethodLineOut(
        method=line.method,
        label=str(line.label),
        sales_count=line.sales_count,
        sales_fen=line.sales_fen,
        refunds_count=line.refunds_count,
        refunds_fen=line.refunds_fen,
        fees_fen=line.fees_fen,
        net_fen=line.net_fen,
        declined_count=line.declined_count,
    )


def settlement_detail(
    detail: BatchDetail, transactions: list[Transaction], cursor: str | None
) -> f.SettlementDetailOut:
    return f.SettlementDetailOut(
        **_settlement_fields(detail.row),
        methods=[method_line(m) for m in detail.methods],
        totals=method_line(detail.totals),
        adds_up=detail.adds_up,
        transactions=[transaction(t) for t in transactions],
        next_cursor=cursor,
    )


def settlement_run(run: SettlementRun, batches: int, payout_fen: int) -> f.SettlementRunOut:
    return f.SettlementRunOut(
        id=run.pk,
        business_date=run.business_date,
        status=run.status,
        status_label=_label(SettlementRun.Status, run.status),
        started_at=run.started_at,
        finished_at=run.finished_at,
        merchants_total=run.merchants_total,
        merchants_done=run.merchants_done,
        attempts=run.attempts,
        batches=batches,
        payout_fen=payout_fen,
        payout_display=format_fen(payout_fen),
    )
