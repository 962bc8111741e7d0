"""An application's life (申请, DOMAIN.md workflow 1) as data. Pure Python: no ORM.

``TRANSITIONS`` maps ``(status, command) -> status``. The services move an application only through it
(``enrollment.services.common.move``); the console's progress picture and buttons and the API's
``actions`` read ``STEPS``, ``PROGRESS`` and ``PERMISSIONS`` from here (``enrollment.selectors``); the
diagram in docs/state-machines/application.md is generated from it (`posfleet statemachines`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ApplicationStatus(TextChoices):
    SUBMITTED = "submitted", _("waiting for review")  # in the reviewers' queue, its clock running
    NEEDS_INFO = "needs_info", _("needs more information")  # back with the applicant
    APPROVED = "approved", pgettext_lazy("application status", "approved")  # merchant and store opened
    REJECTED = "rejected", pgettext_lazy("application status", "rejected")  # final
    ALLOCATED = "allocated", _("terminals reserved")  # SNs promised from the agent's stock
    SHIPPED = "shipped", pgettext_lazy("application status", "shipped")  # with the carrier
    DELIVERED = "delivered", pgettext_lazy("application status", "delivered")  # installing and testing
    COMPLETED = "completed", pgettext_lazy("application status", "active")  # every terminal active


class ApplicationCommand(StrEnum):
    SUBMIT = "submit"
    REQUEST_INFO = "request_info"
    RESPOND = "respond"
    APPROVE = "approve"
    REJECT = "reject"
    ALLOCATE = "allocate"
    SHIP = "ship"
    DELIVER = "deliver"
    INSTALL = "install"  # one terminal: bound to the store, its contract signed
    TEST = "test"  # one terminal's test transaction (swipe, scan, print); a pass activates it
    COMPLETE = "complete"  # the last terminal's passed test completes the application


S, C = ApplicationStatus, ApplicationCommand

INITIAL = S.SUBMITTED
TRANSITIONS: dict[tuple[ApplicationStatus | None, ApplicationCommand], ApplicationStatus] = {
    (None, C.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, C.REQUEST_INFO): S.NEEDS_INFO,
    (S.NEEDS_INFO, C.RESPOND): S.SUBMITTED,
    (S.SUBMITTED, C.APPROVE): S.APPROVED,
    (S.SUBMITTED, C.REJECT): S.REJECTED,
    (S.APPROVED, C.ALLOCATE): S.ALLOCATED,
    (S.ALLOCATED, C.SHIP): S.SHIPPED,
    (S.SHIPPED, C.DELIVER): S.DELIVERED,
    (S.DELIVERED, C.INSTALL): S.DELIVERED,
    (S.DELIVERED, C.TEST): S.DELIVERED,
    (S.DELIVERED, C.COMPLETE): S.COMPLETED,
}
FINAL = frozenset({S.REJECTED, S.COMPLETED})

# Who may run each command (django-rules permissions, enrollment/rules.py; on the application).
PERMISSIONS: dict[ApplicationCommand, str] = {
    C.SUBMIT: "enrollment.submit_application",
    C.REQUEST_INFO: "enrollment.review_application",
    C.RESPOND: "enrollment.respond_application",
    C.APPROVE: "enrollment.review_application",
    C.REJECT: "enrollment.review_application",
    C.ALLOCATE: "enrollment.fulfil_application",
    C.SHIP: "enrollment.fulfil_application",
    C.DELIVER: "enrollment.confirm_delivery",
    C.INSTALL: "enrollment.install_application",
    C.TEST: "enrollment.install_application",
}
# Decided by someone other than who submitted (maker-checker).
MAKER_CHECKER = frozenset({C.REQUEST_INFO, C.APPROVE, C.REJECT})
# Taken by the system, never offered to a person.
AUTOMATIC = frozenset({C.COMPLETE})
# A reviewer's decision (the API's and the console's word) and its command.
DECISIONS: dict[str, ApplicationCommand] = {
    "approve": C.APPROVE,
    "reject": C.REJECT,
    "needs_info": C.REQUEST_INFO,
}

# -- groups (the console's tabs, the API's filters) ------------------------------------------------
OPEN = frozenset({S.SUBMITTED, S.NEEDS_INFO})  # documents may still be added
IN_FULFILMENT = frozenset({S.APPROVED, S.ALLOCATED, S.SHIPPED, S.DELIVERED})
DONE = frozenset(FINAL)
GROUPS: dict[str, frozenset[ApplicationStatus]] = {"open": OPEN, "fulfilment": IN_FULFILMENT, "done": DONE}
# The review queues (the console's application tabs, with their counts): every status
# in exactly one, in the order a reviewer works them.
QUEUES: dict[str, frozenset[ApplicationStatus]] = {
    "review": frozenset({S.SUBMITTED}),  # waiting for a reviewer
    "merchant": frozenset({S.NEEDS_INFO}),  # waiting for the applicant's answer
    "fulfilment": IN_FULFILMENT,  # approved, terminals on their way
    "active": frozenset({S.COMPLETED}),
    "rejected": frozenset({S.REJECTED}),
}
QUEUE_LABELS: dict[str, object] = {
    "review": _("Waiting for review"),
    "merchant": _("Waiting for the applicant"),
    "fulfilment": _("Approved, being fulfilled"),
    "active": pgettext_lazy("application queue", "Active"),
    "rejected": pgettext_lazy("application queue", "Rejected"),
}

# -- the progress picture ----------------------------------------------------------------------------
STEPS: tuple[tuple[str, object], ...] = (
    ("submitted", _("Submitted")),
    ("review", _("Review")),
    ("approved", _("Approved")),
    ("allocated", _("Terminals reserved")),
    ("shipped", _("Shipped")),
    ("delivered", _("Delivered")),
    ("installed", _("Installed and tested")),
    ("completed", _("Active")),
)
# How many of the steps are behind an application in each status (the next one is the current one).
PROGRESS: dict[str, int] = {
    S.SUBMITTED: 1,
    S.NEEDS_INFO: 1,
    S.REJECTED: 1,
    S.APPROVED: 3,
    S.ALLOCATED: 4,
    S.SHIPPED: 5,
    S.DELIVERED: 6,
    S.COMPLETED: 8,
}
# The step that failed, for an application that ended there.
FAILED_AT: dict[str, str] = {S.REJECTED: "review"}


def next_state(current: str | None, command: str) -> ApplicationStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((S(current) if current is not None else None, C(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[ApplicationCommand]:
    return [command for (status, command) in TRANSITIONS if status == current]


def progress(status: str) -> list[tuple[str, object, str]]:
    """(key, label, state) of each step for an application in ``status``: done, current, todo or
    failed."""
    reached = PROGRESS.get(S(status), 0)
    failed = FAILED_AT.get(S(status))
    out = []
    for i, (key, label) in enumerate(STEPS):
        state = "done" if i < reached else ("current" if i == reached else "todo")
        out.append((key, label, "failed" if key == failed else state))
    return out


def review_overdue(status: str, review_due_at: datetime | None, at: datetime) -> bool:
    """An application waiting for review past its review clock (the SLA, REVIEW_SLA_HOURS)."""
    return status == S.SUBMITTED and review_due_at is not None and review_due_at < at


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram (docs/state-machines/application.md)."""
    lines = ["stateDiagram-v2"]
    for (status, command), target in TRANSITIONS.items():
        lines.append(f"    {status.value if status else '[*]'} --> {target.value}: {command.value}")
    for status in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {status.value} --> [*]")
    return "\n".join(lines) + "\n"
