"""From an approved application to active terminals: allocate SNs from the agent's stock, ship
(carrier, tracking number), confirm delivery, install (bind + contract) and the test transaction
(swipe, scan, print) that activates each terminal.

Terminal status changes go through the fleet's own service functions, in the same transaction as the
application's step, so a refused terminal command leaves the application untouched too.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from posfleet.audit.services import clean_text
from posfleet.audit.vocabulary import EventType
from posfleet.billing.services.contracts import Terms, add_months, contract_accept, contract_offer
from posfleet.enrollment.models import Application, ApplicationKind, ApplicationTerminal
from posfleet.enrollment.selectors import application_for, stock_for
from posfleet.enrollment.services.common import audit, move, progressed, require_allowed
from posfleet.enrollment.services.onboarding import store_of, system_actor
from posfleet.enrollment.states import PERMISSIONS, ApplicationCommand
from posfleet.fleet import services as fleet
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import GuardFailed, ValidationFailed

CHECKS = ("swipe", "scan", "print")
CHECK_LABELS = {
    "swipe": gettext_lazy("card swipe"),
    "scan": gettext_lazy("QR scan"),
    "print": gettext_lazy("receipt print"),
}


# -- allocate ----------------------------------------------------------------------------------------


def application_allocate(*, actor: Actor, number: str, sns: list[str] | None = None) -> Application:
    """Promise terminals from the agent's stock: the given SNs, or the first free ones of the kind."""
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        actor.require(PERMISSIONS[ApplicationCommand.ALLOCATE], application)
        require_allowed(application, ApplicationCommand.ALLOCATE)
        stock = stock_for(application)
        if connection.features.has_select_for_update_skip_locked:
            stock = stock.select_for_update(skip_locked=True, of=("self",))
        if sns:
            wanted = sorted({sn.strip().upper() for sn in sns if sn.strip()})
            if len(wanted) != application.terminal_count:
                raise ValidationFailed(
                    ngettext(
                        "Choose exactly %(n)s terminal.",
                        "Choose exactly %(n)s terminals.",
                        application.terminal_count,
                    )
                    % {"n": application.terminal_count},
                    field="sns",
                )
            chosen = list(stock.filter(sn__in=wanted))
            if len(chosen) != len(wanted):
                missing = sorted(set(wanted) - {t.sn for t in chosen})
                raise GuardFailed(
                    _("Not in the agent's free stock of this kind: %(sns)s.")
                    % {"sns": ", ".join(missing[:10])},
                    guard="in_agent_stock",
                    missing=missing,
                )
        else:
            chosen = list(stock[: application.terminal_count])
            if len(chosen) < application.terminal_count:
                raise GuardFailed(
                    _(
                        "Agent %(agent)s has %(have)s free terminals of this kind and the application needs "
                        "%(need)s. Ask the warehouse to allocate more to the agent."
                    )
                    % {
                        "agent": application.agent.code,
                        "have": len(chosen),
                        "need": application.terminal_count,
                    },
                    guard="in_agent_stock",
                    have=len(chosen),
                    need=application.terminal_count,
                )
        at = now()
        ApplicationTerminal.objects.bulk_create(
            [ApplicationTerminal(application=application, terminal=t, allocated_at=at) for t in chosen]
        )
        move(application, ApplicationCommand.ALLOCATE)
        audit(actor, application, EventType.APPLICATION_ALLOCATED, sns=[t.sn for t in chosen])
        progressed(application, "allocated")
    return application


# -- ship and deliver --------------------------------------------------------------------------------


def application_ship(*, actor: Actor, number: str, carrier: str, tracking_no: str) -> Application:
    carrier, tracking_no = clean_text(carrier, 64), clean_text(tracking_no, 64)
    if not carrier:
        raise ValidationFailed(_("Name the carrier."), field="carrier")
    if not tracking_no:
        raise ValidationFailed(_("Give the tracking number."), field="tracking_no")
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        actor.require(PERMISSIONS[ApplicationCommand.SHIP], application)
        require_allowed(application, ApplicationCommand.SHIP)
        for line in application.lines.select_related("terminal"):
            fleet.terminal_ship(
                actor=actor,
                sn=line.terminal.sn,
                carrier=carrier,
                tracking_no=tracking_no,
                note=application.number,
            )
        move(application, ApplicationCommand.SHIP, carrier=carrier, tracking_no=tracking_no, shipped_at=now())
        audit(actor, application, EventType.APPLICATION_SHIPPED, carrier=carrier, tracking_no=tracking_no)
        progressed(application, "shipped", carrier=carrier, tracking_no=tracking_no)
    return application


