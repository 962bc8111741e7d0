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
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import ServiceContract
from posfleet.billing.services.contracts import add_months, renewal_fee_charge
from posfleet.enrollment.events import ServiceExpiryMilestone, ServiceRenewed
from posfleet.enrollment.models import ExpiryMilestone, Milestone
from posfleet.fleet.models import Terminal
from posfleet.fleet.services import terminal_service_extend, terminal_transition
from posfleet.fleet.states import Command, Status, SuspensionReason
from posfleet.iam.selectors import provider
from posfleet.platform.clock import now, today
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError, GuardFailed, NotFound, PermissionDenied, ValidationFailed
from posfleet.platform.events import publish, publish_many

log = logging.getLogger(__name__)

# Terminals that are told about expiry: bound to a merchant and not stopped for good.
NOTIFIED = (Status.BOUND, Status.ACTIVE, Status.SUSPENDED)


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


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _insert_milestones(window: Window, day: date) -> list[tuple[int, date]]:
    """Record ``window``'s milestone for every terminal due it and not yet recorded; returns the
    (terminal id, expiry) pairs this call recorded."""
    m, t = ExpiryMilestone._meta, Terminal._meta
    statuses = ", ".join(["%s"] * len(NOTIFIED))
    sql = f"""
        INSERT INTO {_q(m.db_table)} (terminal_id, expires_on, milestone, reached_on, created_at)
        SELECT t.id, t.service_expires_on, %s, %s, %s
          FROM {_q(t.db_table)} AS t
         WHERE t.service_expires_on BETWEEN %s AND %s
           AND t.status IN ({statuses})
           AND t.merchant_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM {_q(m.db_table)} AS e
                            WHERE e.terminal_id = t.id AND e.expires_on = t.service_expires_on
                              AND e.milestone = %s)
        ON CONFLICT (terminal_id, expires_on, milestone) DO NOTHING
        RETURNING terminal_id, expires_on
    """  # noqa: S608 (table names from the models; every value is a parameter)
    ops = connection.ops
    params: list[Any] = [
        str(window.milestone),
        ops.adapt_datefield_value(day),
        ops.adapt_datetimefield_value(now()),
        ops.adapt_datefield_value(window.first),
        ops.adapt_datefield_value(window.last),
        *[str(s) for s in NOTIFIED],
        str(window.milestone),
    ]
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
                        owners[pk]["sn"],
                        owners[pk]["organisations"],
                        {
                            "milestone": milestone,
                            "expires_on": expires.isoformat(),
                            "days_left": (expires - day).days,
                            "suspend_on": (expires + timedelta(days=suspend_after + 1)).isoformat(),
                            "tid": owners[pk]["tid"],
                            "merchant": owners[pk]["mid"],
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


def owners_of(terminal_ids: list[int]) -> dict[int, dict[str, Any]]:
    """SN, TID, MID and the organisations that may see each terminal's events (provider, its agent
    chain, its merchant), one query per 5,000 terminals (``= ANY(array)`` on PostgreSQL: a long IN
    list of parameters costs more to plan there than to run)."""
    root = provider()
    t = Terminal._meta
    merchant = t.get_field("merchant").related_model._meta
    agent = t.get_field("agent").related_model._meta
    organisation = agent.get_field("organisation").related_model._meta  # type: ignore[union-attr]
    chains: dict[str | None, frozenset[int]] = {}  # agent path -> provider and agent chain (few)
    out: dict[int, dict[str, Any]] = {}
    postgres = connection.vendor == "postgresql"
    for start in range(0, len(terminal_ids), 5000):
        chunk = terminal_ids[start : start + 5000]
        where = "t.id = ANY(%s)" if postgres else f"t.id IN ({', '.join(['%s'] * len(chunk))})"
        sql = f"""
            SELECT t.id, t.sn, t.tid, m.mid, m.organisation_id, o.path
              FROM {_q(t.db_table)} AS t
              LEFT JOIN {_q(merchant.db_table)} AS m ON m.id = t.merchant_id
              LEFT JOIN {_q(agent.db_table)} AS a ON a.id = t.agent_id
              LEFT JOIN {_q(organisation.db_table)} AS o ON o.id = a.organisation_id
             WHERE {where}
        """  # noqa: S608 (table names from the models; the ids are parameters)
        with connection.cursor() as cursor:
            cursor.execute(sql, [chunk] if postgres else chunk)
            rows = cursor.fetchall()
        for pk, sn, tid, mid, merchant_org, agent_path in rows:
            chain = chains.get(agent_path)
            if chain is None:
                ids = {int(p) for p in (agent_path or "").strip("/").split("/") if p}
                chain = chains[agent_path] = frozenset(ids | ({root.pk} if root is not None else set()))
            organisations = chain | {merchant_org} if merchant_org is not None else chain
            out[pk] = {"sn": sn, "tid": tid, "mid": mid, "organisations": tuple(organisations)}
    return out


def expiry_suspend_sweep(*, actor: Actor, day: date | None = None) -> int:
    """Suspend every active terminal whose grace period ended before ``day`` (reason ``expiry``),
    each through the fleet's service in its own transaction, once per expiry date (a terminal staff
    resumed by hand is not suspended again for the same expiry). Returns how many were suspended."""
    day = day or today()
    last_expiry = day - timedelta(days=grace_days() + 1)
    due = list(
        Terminal.objects.filter(
            status=Status.ACTIVE, service_expires_on__lte=last_expiry, merchant__isnull=False
        )
        .order_by("service_expires_on", "pk")
        .values_list("pk", "sn", "service_expires_on")
    )
    suspended = 0
    for pk, sn, expires in due:
        if expires is None:  # not possible under the filter; for the type checker
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
        if terminal.status not in {Status.ACTIVE, Status.SUSPENDED, Status.BOUND}:
            raise GuardFailed(
                _("Only a terminal in service can be renewed (this one is %(status)s).")
                % {"status": Status(terminal.status).label},
                guard="in_service",
            )
        contract = active_contract_of(terminal)
        if contract is None:
            raise GuardFailed(
                _("This terminal has no active service contract to renew."), guard="active_contract"
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
                    organisation_ids=owners["organisations"],
                    expires_on=expires.isoformat(),
                    previous_expires_on=previous.isoformat() if previous else "",
                    fee_fen=fee_fen,
                    tid=terminal.tid,
                    merchant=owners["mid"],
                )
            ]
        )
    terminal.refresh_from_db()
    return Renewal(terminal, previous, expires, fee_fen, resumed)


def terminal_for_renewal(actor: Actor, sn: str) -> Terminal:
    """The terminal, locked, if ``actor`` may renew it: staff, the agent that signed its merchant, or
    the merchant itself; a terminal the actor cannot see is NotFound (404)."""
    terminal = (
        Terminal.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(sn=sn.strip().upper()[:32])
        .first()
    )
    if terminal is None:
        raise NotFound()
    if actor.kind in {"job", "system"}:
        return terminal
    user = actor.user
    if user is None or not user.has_perm("fleet.view_terminal", terminal):
        raise NotFound()
    if terminal.merchant is None or not user.has_perm("enrollment.renew_service", terminal.merchant):
        raise PermissionDenied()
    return terminal


def active_contract_of(terminal: Terminal) -> ServiceContract | None:
    return ServiceContract.objects.filter(terminal=terminal, status=ServiceContract.Status.ACTIVE).first()
