"""/transactions: search in scope, and batch ingest (up to 10,000 per call, admin)."""

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
from posfleet.billing.selectors import TransactionFilters, search_transactions, transaction_for
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.iam.models import User
from posfleet.platform.context import Actor

router = Router(tags=["transactions"])


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _item(item: f.TransactionIn) -> TxnIn:
    original = item.original
    return TxnIn(
        tid=item.tid,
        batch_no=item.batch_no,
        trace_no=item.trace_no,
        txn_date=item.txn_date,
        occurred_at=item.occurred_at,
        method=item.method,
        entry_mode=item.entry_mode,
        amount_fen=item.amount_fen,
        kind=item.kind,
        status=item.status,
        card_masked=item.card_masked,
        response_code=item.response_code,
        external_id=item.external_id,
        original=(
            (original.tid, original.batch_no, original.trace_no, original.txn_date)
            if original is not None
            else None
        ),
        original_external_id=item.original_external_id,
    )


@router.get(
    "/transactions",
    summary="Search transactions",
    response=s.responses({200: f.TransactionPage}, s.READ_LIST),
)
def transactions_list(
    request: HttpRequest, filters: Query[f.TransactionQuery], page: Query[PageQuery]
) -> f.TransactionPage:
    """Transactions of the merchants the caller may see, newest ingested first. Filters combine (AND);
    `method`, `kind` and `status` may repeat."""
    qs = search_transactions(
        _user(request),
        TransactionFilters(
            merchant=filters.merchant,
            terminal=filters.terminal,
            tid=filters.tid,
            date_from=filters.date_from,
            date_to=filters.date_to,
            methods=tuple(filters.method),
            kinds=tuple(filters.kind),
            statuses=tuple(filters.status),
        ),
    )
    rows, cursor = keyset(qs, list_name="transactions", key="id", page=page, descending=True)
    return f.TransactionPage(items=[present.transaction(t) for t in rows], next_cursor=cursor)


@router.post(
    "/transactions",
    summary="Ingest a batch of transactions",
    response=s.responses({200: f.IngestOut}, (400, 401, 403, 409, 422)),
)
def transactions_create(
    request: HttpRequest, body: f.IngestIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Record up to 10,000 transactions (admin). Answers 200 with a result per item, in order, even
    when some are refused: each is priced with the rate plan in force on its date, and only a terminal
    that was active then may have approved transactions. An item stored before (same TID, batch, trace
    and date, or the same `external_id`) with the same content comes back `replayed: true` and changes
    nothing; with other content it is refused (`duplicate_key_conflict`)."""

    def work(who: Actor) -> Outcome:
        results = transactions_ingest(actor=who, items=[_item(i) for i in body.items])
        return Outcome(200, presenters.dump(present.ingest(results)))

    return execute(request, actor(request), work, key=idempotency_key)


@router.get(
    "/transactions/{transaction_id}",
    summary="Get a transaction",
    response=s.responses({200: f.TransactionOut}, s.READ_ONE),
)
def transaction_detail(request: HttpRequest, transaction_id: int) -> f.TransactionOut:
    return present.transaction(transaction_for(_user(request), transaction_id))
