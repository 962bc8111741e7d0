"""What each user may see of agents, merchants and stores. Out-of-scope objects simply are not there."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Q, QuerySet

from posfleet.iam.models import Role, User
from posfleet.parties.channels import BindingStatus
from posfleet.parties.models import Agent, ChannelBinding, Merchant, Store
from posfleet.platform.errors import NotFound


def agents_visible_to(user: User) -> QuerySet[Agent]:
    qs = Agent.objects.select_related("organisation")
    if user.is_provider_staff:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        return qs.filter(organisation__path__startswith=user.organisation.path)
    return qs.none()


def by_visible_agent(user: User, field: str = "agent_id") -> Q | None:
    """The filter of rows kept per agent (counters, sales by month, month-end figures) that ``user``
    may add up: every row for the provider's staff (``Q()``), its subtree's agents' for an agent (the
    rule of ``agents_visible_to``); None for anyone else (nothing)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_provider_staff:
        return Q()
    if user.role == Role.AGENT and user.organisation is not None:
        return Q(**{f"{field}__in": agents_visible_to(user).values("pk")})
    return None


def merchants_visible_to(user: User) -> QuerySet[Merchant]:
    qs = Merchant.objects.select_related("organisation", "agent", "agent__organisation")
    if user.is_provider_staff:
        return qs
    if user.role == Role.AGENT and user.organisation is not None:
        return qs.filter(agent__organisation__path__startswith=user.organisation.path)
    if user.role == Role.MERCHANT and user.organisation_id is not None:
        return qs.filter(organisation_id=user.organisation_id)
    return qs.none()


def stores_visible_to(user: User) -> QuerySet[Store]:
    return Store.objects.select_related("merchant").filter(merchant__in=merchants_visible_to(user))


def agent_for(user: User | None, code: str) -> Agent:
    """The agent ``code`` as ``user`` sees it; ``user=None`` is the system itself (sees everything)."""
    qs = agents_visible_to(user) if user is not None else Agent.objects.select_related("organisation")
    agent = qs.filter(code=code).first()
    if agent is None:
        raise NotFound()
    return agent


def merchant_for(user: User | None, mid: str) -> Merchant:
    qs = (
        merchants_visible_to(user)
        if user is not None
        else Merchant.objects.select_related("organisation", "agent", "agent__organisation")
    )
    merchant = qs.filter(mid=mid).first()
    if merchant is None:
        raise NotFound()
    return merchant


def store_for(user: User, merchant: Merchant, code: str) -> Store:
    store = stores_visible_to(user).filter(merchant=merchant, code=code).first()
    if store is None:
        raise NotFound()
    return store


def agent_of_organisation(organisation_id: int) -> Agent | None:
    return Agent.objects.filter(organisation_id=organisation_id).first()


def merchant_of_organisation(organisation_id: int) -> Merchant | None:
    return Merchant.objects.filter(organisation_id=organisation_id).first()


def agent_contains(ancestor: Agent, descendant: Agent) -> bool:
    return descendant.organisation.path.startswith(ancestor.organisation.path)


def store_of(merchant: Merchant, code: str) -> Store | None:
    return Store.objects.filter(merchant=merchant, code=code).first()


def store_coordinates(store_id: int) -> tuple[Decimal, Decimal] | None:
    """(latitude, longitude) of store ``store_id`` in WGS-84 degrees, or None when it has none (or
    there is no such store). One indexed read: the heartbeat of a device asks it."""
    row = Store.objects.filter(pk=store_id).order_by().values_list("latitude", "longitude").first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]


# -- for applications (enrollment): what it needs of merchants and stores, without the models --------

MerchantKind = Merchant.Kind
MerchantStatus = Merchant.Status


def mcc_valid(value: str) -> bool:
    return len(value) == 4 and value.isdigit()


def mid_taken(mid: str) -> bool:
    return Merchant.objects.filter(mid=mid).exists()


def store_at(merchant: Merchant, name: str, address: str) -> Store | None:
    """The merchant's store of that name at that address (the first, if several)."""
    return Store.objects.filter(merchant=merchant, name=name, address=address).order_by("id").first()


def free_store_code(merchant: Merchant) -> str:
    """``S<n>``: the first store code the merchant does not use yet."""
    used = set(Store.objects.filter(merchant=merchant).values_list("code", flat=True))
    n = len(used) + 1
    while f"S{n}" in used:
        n += 1
    return f"S{n}"


# -- payment-channel bindings (for the closure case's unbind step and the pages) ----------------------


def channel_bindings_of(terminal_ids: Iterable[int], *, open_only: bool = False) -> QuerySet[ChannelBinding]:
    """The payment-channel bindings of these terminals, by terminal then channel; ``open_only``: those
    not unbound yet (what a closure still has to unbind). Not scoped: pass the ids of terminals the
    reader may see (the closure case's own, a page's scoped terminals)."""
    qs = ChannelBinding.objects.select_related("merchant").filter(terminal_id__in=list(terminal_ids))
    if open_only:
        qs = qs.exclude(status=BindingStatus.UNBOUND)
    return qs.order_by("terminal_id", "channel", "pk")
