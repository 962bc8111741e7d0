"""Reading identities and tenant scope."""

from __future__ import annotations

from django.db.models import QuerySet

from posfleet.iam.models import ApiToken, Organisation, OrgKind, User
from posfleet.platform.prepared import Prepared


def scope_of(user: User) -> str | None:
    """The materialised path prefix a user may see, or None for provider staff (sees everything)."""
    if user.is_provider_staff:
        return None
    if user.organisation is None:
        return "/nothing/"
    return user.organisation.path


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def _providers() -> QuerySet[Organisation]:
    """The provider organisation (one; the first by id should there be more): the one definition."""
    return Organisation.objects.filter(kind=OrgKind.PROVIDER).order_by("pk")


def provider() -> Organisation | None:
    return _providers().first()


def provider_locked() -> int | None:
    """The provider organisation's id, its row locked (``FOR UPDATE``) for the caller's transaction:
    the money lock every writer of ingest or settlement money takes first. None when there is none."""
    found = _PROVIDER_LOCKED.rows()
    return found[0][0] if found else None


# Taken by every ingest, the gateway's groups of approvals included: compiled once per connection.
_PROVIDER_LOCKED = Prepared(lambda: _providers().select_for_update().values_list("pk")[:1])


def organisations_told(*paths: str | None) -> tuple[int, ...]:
    """Who hears of an event (its outbox ``organisation_ids``): every organisation on the given
    materialised paths — the provider at the root, each agent above, the merchant — once, in path
    order. Pass the paths of what the event concerns (a terminal's merchant and the agent holding it,
    an application's agent and merchant). The one rule for every event; notifications then pick their
    audience among these, and webhooks go to endpoints of these organisations only."""
    ids: dict[int, None] = {}
    for path in paths:
        for part in (path or "").strip("/").split("/"):
            if part.isdigit():
                ids[int(part)] = None
    if not ids:
        root = provider()
        if root is not None:
            ids[root.pk] = None
    return tuple(ids)


def users_in(organisation: Organisation) -> QuerySet[User]:
    return User.objects.filter(organisation=organisation)
