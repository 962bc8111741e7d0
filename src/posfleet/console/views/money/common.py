"""What the money pages share: whose money (merchant lookup in the user's scope), who may do what,
and the refusal page."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from posfleet.console.views.base import render_page
from posfleet.iam.models import PROVIDER_ROLES, Role, User
from posfleet.parties import selectors as parties
from posfleet.platform.errors import NotFound

STAFF = PROVIDER_ROLES


def signed_in(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def merchant_in_scope(user: User, mid: str) -> Any:
    """The merchant ``mid`` as ``user`` sees it; others' merchants are simply not there (404)."""
    try:
        return parties.merchant_for(user, mid.strip().upper())
    except NotFound as exc:
        raise Http404 from exc


def own_merchant(user: User) -> Any | None:
    """A merchant user's own merchant (None for everyone else)."""
    if user.role != Role.MERCHANT or user.organisation_id is None:
        return None
    return parties.merchant_of_organisation(user.organisation_id)


def is_merchant(user: User) -> bool:
    return user.role == Role.MERCHANT


def may_list_settlements(user: User) -> bool:
    """The settlement batches list is for staff and agents; merchants read their statements (the list's
    rule, and the terminal page's link to it)."""
    return not is_merchant(user)


def is_staff_or_agent(user: User) -> bool:
    return user.role in STAFF or user.role == Role.AGENT


def may_manage_plans(user: User) -> bool:
    return user.has_perm("billing.manage_plans")


def may_offer_contract(user: User, merchant: Any) -> bool:
    return user.has_perm("billing.offer_contract", merchant)


def may_accept_contract(user: User, merchant: Any) -> bool:
    """The merchant itself signs (the rule lets an admin too; the console leaves signing to the
    merchant)."""
    return user.role == Role.MERCHANT and user.has_perm("billing.accept_contract", merchant)


def may_release_deposit(user: User) -> bool:
    return user.has_perm("billing.release_deposit")


def forbidden(request: HttpRequest, message: str = "") -> HttpResponse:
    """403 with a page that says what is missing, in the console's frame."""
    return render_page(request, "console/money/forbidden.html", {"message": message}, status=403)
