"""Reading applications: who sees which, what an application needs, what can happen next.

``application_view`` is the one read model of an application's page: the console renders it
(console/views/applications.py) and the API answers it (api/routers/applications.py), so both show
the same progress, the same next step and the same actions, read from ``enrollment/states.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from posfleet.enrollment import review
from posfleet.enrollment.models import (
    Application,
    ApplicationKind,
    ApplicationTerminal,
    DocumentKind,
    KycDocument,
)
from posfleet.enrollment.states import (
    AUTOMATIC,
    MAKER_CHECKER,
    PERMISSIONS,
    QUEUES,
    ApplicationCommand,
    ApplicationStatus,
    commands_from,
    progress,
    review_overdue,
)
from posfleet.fleet.selectors import Terminal, stock_of_agent
from posfleet.iam.models import Role, User
from posfleet.parties.selectors import MerchantKind
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import NotFound

S = ApplicationStatus


def visible_applications(user: User) -> QuerySet[Application]:
    qs = Application.objects.select_related(
        "agent", "agent__organisation", "merchant", "previous_merchant", "plan", "submitted_by"
    )
    if user.is_provider_staff:
        return qs
    org = user.organisation
    if org is None:
        return qs.none()
    if user.role == Role.AGENT:
        return qs.filter(agent__organisation__path__startswith=org.path)
    if user.role == Role.MERCHANT:
        return qs.filter(
            Q(merchant__organisation=org)
            | Q(previous_merchant__organisation=org)
            | Q(submitted_by__organisation=org)
        )
    return qs.none()


def queue_counts(qs: QuerySet[Application]) -> dict[str, int]:
    """How many of ``qs`` (already scoped to the reader, ``visible_applications``) are in each queue
    (``states.QUEUES``), and ``all``: one grouped query."""
    by_status = dict(qs.order_by().values_list("status").annotate(n=Count("id")))
    counts = {key: sum(by_status.get(s, 0) for s in statuses) for key, statuses in QUEUES.items()}
    counts["all"] = sum(by_status.values())
    return counts


def search_applications(qs: QuerySet[Application], text: str) -> QuerySet[Application]:
    """``qs`` narrowed to ``text``: part of the application number, the shop's or legal name, or the
    merchant's MID or name. The licence number is sealed with the KYC and is not searchable."""
    text = str(text or "").strip()[:64]
    if not text:
        return qs
    return qs.filter(
        Q(number__icontains=text)
        | Q(shop_name__icontains=text)
        | Q(legal_name__icontains=text)
        | Q(merchant__mid__iexact=text)
        | Q(merchant__name__icontains=text)
        | Q(previous_merchant__mid__iexact=text)
    )


