"""Who is acting, from where: carried explicitly into every service (no request globals in services).

The same ``Actor`` type covers a logged-in user, an API token, a background job and the shell, so the
audit chain records every change the same way wherever it comes from.

It is also the one place that says what an actor may do (``may``, ``require``, ``require_person``,
``must_see``): a person or a token through their user's permissions (django-rules, each context's
``rules.py``), a read-only token never writing, and jobs and the system acting on the provider's own
authority — the only bypass there is, written once here.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from django.utils.translation import gettext as _

from posfleet.platform.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from posfleet.iam.models import User

ActorKind = Literal["user", "token", "job", "system"]
# Scheduled jobs and the operator's shell act on the provider's own authority: no permission check, no
# tenant scope, no step-up (they have no second factor to give).
SYSTEM_KINDS: frozenset[str] = frozenset({"job", "system"})

# The request id of the HTTP request being served, for log lines only (services take it explicitly).
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("posfleet_request_id", default="-")


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    user: User | None = None
    token_id: int | None = None
    label: str = ""
    request_id: str = ""
    source_ip: str | None = None
    # When identity was last verified with a TOTP or backup code (step-up); None when never.
    stepped_up_at: datetime | None = None
    # API tokens may be read-only.
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_user(
        cls,
        user: User,
        *,
        request_id: str = "",
        source_ip: str | None = None,
        stepped_up_at: datetime | None = None,
    ) -> Actor:
        return cls(
            kind="user",
            user=user,
            label=user.get_username(),
            request_id=request_id,
            source_ip=source_ip,
            stepped_up_at=stepped_up_at,
        )

    @classmethod
    def job(cls, name: str) -> Actor:
        return cls(kind="job", label=name)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", label=label)

    def with_step_up(self, at: datetime) -> Actor:
        return replace(self, stepped_up_at=at)

    # -- what this actor may do: the one rule -----------------------------------------------------

    @property
    def is_system(self) -> bool:
        """A job or the shell: acts on the provider's authority, sees everything."""
        return self.kind in SYSTEM_KINDS

    @property
    def scope_user(self) -> User | None:
        """The user whose tenant scope limits what this actor sees; None when it sees everything."""
        return None if self.is_system else self.user

    def may(self, perm: str, obj: Any = None) -> bool:
        """Whether the actor holds ``perm`` (on ``obj``). Says nothing of read-only tokens: use it to
        decide what to show; writes go through ``require``."""
        if self.is_system:
            return True
        user = self.user
        return user is not None and user.is_active and user.has_perm(perm, obj)

    def require(self, perm: str | None, obj: Any = None) -> None:
        """Refuse (403) a write the actor may not do: a read-only token never writes. ``perm`` None: a
        step of a composite service that has checked the permission of the whole (a renewal extends
        the service period, a replacement records its link)."""
        if self.read_only:
            raise PermissionDenied(_("This API token is read-only."))
        if perm is not None and not self.may(perm, obj):
            raise PermissionDenied()

    def require_person(self, perm: str, obj: Any = None) -> User:
        """``require`` for a step a person must take (a decision, a submission, a confirmation): a job
        or the system is refused too. Returns that person."""
        self.require(perm, obj)
        if self.user is None or self.is_system:
            raise PermissionDenied()
        return self.user

    def require_session(self, detail: str | None = None) -> User:
        """Refuse (403) unless a person signed in to the console acts (not an API token, a job or the
        shell): for what only a session may do (create API tokens, set up an authenticator)."""
        if self.kind != "user" or self.user is None:
            raise PermissionDenied(detail)
        return self.user

    def must_see(self, perm: str, obj: Any) -> None:
        """Refuse as not found (404) an object the actor may not see: no one learns that others'
        objects exist."""
        if not self.may(perm, obj):
            raise NotFound()

    @property
    def organisation_id(self) -> int | None:
        return self.user.organisation_id if self.user is not None else None
