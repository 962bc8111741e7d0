"""Who is acting, from where: carried explicitly into every service (no request globals in services).

The same ``Actor`` type covers a logged-in user, an API token, a background job and the shell, so the
audit chain records every change the same way wherever it comes from.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from posfleet.iam.models import User

ActorKind = Literal["user", "token", "job", "system"]

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

    @property
    def organisation_id(self) -> int | None:
        return self.user.organisation_id if self.user is not None else None
