"""Role predicates (django-rules). Object predicates live with the objects (fleet/rules.py...)."""

from __future__ import annotations

import rules

from posfleet.iam.models import Role


@rules.predicate
def is_admin(user: object) -> bool:
    return getattr(user, "role", None) == Role.ADMIN and getattr(user, "is_active", False)


@rules.predicate
def is_reviewer(user: object) -> bool:
    return getattr(user, "role", None) == Role.REVIEWER and getattr(user, "is_active", False)


@rules.predicate
def is_warehouse(user: object) -> bool:
    return getattr(user, "role", None) == Role.WAREHOUSE and getattr(user, "is_active", False)


@rules.predicate
def is_agent(user: object) -> bool:
    return getattr(user, "role", None) == Role.AGENT and getattr(user, "is_active", False)


@rules.predicate
def is_merchant(user: object) -> bool:
    return getattr(user, "role", None) == Role.MERCHANT and getattr(user, "is_active", False)


is_provider_staff = is_admin | is_reviewer | is_warehouse

rules.add_perm("iam.manage_own_tokens", rules.is_authenticated)
rules.add_perm("iam.manage_users", is_admin)
