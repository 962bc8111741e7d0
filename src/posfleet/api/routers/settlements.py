"""/settlements: batches paid to merchants (with their transactions), and the daily runs (staff)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from posfleet.api import money_flow_presenters as present
from posfleet.api import money_flow_schemas as f
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import is_staff, settlement_for, settlement_runs, settlements_visible_to
from posfleet.billing.services.settlement import settlement_run
from posfleet.billing.statements.batch import batch_detail, batch_transactions
from posfleet.billing.statements.settlements import settlement_rows
from posfleet.iam.models import User
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied

router = Router(tags=["settlements"])


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


@router.get(
    "/settlements",
    summary="List settlement batches",
    response=s.responses({200: f.SettlementPage}, s.READ_LIST),
)
def settlements_list(
    request: HttpRequest, filters: Query[f.SettlementQuery], page: Query[PageQuery]
) -> f.SettlementPage:
    """One batch per merchant and business day, of the merchants the caller may see, newest first."""
    qs = settlements_visible_to(_user(request))
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant)
    if filters.date_from:
        qs = qs.filter(business_date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(business_date__lte=filters.date_to)
    rows, cursor = keyset(qs, list_name="settlements", key="id", page=page, descending=True)
    return f.SettlementPage(items=[present.settlement(r) for r in settlement_rows(rows)], next_cursor=cursor)


# Before /settlements/{batch_id}.
@router.get(
    "/settlements/runs",
    summary="List settlement runs",
    response=s.responses({200: f.SettlementRunPage}, (401, 403, 422)),
)
def settlement_runs_list(request: HttpRequest, page: Query[PageQuery]) -> f.SettlementRunPage:
    """The daily runs with their progress, newest first (provider staff)."""
    if not is_staff(_user(request)):
        raise PermissionDenied()
    rows, cursor = keyset(
        settlement_runs(), list_name="settlement-runs", key="id", page=page, descending=True
    )
    return f.SettlementRunPage(
        items=[present.settlement_run(r, r.batch_count, r.payout_total_fen) for r in rows],  # type: ignore[attr-defined]
        next_cursor=cursor,
    )


@router.post(
    "/settlements/runs",
    summary="Settle a business day",
    response=s.responses({200: f.SettlementRunOut}, (400, 401, 403, 409, 422)),
)
def settlement_runs_create(
    request: HttpRequest, body: f.SettlementRunIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Settle `business_date` (T+1: yesterday or earlier) for every merchant (admin): net the day's
    takings of fees and due service fees into one batch and one journal per merchant. Running a day
    again changes nothing and answers its run; an unfinished run resumes. Over the API the run is one
    transaction (all or nothing); the scheduled job and `posfleet settle` commit it in chunks."""

    def work(who: Actor) -> Outcome:
        run = settlement_run(actor=who, business_date=body.business_date)
        counted = settlement_runs().get(pk=run.pk)
        out = present.settlement_run(counted, counted.batch_count, counted.payout_total_fen)  # type: ignore[attr-defined]
        return Outcome(200, presenters.dump(out))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/settlements/{batch_id}",
    summary="Get a settlement batch",
    response=s.responses({200: f.SettlementDetailOut}, s.READ_ONE),
)
def settlement_detail(request: HttpRequest, batch_id: int, page: Query[PageQuery]) -> f.SettlementDetailOut:
    """The batch, its figures by payment method, and a page of its transactions (`cursor`, `limit`)."""
    batch = settlement_for(_user(request), batch_id)
    detail = batch_detail(batch, listed=0)
    qs = batch_transactions(batch).select_related("merchant", "terminal", "plan_version__plan")
    rows, cursor = keyset(qs, list_name=f"settlement:{batch.pk}", key="id", page=page)
    return present.settlement_detail(detail, rows, cursor)
