"""Step-up verification: destructive operations need a TOTP (or backup) code verified in the last
few minutes (settings.POSFLEET["STEP_UP_WINDOW"], default 5).

django-otp does the cryptography, the replay rejection (a code is accepted once) and keeps the
failure counters; the window, the lockout after 10 wrong codes and the audit rows are ours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import PROVIDER_ROLES, Role, User
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import StepUpFailed, StepUpLocked, StepUpRequired


def _policy() -> tuple[int, timedelta]:
    return settings.POSFLEET["STEP_UP_MAX_FAILURES"], settings.POSFLEET["LOCKOUT_DURATION"]


def has_totp(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def confirmed_totp(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


# PCI DSS 8.4.2: everyone who works for the provider or an agent gives a second factor at every login;
# a merchant does once they have set up an authenticator (docs/adr/0020).
SECOND_FACTOR_ROLES = PROVIDER_ROLES | {Role.AGENT}


def second_factor_required(user: User) -> bool:
    """Whether ``user`` must give a TOTP (or backup) code to log in, and so whether a session of theirs
    counts only once verified. Anyone who may use /admin/ must, too."""
    return user.role in SECOND_FACTOR_ROLES or user.is_staff or user.is_superuser or has_totp(user)


def locked_until(user: User) -> datetime | None:
    max_failures, duration = _policy()
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None or device.throttling_failure_count < max_failures:
        return None
    if device.throttling_failure_timestamp is None:
        return None
    until = device.throttling_failure_timestamp + duration
    return until if until > now() else None


def verify_step_up(actor: Actor, code: str) -> datetime:
    """Check ``code`` for ``actor.user``; return the moment of verification or raise.

    Runs and commits on its own (outside the caller's change), so a wrong code is counted and a
    used code is spent even when the operation that follows is refused.
    """
    user = actor.user
    code = (code or "").strip().replace(" ", "")
    if user is None or not code:
        raise StepUpRequired()
    max_failures, _duration = _policy()

    def entry(event_type: EventType, **fields: Any) -> Entry:
        return Entry(event_type=event_type, subject_type="user", subject_id=str(user.pk), **fields)

    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            outcome = "not_enrolled"
        elif locked_until(user) is not None:
            outcome = "locked"
            record(actor, entry(EventType.STEP_UP_LOCKED, outcome="refused"))
        else:
            method = ""
            if code.isdigit() and len(code) == device.digits:
                if device.verify_token(code):  # rejects a code that was already used
                    method = "totp"
            else:
                static = StaticDevice.objects.filter(user=user, confirmed=True).first()
                if static is not None and static.verify_token(code):  # a backup code is spent
                    method = "backup_code"
                else:
                    device.throttle_increment(commit=True)
            if method:
                if device.throttling_failure_count:
                    device.throttle_reset(commit=True)
                outcome = "ok"
                record(actor, entry(EventType.STEP_UP_SUCCEEDED, after={"method": method}))
            else:
                device.refresh_from_db()
                failures = device.throttling_failure_count
                outcome = "locked" if failures >= max_failures else "failed"
                kind = EventType.STEP_UP_LOCKED if outcome == "locked" else EventType.STEP_UP_FAILED
                record(actor, entry(kind, outcome="refused", after={"failures": failures}))
    if outcome == "ok":
        return now()
    if outcome == "not_enrolled":
        raise StepUpRequired(
            _("Two-factor authentication is not set up for this account; enrol a TOTP device first.")
        )
    if outcome == "locked":
        raise StepUpLocked()
    raise StepUpFailed()


def require_fresh_step_up(actor: Actor) -> None:
    """Raise ``StepUpRequired`` unless ``actor`` verified identity within the window."""
    if actor.is_system:
        return  # scheduled jobs and the operator's shell act on the provider's own authority
    at = actor.stepped_up_at
    if at is None or now() - at > settings.POSFLEET["STEP_UP_WINDOW"] or at > now():
        raise StepUpRequired()
