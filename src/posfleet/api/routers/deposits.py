"""/deposits: what merchants paid as deposits, and their one refund (step-up)."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest, HttpResponse
from ninja import Header, Query, Router

from posfleet.api import money_presenters as present
from posfleet.api import money_schemas as m
from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import STEP_UP_HEADER, IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import deposit_for, deposits_visible_to
from posfleet.billing.services.deposits import deposit_release
from posfleet.iam.models import User
from posfleet.platform.context import Actor

router = Router(tags=["deposits"])

RefundStepUp = Annotated[
    str | None,
    Header(alias=STEP_UP_HEADER, description="A fresh TOTP (or backup) code: a refund moves money out."),
]


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


@router.get("/deposits", summary="List deposits", response=s.responses({200: m.DepositPage}, s.READ_LIST))
def deposits_list(
    request: HttpRequest, filters: Query[m.DepositQuery], page: Query[PageQuery]
) -> m.DepositPage:
    """Deposits of the merchants the caller may see, newest first."""
    qs = deposits_visible_to(_user(request))
    if filters.merchant:
        qs = qs.filter(merchant__mid=filters.merchant)
    if filters.status:
        qs = qs.filter(status__in=filters.status)
    rows, cursor = keyset(qs, list_name="deposits", key="id", page=page, descending=True)
    return m.DepositPage(items=[present.deposit(d) for d in rows], next_cursor=cursor)


@router.get(
    "/deposits/{deposit_id}", summary="Get a deposit", response=s.responses({200: m.DepositOut}, s.READ_ONE)
)
def deposit_detail(request: HttpRequest, deposit_id: int) -> m.DepositOut:
    return present.deposit(deposit_for(_user(request), deposit_id))


@router.post(
    "/deposits/{deposit_id}/refund",
    summary="Refund a deposit (once)",
    response=s.responses({200: m.DepositOut}, s.WRITE),
)
def deposit_refund_create(
    request: HttpRequest,
    deposit_id: int,
    body: m.DepositRefundIn,
    idempotency_key: IdempotencyKey = None,
    step_up: RefundStepUp = None,
) -> HttpResponse:
    """Refund `refund_fen` and forfeit the rest (reviewer or admin; needs X-Step-Up-TOTP). A deposit
    is released once: any later attempt answers 409 `deposit_already_refunded`."""

    def work(who: Actor) -> Outcome:
        assert who.user is not None
        deposit = deposit_for(who.user, deposit_id)
        deposit_release(
            actor=who, deposit_id=deposit.pk, refund_fen=body.refund_fen, reason=body.reason, note=body.note
        )
        return Outcome(200, presenters.dump(present.deposit(deposit_for(who.user, deposit_id))))

    return execute(
        request, actor(request), work, key=idempotency_key, step_up_needed=True, step_up_code=step_up
    )
