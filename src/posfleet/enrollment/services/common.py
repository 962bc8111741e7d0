"""What every step of an application does the same way: move its status through the table
(``enrollment/states.py``) with compare-and-set, write its audit row, and announce it on the outbox —
all inside the step's transaction."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.enrollment.events import ApplicationProgressed
from posfleet.enrollment.models import Application
from posfleet.enrollment.states import ApplicationCommand, ApplicationStatus, commands_from, next_state
from posfleet.iam.selectors import organisations_told
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, TransitionNotAllowed
from posfleet.platform.events import publish


def organisations_of(application: Application) -> tuple[int, ...]:
    """Who hears of this application: the provider, the agents above it, the merchant."""
    return organisations_told(
        application.agent.organisation.path,
        application.merchant.organisation.path if application.merchant is not None else None,
    )


def progressed(application: Application, step: str, **extra: Any) -> None:
    """Write the outbox event of ``step`` (inside the step's transaction)."""
    publish(
        [
            ApplicationProgressed(
                aggregate_id=application.number,
                organisation_ids=organisations_of(application),
                step=step,
                status=application.status,
                kind=application.kind,
                shop_name=application.shop_name,
                terminal_count=application.terminal_count,
                merchant=application.merchant.mid if application.merchant else None,
                agent=application.agent.code,
                review_due_at=application.review_due_at.isoformat() if application.review_due_at else "",
                **extra,
            )
        ]
    )


def require_allowed(
    application: Application, command: ApplicationCommand, detail: str | None = None
) -> ApplicationStatus:
    """The status ``command`` leads to from the application's; refused (409) when the table has no
    such move, with ``detail`` or a plain message, naming the commands that are possible now."""
    target = next_state(application.status, command)
    if target is None:
        raise TransitionNotAllowed(
            detail
            or _("This is not possible while the application is “%(status)s”.")
            % {"status": ApplicationStatus(application.status).label},
            current_status=application.status,
            allowed=[c.value for c in commands_from(application.status)],
        )
    return target


def move(application: Application, command: ApplicationCommand, **fields: Any) -> None:
    """Take ``command``: compare-and-set the status to where the table leads (``UPDATE … WHERE
    status = <current>``) with ``fields``; a lost race is a Conflict (409)."""
    source = application.status
    target = require_allowed(application, command)
    changed = Application.objects.filter(pk=application.pk, status=source).update(
        status=target, updated_at=now(), **fields
    )
    if not changed:
        raise Conflict()
    application.status = target
    for name, value in fields.items():
        setattr(application, name, value)


def audit(actor: Actor, application: Application, event: EventType, **after: Any) -> None:
    record(
        actor,
        Entry(
            event_type=event,
            subject_type="application",
            subject_id=application.number,
            reason=str(after.pop("reason", "")),
            note=str(after.pop("note", "")),
            outcome=str(after.pop("outcome", "success")),
            after={"status": application.status, **after},
        ),
    )
