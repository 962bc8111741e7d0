"""Domain errors: every refusal carries a stable ``code``; the edges map codes to HTTP once.

A service raises one of these *before* it changes anything, or inside the transaction that is then
rolled back, so a refusal never leaves a trace (no status change, no audit row, no outbox message).
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """Base class. ``code`` is part of the public contract (API ``code`` field, console messages)."""

    code: str = "domain_error"
    status: int = 409
    title: Any = _("The request could not be carried out.")

    def __init__(self, detail: str | Promise | None = None, **params: Any) -> None:
        self.detail = detail if detail is not None else self.title
        self.params = params
        super().__init__(str(self.detail))

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": str(self.detail), **self.params}


class NotFound(DomainError):
    """The object does not exist *or belongs to someone else*: both answer the same (no enumeration)."""

    code = "not_found"
    status = 404
    title = _("Not found.")


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    title = _("You do not have permission to do this.")


class StepUpRequired(DomainError):
    code = "step_up_required"
    status = 403
    title = _("This operation needs a fresh identity verification (TOTP code).")


class StepUpFailed(DomainError):
    code = "step_up_failed"
    status = 403
    title = _("The verification code is wrong, expired or already used.")


class StepUpLocked(DomainError):
    code = "step_up_locked"
    status = 403
    title = _("Too many wrong verification codes. Verification is locked for 30 minutes.")


class ValidationFailed(DomainError):
    code = "validation_error"
    status = 422
    title = _("The request is not valid.")


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"
    status = 409
    title = _("This action is not allowed in the current state.")


class GuardFailed(DomainError):
    """A transition exists from this state but one of its conditions does not hold."""

    code = "guard_failed"
    status = 409
    title = _("A condition of this action does not hold.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = _("The object was changed by someone else; reload and try again.")