def application_deliver(*, actor: Actor, number: str) -> Application:
    """The merchant (or its agent) confirms the parcel arrived."""
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        actor.require(PERMISSIONS[ApplicationCommand.DELIVER], application)
        move(application, ApplicationCommand.DELIVER, delivered_at=now())
        audit(actor, application, EventType.APPLICATION_DELIVERED)
        progressed(application, "delivered")
    return application


# -- install and test ---------------------------------------------------------------------------------


def _line(application: Application, sn: str) -> ApplicationTerminal:
    line = (
        application.lines.select_for_update(of=("self",))
        .select_related("terminal")
        .filter(terminal__sn=sn.strip().upper())
        .first()
    )
    if line is None:
        raise ValidationFailed(_("This terminal is not part of the application."), field="sn")
    return line


def application_install(*, actor: Actor, number: str, sn: str) -> ApplicationTerminal:
    """Bind the delivered terminal to the merchant's store and sign its service contract (the offer
    the applicant accepted). The terminal is then ``bound`` and waits for its test transaction."""
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        actor.require(PERMISSIONS[ApplicationCommand.INSTALL], application)
        require_allowed(
            application, ApplicationCommand.INSTALL, _("Install after the delivery is confirmed.")
        )
        line = _line(application, sn)
        if line.installed_at is not None:
            raise GuardFailed(_("This terminal is already installed."), guard="not_installed")
        merchant = application.merchant
        assert merchant is not None
        store = store_of(application)
        terminal = fleet.terminal_bind(
            actor=actor,
            sn=line.terminal.sn,
            merchant_mid=merchant.mid,
            store_code=store.code,
            note=application.number,
        )
        system = system_actor(application)
        offer = dict(application.offer)
        contract = contract_offer(
            actor=system,
            terminal_id=terminal.pk,
            merchant=merchant,
            plan=application.plan,
            terms=Terms(starts_on=today(), **offer),
        )
        contract_accept(actor=system, contract=contract)
        line.installed_at = now()
        line.contract = contract
        line.save(update_fields=["installed_at", "contract"])
        audit(
            actor,
            application,
            EventType.APPLICATION_INSTALLED,
            sn=terminal.sn,
            tid=terminal.tid,
            contract=contract.pk,
        )
        progressed(application, "installed")
    return line


@dataclass(frozen=True)
class TestResult:
    line: ApplicationTerminal
    passed: bool
    failed: list[str]
    completed: bool


def application_test(
    *, actor: Actor, number: str, sn: str, checks: dict[str, bool], note: str = ""
) -> TestResult:
    """Record the test transaction. All of swipe, scan and print passed → the terminal is activated
    (its service runs for the contract's term); when the last one is active the application is done.
    A failed check is recorded and changes nothing else: fix and test again."""
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValidationFailed(_("Unknown check."), field="checks", allowed=list(CHECKS))
    results = {name: bool(checks.get(name)) for name in CHECKS}
    failed = [name for name, ok in results.items() if not ok]
    with transaction.atomic():
        application = application_for(actor, number, lock=True)
        actor.require(PERMISSIONS[ApplicationCommand.TEST], application)
        require_allowed(
            application, ApplicationCommand.TEST, _("Test after the delivery and the installation.")
        )
        line = _line(application, sn)
        if line.installed_at is None:
            raise GuardFailed(_("Install the terminal before its test transaction."), guard="installed")
        if line.activated_at is not None:
            raise GuardFailed(_("This terminal is already active."), guard="not_active")
        line.checks = results
        completed = False
        if not failed:
            fleet.terminal_activate(
                actor=actor, sn=line.terminal.sn, note=clean_text(note) or application.number
            )
            ends = add_months(line.contract.starts_on, line.contract.term_months) if line.contract else None
            current = line.terminal.service_expires_on
            if ends is not None and (current is None or ends > current):  # a longer prepaid SIM stays
                fleet.terminal_service_extend(
                    actor=system_actor(application), sn=line.terminal.sn, expires_on=ends
                )
            line.activated_at = now()
        line.save(update_fields=["checks", "activated_at"])
        audit(
            actor,
            application,
            EventType.APPLICATION_TESTED,
            sn=line.terminal.sn,
            checks=results,
            outcome="success" if not failed else "failure",
        )
        if not failed and not application.lines.filter(activated_at__isnull=True).exists():
            move(application, ApplicationCommand.COMPLETE, completed_at=now())
            audit(actor, application, EventType.APPLICATION_COMPLETED)
            progressed(application, "completed")
            completed = True
    return TestResult(line=line, passed=not failed, failed=failed, completed=completed)


def is_reapplication(application: Application) -> bool:
    return application.kind == ApplicationKind.REAPPLICATION
