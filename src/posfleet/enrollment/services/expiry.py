"""Service expiry (到期): notices before it, a grace period after it, then suspension; renewal.

``expiry_sweep`` (daily, and safe any number of times a day) records every milestone a terminal in
service has reached and not yet had — a notice 30, 7 and 1 days before its service expires
(``POSFLEET_EXPIRY["NOTICE_DAYS"]``), ``expired`` once it has — and writes one outbox event per
milestone in the same transaction. Each milestone is one ``INSERT … SELECT … ON CONFLICT DO NOTHING
RETURNING`` over the terminals whose expiry falls in the milestone's window: the unique
(terminal, expiry, milestone) constraint decides what is new, so a second sweep, or two at once,
finds nothing more to send. A sweep that missed days catches up: a terminal 20 days from expiry that
never had its 30-day notice gets it (saying 20 days), and never a notice already overtaken by a
later one.

``expiry_suspend_sweep`` suspends, through the fleet's own service (reason ``expiry``, the job as
actor, audited), every active terminal whose grace period (``GRACE_DAYS``, 15) has ended.
``service_renew`` charges the annual fee through the ledger, moves the expiry a year on and resumes a
terminal that was suspended for expiry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, DateField, DateTimeField, Exists, OuterRef, Value
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import ServiceContract
from posfleet.billing.services.contracts import add_months, renewal_fee_charge
from posfleet.enrollment.events import ServiceExpiryMilestone, ServiceRenewed
from posfleet.enrollment.models import ExpiryMilestone, Milestone
from posfleet.fleet.selectors import Terminal, grace_ended, in_service_expiring, owners_of
from posfleet.fleet.services import terminal_lock, terminal_service_extend, terminal_transition
from posfleet.fleet.states import IN_SERVICE, Command, Status, SuspensionReason
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError, GuardFailed, PermissionDenied, ValidationFailed
from posfleet.platform.events import publish, publish_many

log = logging.getLogger(__name__)


def notice_days() -> list[int]:
    return sorted({int(d) for d in settings.POSFLEET_EXPIRY["NOTICE_DAYS"] if int(d) > 0}, reverse=True)


def grace_days() -> int:
    return int(settings.POSFLEET_EXPIRY["GRACE_DAYS"])


@dataclass(frozen=True)
class Window:
    milestone: str
    first: date  # expiry dates in [first, last]
    last: date


def windows(day: date) -> list[Window]:
    """Which expiry dates are due which milestone on ``day``: the latest milestone reached wins."""
    days = notice_days()
    out = []
    for i, before in enumerate(days):
        later = days[i + 1] if i + 1 < len(days) else 0
        out.append(Window(f"t{before}", day + timedelta(days=later + 1), day + timedelta(days=before)))
    out.append(Window(Milestone.EXPIRED, day - timedelta(days=grace_days()), day - timedelta(days=1)))
    return out


@dataclass
class SweepResult:
    day: date
    found: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.found.values())


def _insert_milestones(window: Window, day: date) -> list[tuple[int, date]]:
    """Record ``window``'s milestone for every terminal due it and not yet recorded; returns the
    (terminal id, expiry) pairs this call recorded. Which terminals are due is the fleet's to say
    (``in_service_expiring``); one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` writes them."""
    milestone = str(window.milestone)
    recorded = ExpiryMilestone.objects.filter(
        terminal=OuterRef("pk"), expires_on=OuterRef("service_expires_on"), milestone=milestone
    )
    due = (
        in_service_expiring(window.first, window.last)
        .filter(~Exists(recorded))
        .order_by()
        .annotate(
            m=Value(milestone, output_field=CharField()),
            on=Value(day, output_field=DateField()),
            at=Value(now(), output_field=DateTimeField()),
        )
        .values_list("pk", "service_expires_on", "m", "on", "at")
    )
    select, params = due.query.sql_with_params()
    m = ExpiryMilestone._meta
    quote = connection.ops.quote_name
    columns = "terminal_id, expires_on, milestone, reached_on, created_at"
    sql = (
        f"INSERT INTO {quote(m.db_table)} ({columns}) {select}"
        " ON CONFLICT (terminal_id, expires_on, milestone) DO NOTHING RETURNING terminal_id, expires_on"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        (pk, expires if isinstance(expires, date) else date.fromisoformat(expires)) for pk, expires in rows
    ]


def expiry_sweep(*, actor: Actor, day: date | None = None) -> SweepResult:
    """Record and announce every expiry milestone reached by ``day`` (default today); see the module."""
    day = day or today()
    result = SweepResult(day)
    suspend_after = grace_days()
    with transaction.atomic():
        recorded: list[tuple[str, int, date]] = []
        for window in windows(day):
            rows = _insert_milestones(window, day)
            result.found[str(window.milestone)] = len(rows)
            recorded += [(str(window.milestone), pk, expires) for pk, expires in rows]
        if recorded:
            owners = owners_of([pk for _m, pk, _e in recorded])
            publish_many(
                ServiceExpiryMilestone,
                (
                    (
                        owners[pk].sn,
                        owners[pk].organisations,
                        {
                            "milestone": milestone,
                            "expires_on": expires.isoformat(),
                            "days_left": (expires - day).days,
                            "suspend_on": (expires + timedelta(days=suspend_after + 1)).isoformat(),
                            "tid": owners[pk].tid,
                            "merchant": owners[pk].mid,
                        },
                    )
                    for milestone, pk, expires in recorded
                ),
            )
            record(
                actor,
                Entry(
                    event_type=EventType.EXPIRY_SWEEP,
                    subject_type="expiry_sweep",
                    subject_id=day.isoformat(),
                    after={"found": result.found},
                ),
            )
    return result


def expiry_suspend_sweep(*, actor: Actor, day: date | None = None) -> int:
    """Suspend every active terminal whose grace period ended before ``day`` (reason ``expiry``),
    each through the fleet's service in its own transaction, once per expiry date (a terminal staff
    resumed by hand is not suspended again for the same expiry). Returns how many were suspended."""
    day = day or today()
    last_expiry = day - timedelta(days=grace_days() + 1)
    suspended = 0
    for pk, sn, expires in grace_ended(last_expiry):
        if expires is None:  # not possible: the filter asks for an expiry; for the type checker
            continue
        try:
            with transaction.atomic():
                _milestone, created = ExpiryMilestone.objects.get_or_create(
                    terminal_id=pk,
                    expires_on=expires,
                    milestone=Milestone.SUSPENDED,
                    defaults={"reached_on": day, "created_at": now()},
                )
                if not created:
                    continue
                terminal_transition(
                    actor=actor,
                    sn=sn,
                    action=Command.SUSPEND,
                    reason=SuspensionReason.EXPIRY,
                    note=f"service expired on {expires.isoformat()}; the {grace_days()}-day grace ended",
                )
        except DomainError as exc:  # changed meanwhile (closed, reported lost…): leave it
            log.info("expiry suspension of %s skipped: %s", sn, exc.code)
            continue
        suspended += 1
    return suspended


@dataclass(frozen=True)
class Renewal:
    terminal: Terminal
    previous_expires_on: date | None
    expires_on: date
    fee_fen: int
    resumed: bool


def service_renew(*, actor: Actor, sn: str, years: int = 1) -> Renewal:
    """Renew a terminal's service for ``years``: the fee through the ledger, the expiry a year on per
    year, and a terminal suspended for expiry resumed — in one transaction (续费)."""
    if actor.read_only:
        raise PermissionDenied(_("This API token is read-only."))
    if not isinstance(years, int) or isinstance(years, bool) or not 1 <= years <= 5:
        raise ValidationFailed(_("Renew for 1 to 5 years."), field="years")
    day = today()
    with transaction.atomic():
        terminal = terminal_for_renewal(actor, sn)
        if terminal.status not in IN_SERVICE:
            raise GuardFailed(
                _("Only a terminal in service can be renewed (this one is %(status)s).")
                % {"status": Status(terminal.status).label},
                guard="in_service",
            )
        contract = active_contract_of(terminal)
        if contract is None:
            raise GuardFailed(
                _("This terminal has no service contract in force to renew."), guard="active_contract"
            )
        previous = terminal.service_expires_on
        expires = add_months(previous or day, 12 * years)
        fee = renewal_fee_charge(actor=actor, contract=contract, years=years, on=day)
        terminal_service_extend(actor=actor, sn=terminal.sn, expires_on=expires)
        resumed = terminal.status == Status.SUSPENDED and terminal.status_reason == SuspensionReason.EXPIRY
        if resumed:
            terminal_transition(
                actor=Actor.job("service_renew"),
                sn=terminal.sn,
                action=Command.RESUME,
                note=f"service renewed until {expires.isoformat()}",
            )
        owners = owners_of([terminal.pk])[terminal.pk]
        fee_fen = fee.amount_fen if fee is not None else 0
        record(
            actor,
            Entry(
                event_type=EventType.SERVICE_RENEWED,
                subject_type="terminal",
                subject_id=terminal.sn,
                before={"service_expires_on": previous.isoformat() if previous else None},
                after={
                    "service_expires_on": expires.isoformat(),
                    "years": years,
                    "fee_fen": fee_fen,
                    "resumed": resumed,
                },
            ),
        )
        publish(
            [
                ServiceRenewed(
                    aggregate_id=terminal.sn,
                    organisation_ids=owners.organisations,
                    expires_on=expires.isoformat(),
                    previous_expires_on=previous.isoformat() if previous else "",
                    fee_fen=fee_fen,
                    fee_due_on=fee.due_on.isoformat() if fee is not None else "",
                    tid=terminal.tid,
                    merchant=owners.mid,
                )
            ]
        )
    terminal.refresh_from_db()
    return Renewal(terminal, previous, expires, fee_fen, resumed)


def terminal_for_renewal(actor: Actor, sn: str) -> Terminal:
    """The terminal, locked, if ``actor`` may renew it: staff, the agent that signed its merchant, or
    the merchant itself; a terminal the actor cannot see is NotFound (404)."""
    terminal = terminal_lock(actor, sn)
    if terminal.merchant is None and not actor.is_system:
        raise PermissionDenied()  # no merchant, no one to renew for
    actor.require("enrollment.renew_service", terminal.merchant)
    return terminal


def active_contract_of(terminal: Terminal) -> ServiceContract | None:
    return ServiceContract.objects.filter(terminal=terminal, status=ServiceContract.Status.ACTIVE).first()
