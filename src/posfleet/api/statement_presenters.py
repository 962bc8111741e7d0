"""Monthly statements and the plan comparison as response bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from posfleet.api import statement_schemas as st
from posfleet.api.money_flow_presenters import method_line
from posfleet.billing.comparison_words import line_text, verdict
from posfleet.platform.money import format_fen

if TYPE_CHECKING:
    from posfleet.billing.comparison import Comparison, PlanCost
    from posfleet.billing.selectors import MonthFigures
    from posfleet.billing.statements import MonthlyStatement
    from posfleet.billing.statements.monthly import SettlementLine
    from posfleet.billing.statements.settlements import SettlementRow


def statement_month(figures: MonthFigures, partial: bool) -> st.StatementMonthOut:
    net = figures.sales_fen - figures.refunds_fen - figures.fees_fen
    return st.StatementMonthOut(
        month=str(figures.month),
        label=figures.month.label,
        partial=partial,
        sales_count=figures.sales_count,
        sales_fen=figures.sales_fen,
        refunds_fen=figures.refunds_fen,
        fees_fen=figures.fees_fen,
        net_fen=net,
        net_display=format_fen(net),
    )


def _settlement_line(line: SettlementRow | SettlementLine, totals: bool = False) -> st.SettlementLineOut:
    return st.SettlementLineOut(
        id=None if totals else line.pk,
        business_date=None if totals else line.business_date,
        paid_on=None if totals else line.paid_on,
        txn_count=line.txn_count,
        gross_fen=line.gross_fen,
        refunds_fen=line.refunds_fen,
        fees_fen=line.fees_fen,
        service_fees_fen=line.service_fees_fen,
        payout_fen=line.payout_fen,
    )


def statement(s: MonthlyStatement) -> st.StatementOut:
    return st.StatementOut(
        merchant=st.MerchantHeadingOut(
            mid=s.merchant.mid, name=s.merchant.name, legal_name=s.merchant.legal_name
        ),
        month=str(s.month),
        label=s.month.label,
        generated_at=s.generated_at,
        partial=s.is_partial,
        methods=[method_line(m) for m in s.methods],
        totals=method_line(s.totals),
        settlements=[_settlement_line(line) for line in s.settlements],
        settlement_totals=_settlement_line(s.settlement_totals, totals=True),
        deposits=[
            st.DepositLineOut(
                id=d.pk,
                contract=d.contract_id,
                terminal=d.terminal_sn,
                amount_fen=d.amount_fen,
                collected_on=d.collected_on,
                status=d.status,
                status_label=str(d.status_label),
                refunded_fen=d.refunded_fen,
                forfeited_fen=d.forfeited_fen,
                released_on=d.released_on,
            )
            for d in s.deposits
        ],
        deposit_held_fen=s.deposit_held_fen,
        deposit_refunded_fen=s.deposit_refunded_fen,
        deposit_forfeited_fen=s.deposit_forfeited_fen,
        fees_due=[
            st.FeeDueLineOut(
                due_on=f.due_on,
                contract=f.contract_id,
                terminal=f.terminal_sn,
                period=f.period,
                amount_fen=f.amount_fen,
                charged=f.charged,
            )
            for f in s.fees_due
        ],
        service_fees_due_fen=s.service_fees_due_fen,
        service_fees_charged_fen=s.service_fees_charged_fen,
        service_fees_deducted_fen=s.service_fees_deducted_fen,
        service_fees_outstanding_fen=s.service_fees_outstanding_fen,
        opening_payable_fen=s.opening_payable_fen,
        opening_payable_display=format_fen(s.opening_payable_fen),
        closing_payable_fen=s.closing_payable_fen,
        closing_payable_display=format_fen(s.closing_payable_fen),
        payable_movements=[
            st.MovementOut(kind=m.kind, label=str(m.label), amount_fen=m.amount_fen)
            for m in s.payable_movements
        ],
    )


def _plan_cost(p: PlanCost) -> st.PlanCostOut:
    return st.PlanCostOut(
        code=p.code,
        name=p.name,
        provider_name=p.provider_name,
        is_competitor=p.is_competitor,
        is_current=p.is_current,
        monthly_fen=list(p.monthly_fen),
        fees_fen=list(p.fees_fen),
        service_fen=list(p.service_fen),
        fees_total_fen=p.fees_total_fen,
        service_total_fen=p.service_total_fen,
        once_total_fen=p.once_total_fen,
        total_fen=p.total_fen,
        total_display=format_fen(p.total_fen),
        average_fen=p.average_fen,
        saving_fen=p.saving_fen,
        saving_display=format_fen(p.saving_fen, sign=True) if p.saving_fen is not None else None,
        complete=p.complete,
        unpriced_fen=dict(sorted(p.unpriced_fen.items())),
        lines=[
            st.CostLineOut(
                code=line.code,
                amount_fen=line.amount_fen,
                counted=line.counted,
                text=line_text(line),
                params=dict(line.params),
            )
            for line in p.lines
        ],
    )


def comparison(mid: str, c: Comparison) -> st.ComparisonOut:
    best, cheapest, ours = c.best, c.cheapest, c.best_ours
    return st.ComparisonOut(
        merchant=mid,
        months=[str(m) for m in c.months],
        sales_count=list(c.sales_count),
        sales_fen=list(c.sales_fen),
        refunds_fen=list(c.refunds_fen),
        actual_fees_fen=list(c.actual_fees_fen),
        sales_total_fen=c.sales_total_fen,
        actual_total_fen=c.actual_total_fen,
        actual_total_display=format_fen(c.actual_total_fen),
        mix_fen=dict(c.mix_fen),
        d0=c.d0,
        current=c.current.code if c.current is not None else None,
        with_sales=c.with_sales,
        terminals=c.terminals,
        best=best.code if best is not None else None,
        best_ours=ours.code if ours is not None else None,
        cheapest=cheapest.code if cheapest is not None else None,
        verdict=verdict(c),
        plans=[_plan_cost(p) for p in c.plans],
    )