def application_for(actor: Actor, number: str, *, lock: bool = False) -> Application:
    """Application ``number`` as ``actor`` may see it (locked with ``lock``); others' answer
    NotFound (404)."""
    qs = Application.objects.select_related(
        "agent",
        "agent__organisation",
        "merchant",
        "merchant__organisation",
        "previous_merchant",
        "previous_merchant__organisation",
        "plan",
        "submitted_by",
        "data_key",
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    application = qs.filter(number=str(number).strip().upper()[:20]).first()
    if application is None:
        raise NotFound()
    actor.must_see("enrollment.view_application", application)
    return application


def required_documents(merchant_kind: str) -> list[str]:
    kinds = [DocumentKind.ID_CARD.value, DocumentKind.BANK_PROOF.value]
    if merchant_kind == MerchantKind.ENTERPRISE:
        kinds.insert(1, DocumentKind.BUSINESS_LICENCE.value)
    return kinds


def current_documents(application: Application) -> QuerySet[KycDocument]:
    return KycDocument.objects.filter(application=application, replaced=False).order_by("kind", "id")


def missing_documents(application: Application) -> list[str]:
    have = set(current_documents(application).values_list("kind", flat=True))
    needed = (
        required_documents(application.merchant_kind)
        if application.kind != ApplicationKind.MORE_TERMINALS
        else []
    )
    return [kind for kind in needed if kind not in have]


def stock_for(application: Application) -> QuerySet[Terminal]:
    """Terminals of the asked kind in the agent's stock and promised to no open application."""
    promised = ApplicationTerminal.objects.filter(activated_at__isnull=True).values("terminal_id")
    return stock_of_agent(application.agent, application.terminal_kind).exclude(pk__in=promised)


def actions_for(actor: Actor, application: Application) -> list[ApplicationCommand]:
    """The commands ``actor`` may take on ``application`` now: allowed from its status
    (``states.TRANSITIONS``), permitted (``states.PERMISSIONS``), and never a decision on one's own
    submission (maker-checker). What the console offers and the API's ``actions`` lists."""
    if actor.read_only:
        return []
    out = []
    for command in commands_from(application.status):
        if command in AUTOMATIC or not actor.may(PERMISSIONS[command], application):
            continue
        if (
            command in MAKER_CHECKER
            and actor.user is not None
            and application.submitted_by_id == actor.user.pk
        ):
            continue
        out.append(command)
    return out


def _local(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "—"


def next_step(application: Application) -> str:
    """What happens next, in plain words for whoever looks (in the active language)."""
    status = application.status
    if status == S.SUBMITTED:
        return _("A reviewer checks the application and its documents, usually by %(due)s.") % {
            "due": _local(application.review_due_at)
        }
    if status == S.NEEDS_INFO:
        return _(
            "The reviewer needs more information: “%(what)s”. Add it below and send the application back."
        ) % {"what": review.explained(application.review_reasons or [], application.info_request)}
    if status == S.REJECTED:
        return _("The application was rejected: %(why)s") % {
            "why": review.explained(application.review_reasons or [], application.decision_reason)
        }
    if status == S.APPROVED:
        return ngettext(
            "Approved. The agent now reserves %(n)s terminal from its stock.",
            "Approved. The agent now reserves %(n)s terminals from its stock.",
            application.terminal_count,
        ) % {"n": application.terminal_count}
    if status == S.ALLOCATED:
        return _("The terminals are reserved and are being packed for shipping.")
    if status == S.SHIPPED:
        return _(
            "On its way with %(carrier)s, tracking number %(no)s. Confirm delivery when the parcel arrives."
        ) % {"carrier": application.carrier, "no": application.tracking_no}
    if status == S.DELIVERED:
        return _(
            "Delivered. The agent installs each terminal and runs the test transaction (swipe, scan, print); "
            "a terminal that passes takes payments at once."
        )
    return _("All terminals are active. Statements and renewals appear under Money and Expiry calendar.")


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    state: str  # done, current, todo, failed


@dataclass(frozen=True)
class ApplicationView:
    """An application as one actor sees it."""

    application: Application
    steps: list[Step]
    next_step: str
    actions: list[ApplicationCommand]
    overdue: bool
    documents: list[KycDocument]
    missing: list[str]
    lines: list[ApplicationTerminal]
    contact_shown: bool  # the applicant's contact data, or masked (e.g. the warehouse)
    stock: int | None  # free terminals of the agent for the allocation, when the actor may allocate

    def may(self, command: str) -> bool:
        return ApplicationCommand(command) in self.actions


def application_view(actor: Actor, application: Application) -> ApplicationView:
    actions = actions_for(actor, application)
    return ApplicationView(
        application=application,
        steps=[Step(key, str(label), state) for key, label, state in progress(application.status)],
        next_step=next_step(application),
        actions=actions,
        overdue=review_overdue(application.status, application.review_due_at, now()),
        documents=list(current_documents(application)),
        missing=missing_documents(application),
        lines=list(application.lines.select_related("terminal", "contract").order_by("terminal__sn")),
        contact_shown=actor.may("enrollment.view_kyc", application)
        or actor.may("enrollment.respond_application", application),
        stock=stock_for(application).count() if ApplicationCommand.ALLOCATE in actions else None,
    )
