"""/ledger: account balances, journals with their entries, and the conservation check (admin)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from posfleet.api import money_presenters as present
from posfleet.api import money_schemas as m
from posfleet.api import schemas as s
from posfleet.api.auth import actor
from posfleet.api.pagination import PageQuery, keyset
from posfleet.billing.selectors import (
    MERCHANT_ACCOUNT_KINDS,
    PROVIDER_ACCOUNT_KINDS,
    accounts_of,
    is_staff,
    journals_visible_to,
    provider_organisation_id,
)
from posfleet.billing.verify import verify_ledger
from posfleet.iam.models import Role, User
from posfleet.parties.selectors import merchant_for
from posfleet.platform.errors import PermissionDenied

router = Router(tags=["ledger"])

READ_STAFF = (401, 403, 404, 422)


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


@router.get(
    "/ledger/accounts", summary="Account balances", response=s.responses({200: m.AccountList}, READ_STAFF)
)
def ledger_accounts(request: HttpRequest, filters: Query[m.MerchantQuery]) -> m.AccountList:
    """A merchant's accounts (`merchant=MID`) with their balances as people read them: what we owe the
    merchant (settlement payable, deposit held, refunds payable) and what it owes (fees, penalties).
    Without `merchant`: the provider's own accounts, for provider staff only."""
    user = _user(request)
    org_id: int | None
    kinds: tuple[str, ...]
    if filters.merchant:
        merchant = merchant_for(user, filters.merchant)
        owner, org_id, kinds = merchant.mid, merchant.organisation_id, MERCHANT_ACCOUNT_KINDS
    else:
        if not is_staff(user):
            raise PermissionDenied()
        owner, org_id, kinds = "provider", provider_organisation_id(), PROVIDER_ACCOUNT_KINDS
    found = accounts_of(org_id, kinds) if org_id is not None else dict.fromkeys(kinds)
    return m.AccountList(owner=owner, items=[present.account(kind, a) for kind, a in found.items()])


@router.get(
    "/ledger/journals", summary="Ledger journals", response=s.responses({200: m.JournalPage}, READ_STAFF)
)
def ledger_journals(
    request: HttpRequest, filters: Query[m.LedgerQuery], page: Query[PageQuery]
) -> m.JournalPage:
    """A merchant's journals (`merchant=MID`) with their entries, newest first; each sums to zero.
    Without `merchant`: every journal (the provider's own included), for provider staff only."""
    user = _user(request)
    qs = journals_visible_to(user)
    if filters.merchant:
        qs = qs.filter(merchant=merchant_for(user, filters.merchant))
    elif not is_staff(user):
        raise PermissionDenied()
    if filters.kind:
        qs = qs.filter(kind__in=filters.kind)
    if filters.date_from:
        qs = qs.filter(business_date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(business_date__lte=filters.date_to)
    list_name = f"journals:{filters.merchant or '*'}"
    rows, cursor = keyset(qs, list_name=list_name, key="id", page=page, descending=True)
    return m.JournalPage(items=[present.journal(j) for j in rows], next_cursor=cursor)


@router.get(
    "/ledger/verify",
    summary="Check the ledger",
    response=s.responses({200: m.LedgerReportOut}, (401, 403, 422)),
)
def ledger_verify(request: HttpRequest) -> m.LedgerReportOut:
    """Every journal balances and is complete, every balance equals its entries, all entries sum to
    zero, every released deposit has its journal (admin)."""
    if _user(request).role != Role.ADMIN:
        raise PermissionDenied()
    return present.ledger_report(verify_ledger())
