"""A closure case's life (注销, DOMAIN.md workflow 4) as data. Pure Python: no ORM.

Two tables:

- ``TRANSITIONS``: the case itself — requested, then withdrawn, rejected or approved; an approved case
  runs its steps and completes. Services move a case only through it (``closure.services.common.move``).
- ``STEPS``: what an approved case does, each step a unit with its own state. A step runs once every
  step it comes ``after`` is done, so steps that do not wait for each other (unbinding the channels,
  waiting for the final settlement) run side by side. The worker runs them (``closure.runner``); each
  one's effect happens at most once (its idempotency key is ``<case>:<step>``, and each effect has its
  own database guard: a unique journal reference, a compare-and-set, a command key).

The console's step timeline, the API's ``steps`` and ``actions``, and the diagram in
docs/state-machines/closure.md (`posfleet statemachines`) all read these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class CaseStatus(TextChoices):
    REQUESTED = "requested", _("waiting for review")  # the terminals stopped; review clock running
    WITHDRAWN = "withdrawn", _("withdrawn")  # by the requester before review decided (final)
    REJECTED = "rejected", pgettext_lazy("closure status", "rejected")  # final; the terminals stay stopped
    RUNNING = "running", _("closing")  # approved: the steps run
    COMPLETED = "completed", pgettext_lazy("closure status", "closed")  # certificate issued (final)


class CaseCommand(StrEnum):
    REQUEST = "request"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    REJECT = "reject"
    COMPLETE = "complete"  # the last step done: taken by the runner, never by a person


S, C = CaseStatus, CaseCommand

INITIAL = S.REQUESTED
TRANSITIONS: dict[tuple[CaseStatus | None, CaseCommand], CaseStatus] = {
    (None, C.REQUEST): S.REQUESTED,
    (S.REQUESTED, C.WITHDRAW): S.WITHDRAWN,
    (S.REQUESTED, C.APPROVE): S.RUNNING,
    (S.REQUESTED, C.REJECT): S.REJECTED,
    (S.RUNNING, C.COMPLETE): S.COMPLETED,
}
FINAL = frozenset({S.WITHDRAWN, S.REJECTED, S.COMPLETED})
OPEN = frozenset({S.REQUESTED, S.RUNNING})  # a terminal is in at most one open case

# Who may run each command (django-rules permissions, closure/rules.py; on the case).
PERMISSIONS: dict[CaseCommand, str] = {
    C.REQUEST: "closure.request_closure",
    C.WITHDRAW: "closure.withdraw_closure",
    C.APPROVE: "closure.review_closure",
    C.REJECT: "closure.review_closure",
}
MAKER_CHECKER = frozenset({C.APPROVE, C.REJECT})  # never by the person who asked
STEP_UP = frozenset({C.REQUEST, C.APPROVE})  # destructive: a fresh TOTP code
AUTOMATIC = frozenset({C.COMPLETE})

GROUPS: dict[str, frozenset[CaseStatus]] = {
    "open": OPEN,
    "review": frozenset({S.REQUESTED}),
    "running": frozenset({S.RUNNING}),
    "done": FINAL,
}


class ClosureReason(TextChoices):
    """Why a merchant ends a terminal for good — closure's own taxonomy (DOMAIN.md workflow 4), not the
    deactivation list."""

    SHOP_CLOSED = "shop_closed", _("shop closed")
    SWITCHING_PROVIDER = "switching_provider", _("switching provider")
    MOVING_AWAY = "moving_away", _("moving out of the service area")
    COST = "cost", _("cost")
    UNSATISFIED = "unsatisfied", _("unsatisfied with the service or the agent")
    NOT_NEEDED = "not_needed", _("device no longer needed")
    DISSOLVED = "dissolved", _("entity dissolved or owner deceased")
    PROVIDER_INITIATED = "provider_initiated", _("provider-initiated (risk, fraud, compliance)")
    OTHER = "other", _("other")


class CaseKind(TextChoices):
    """What a case ends: the terminals with the provider, or the merchant's terms with its agent (DOMAIN.md
    workflow 6, article 004) — the same steps; an agent termination is reviewed by the merchant's agent
    within its own clock (``AGENT_REVIEW_DAYS``) until the provider takes it over (ADR 0023)."""

    CLOSURE = "closure", _("closure")
    AGENT_TERMINATION = "agent_termination", _("ending with the agent")


# Reasons only the provider's staff give; ``OTHER`` needs a note.
STAFF_ONLY_REASONS = frozenset({ClosureReason.PROVIDER_INITIATED})
NOTE_REQUIRED_REASONS = frozenset({ClosureReason.OTHER})


# -- the steps ---------------------------------------------------------------------------------------


class StepName(StrEnum):
    CONTRACT = "contract"  # end the contract: fees due charged, later ones lapse, penalty; deregister
    UNBIND = "unbind"  # every payment channel of the terminals unbound
    SETTLE = "settle"  # the final settlement: every sale up to the stop paid by the T+1 run
    BACKUP = "backup"  # the merchant's data backup (CSV + Parquet + statements, signed), downloadable
    WIPE = "wipe"  # remote wipe acknowledged by the device (smart terminals); its credential revoked
    RETURN = "return"  # the device back at the warehouse (or its deadline passed: recovery fee)
    INSPECT = "inspect"  # graded A/B/C at the warehouse; damage charged per the price list
    REFUND = "refund"  # deposit − what is owed, paid once; a shortfall stays owed
    CERTIFICATE = "certificate"  # the closure certificate and the itemised statement


class StepState(TextChoices):
    PENDING = "pending", _("to do")
    RUNNING = "running", _("running")
    WAITING = "waiting", _("waiting")  # for someone: see ``waiting_for``
    DONE = "done", _("done")
    FAILED = "failed", _("needs attention")  # a refusal a person must look at; "retry" starts it again
    SKIPPED = "skipped", _("not needed")


class Party(TextChoices):
    """Whom a waiting step waits for."""

    SYSTEM = "system", _("posfleet")
    SETTLEMENT = "settlement", _("the T+1 settlement")
    CHANNEL = "channel", _("the payment channel")
    DEVICE = "device", _("the device")
    MERCHANT = "merchant", _("the merchant")
    WAREHOUSE = "warehouse", _("the warehouse")
    STAFF = "staff", _("the provider's staff")


@dataclass(frozen=True)
class StepSpec:
    name: StepName
    label: object
    after: tuple[StepName, ...] = ()
    # What the merchant's portal says while the step is not done (plain words, what happens next).
    next_words: object = ""


N = StepName
STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        N.CONTRACT,
        _("Contract ended"),
        next_words=_("We end the contract: fees due are charged, later ones are cancelled."),
    ),
    StepSpec(
        N.UNBIND,
        _("Payment channels unbound"),
        after=(N.CONTRACT,),
        next_words=_("We ask each payment channel (UnionPay, Alipay, WeChat Pay…) to unbind the terminal."),
    ),
    StepSpec(
        N.SETTLE,
        _("Final settlement"),
        after=(N.CONTRACT,),
        next_words=_("Your last sales are paid with the next daily (T+1) settlement."),
    ),
    StepSpec(
        N.BACKUP,
        _("Data backed up"),
        after=(N.SETTLE,),
        next_words=_("We back up your transactions, settlements and statements for you to download."),
    ),
    StepSpec(
        N.WIPE,
        _("Device wiped"),
        after=(N.UNBIND, N.BACKUP),
        next_words=_("The device erases its data when it next connects; keep it switched on."),
    ),
    StepSpec(
        N.RETURN,
        _("Device returned"),
        after=(N.WIPE,),
        next_words=_("Send the device back to the address shown before the deadline."),
    ),
    StepSpec(
        N.INSPECT,
        _("Device inspected"),
        after=(N.RETURN,),
        next_words=_("The warehouse checks the device's condition."),
    ),
    StepSpec(
        N.REFUND,
        _("Deposit refunded"),
        after=(N.SETTLE, N.INSPECT),
        next_words=_("Your deposit, less what is owed, is paid to your settlement account."),
    ),
    StepSpec(
        N.CERTIFICATE,
        _("Closure certificate"),
        after=(N.REFUND,),
        next_words=_("You receive the closure certificate and the final statement."),
    ),
)
SPEC: dict[StepName, StepSpec] = {spec.name: spec for spec in STEPS}
FINISHED_STEP = frozenset({StepState.DONE, StepState.SKIPPED})


def runnable(states: dict[str, str]) -> list[StepName]:
    """The steps that may start now: pending, with every step they come after finished."""
    return [
        spec.name
        for spec in STEPS
        if states.get(spec.name) == StepState.PENDING
        and all(states.get(before) in FINISHED_STEP for before in spec.after)
    ]


def all_finished(states: dict[str, str]) -> bool:
    return all(states.get(spec.name) in FINISHED_STEP for spec in STEPS)


def next_state(current: str | None, command: str) -> CaseStatus | None:
    """The status ``command`` leads to from ``current``, or None when it is not allowed there."""
    try:
        return TRANSITIONS.get((S(current) if current is not None else None, C(command)))
    except ValueError:
        return None


def commands_from(current: str) -> list[CaseCommand]:
    return [command for (status, command) in TRANSITIONS if status == current and command not in AUTOMATIC]


def review_overdue(status: str, review_due_at: datetime | None, at: datetime) -> bool:
    """A case waiting for review past its clock (the SLA, CLOSURE_REVIEW_DAYS)."""
    return status == S.REQUESTED and review_due_at is not None and review_due_at < at


def to_mermaid() -> str:
    """The case and its steps as Mermaid diagrams (docs/state-machines/closure.md)."""
    lines = ["stateDiagram-v2"]
    for (status, command), target in TRANSITIONS.items():
        lines.append(f"    {status.value if status else '[*]'} --> {target.value}: {command.value}")
    for status in sorted(FINAL, key=lambda s: s.value):
        lines.append(f"    {status.value} --> [*]")
    return "\n".join(lines) + "\n"


def steps_to_mermaid() -> str:
    """The steps of a running case and what each waits for, as a Mermaid flowchart."""
    lines = ["flowchart LR"]
    for spec in STEPS:
        if not spec.after:
            lines.append(f"    approved([approved]) --> {spec.name.value}")
        for before in spec.after:
            lines.append(f"    {before.value} --> {spec.name.value}")
    lines.append(f"    {STEPS[-1].name.value} --> completed([completed])")
    return "\n".join(lines) + "\n"
