"""Reading identities and tenant scope."""

from __future__ import annotations

from django.db.models import QuerySet

from posfleet.iam.models import ApiToken, Organisation, OrgKind, Role, User


def scope_of(user: User) -> str | None:
    """The materialised path prefix a user may see, or None for provider staff (sees everything)."""
    if user.role in {Role.ADMIN, Role.REVIEWER, Role.WAREHOUSE}:
        return None
    if user.organisation is None:
        return "/nothing/"
    return user.organisation.path


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def provider() -> Organisation | None:
    return Organisation.objects.filter(kind=OrgKind.PROVIDER).first()


def users_in(organisation: Organisation) -> QuerySet[User]:
    return User.objects.filter(organisation=organisation)
