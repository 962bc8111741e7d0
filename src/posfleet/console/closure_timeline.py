"""How a closure case's steps look on its page: each step of ``closure.selectors.case_view`` as a row of
the timeline — an icon and a tone for its state, one line that says where it stands (done, running,
waiting for whom since when, needs attention and why, to do) and its evidence summarised as facts, with
a link where the console has a page for it (the contract, a settlement batch, the backup file, the
device's commands).

Labels come from the domain (closure/states.py, parties' channels, fleet's device commands); the words
here only name the facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from posfleet.closure.selectors import StepView
from posfleet.closure.states import StepState
from posfleet.fleet import selectors as fleet
from posfleet.parties.channels import Channel
from posfleet.platform.money import format_fen

ICONS = {
    StepState.DONE: "check-lg",
    StepState.SKIPPED: "dash-lg",
    StepState.RUNNING: "arrow-repeat",
    StepState.WAITING: "hourglass-split",
    StepState.FAILED: "exclamation-lg",
    StepState.PENDING: "circle",
}
TONES = {
    StepState.DONE: "success",
    StepState.SKIPPED: "secondary",
    StepState.RUNNING: "primary",
    StepState.WAITING: "warning",
    StepState.FAILED: "danger",
    StepState.PENDING: "light",
}
UNBIND_OUTCOMES: dict[str, str | Promise] = {
    "done": _("unbound"),
    "refused": _("refused by the channel"),
    "retry": _("no answer yet; asked again"),
}
DISPOSALS: dict[str, str | Promise] = {"refurbish": _("refurbished"), "scrap": _("scrapped")}


@dataclass(frozen=True)
class Fact:
    label: str | Promise
    value: str
    url: str = ""
    mono: bool = False  # a reference, a code, an SN: shown in a fixed-width font


@dataclass(frozen=True)
class TimelineStep:
    step: StepView
    number: int
    icon: str
    tone: str
    facts: list[Fact] = field(default_factory=list)
    retry: bool = False  # the viewer may start it again

    @property
    def state_label(self) -> str:
        return self.step.state_label or str(StepState.PENDING.label)

    @property
    def unfinished(self) -> bool:
        return self.step.state not in (StepState.DONE, StepState.SKIPPED)


def _when(value: Any) -> str:
    """A moment (in the console's time zone) or a day from evidence, which holds them as ISO text."""
    if isinstance(value, str):
        day = parse_date(value) if len(value) == 10 else None
        if day is not None:
            return date_format(day, "SHORT_DATE_FORMAT")
        value = parse_datetime(value) or value
    if isinstance(value, datetime):
        return date_format(
            timezone.localtime(value) if timezone.is_aware(value) else value, "SHORT_DATETIME_FORMAT"
        )
    return str(value or "")


def _money(value: Any) -> str:
    try:
        return format_fen(int(value or 0))
    except (TypeError, ValueError):
        return str(value)


def _channel(value: str) -> str:
    try:
        return str(Channel(value).label)
    except ValueError:
        return value


def _command_state(value: str) -> str:
    if value == "not_applicable":
        return str(_("not needed (no smart device connected)"))
    try:
        return str(fleet.DeviceCommand.State(value).label)
    except ValueError:
        return value


def _contract(ev: dict[str, Any], links: bool) -> list[Fact]:
    facts = []
    for c in ev.get("contracts") or []:
        pk = c.get("contract")
        facts.append(
            Fact(
                _("Contract"),
                str(pk),
                reverse("console:contract", args=[pk]) if links and pk else "",
                mono=True,
            )
        )
        if c.get("ended_on"):
            facts.append(Fact(_("Ended on"), _when(c["ended_on"])))
        for ref in c.get("fees_charged") or []:
            facts.append(Fact(_("Fee journal"), ref, mono=True))
        if c.get("penalty_journal"):
            facts.append(Fact(_("Penalty journal"), c["penalty_journal"], mono=True))
    if "fees_charged_fen" in ev:
        facts.append(Fact(_("Fees charged"), _money(ev["fees_charged_fen"])))
    if ev.get("fees_lapsed_fen"):
        facts.append(Fact(_("Later fees cancelled"), _money(ev["fees_lapsed_fen"])))
    if "penalty_fen" in ev:
        facts.append(Fact(_("Early-termination penalty"), _money(ev["penalty_fen"])))
    return facts


def _unbind(ev: dict[str, Any], sns: dict[int, str]) -> list[Fact]:
    facts = []
    for key, answer in sorted((ev.get("channels") or {}).items()):
        terminal_id, _sep, channel = key.partition(":")
        sn = sns.get(int(terminal_id)) if terminal_id.isdigit() else None
        outcome = str(UNBIND_OUTCOMES.get(answer.get("outcome", ""), answer.get("outcome", "")))
        detail = " · ".join(
            str(part)
            for part in (outcome, answer.get("code"), answer.get("message"), answer.get("reference"))
            if part
        )
        label = f"{_channel(channel)} ({sn})" if sn else _channel(channel)
        facts.append(Fact(label, detail))
    if not facts and ev.get("channels") == {}:
        facts.append(Fact(_("Payment channels"), str(_("none bound"))))
    return facts


def _settle(ev: dict[str, Any], links: bool) -> list[Fact]:
    facts = []
    if ev.get("stopped_on"):
        facts.append(Fact(_("Terminals stopped on"), _when(ev["stopped_on"])))
    if ev.get("settled_through"):
        facts.append(Fact(_("Settled through"), _when(ev["settled_through"])))
    for batch in ev.get("batches") or []:
        label = _("Settlement of %(day)s") % {"day": _when(batch.get("date"))}
        value = _money(batch.get("payout_fen"))
        if batch.get("journal"):
            value = f"{value} · {batch['journal']}"
        url = reverse("console:settlement", args=[batch["id"]]) if links and batch.get("id") else ""
        facts.append(Fact(label, value, url))
    if "paid_fen" in ev:
        facts.append(Fact(_("Paid with the final settlement"), _money(ev["paid_fen"])))
    return facts


def _backup(ev: dict[str, Any]) -> list[Fact]:
    if not ev.get("backup"):
        return []
    size = int(ev.get("bytes") or 0)
    return [
        Fact(
            _("Data backup"),
            _("download (%(kb)s KB)") % {"kb": f"{max(1, size // 1024):,}"},
            reverse("console:backup_file", args=[ev["backup"]]),
        ),
        Fact("SHA-256", str(ev.get("sha256", ""))[:16] + "…", mono=True),
    ]


def _wipe(ev: dict[str, Any], staff: bool) -> list[Fact]:
    facts = []
    for sn, record in sorted((ev.get("devices") or {}).items()):
        parts = [_command_state(str(record.get("wipe", "")))]
        if record.get("acknowledged_at"):
            parts.append(_when(record["acknowledged_at"]))
        if record.get("credential_revoked"):
            parts.append(str(_("device key revoked")))
        url = reverse("console:terminal_commands", args=[sn]) if staff and record.get("command") else ""
        facts.append(Fact(_("Wipe of %(sn)s") % {"sn": sn}, " · ".join(parts), url))
    return facts


def _return(ev: dict[str, Any]) -> list[Fact]:
    facts = []
    if ev.get("tracking_no"):
        facts.append(Fact(_("Tracking number"), ev["tracking_no"], mono=True))
    for sn, at in sorted((ev.get("received") or {}).items()):
        facts.append(Fact(_("%(sn)s received") % {"sn": sn}, _when(at)))
    for sn, charge in sorted((ev.get("not_returned") or {}).items()):
        value = _money((charge or {}).get("amount_fen"))
        if (charge or {}).get("journal"):
            value = f"{value} · {charge['journal']}"
        facts.append(Fact(_("%(sn)s not returned: recovery fee") % {"sn": sn}, value))
    return facts


def _inspect(ev: dict[str, Any]) -> list[Fact]:
    facts = []
    for sn, grade in sorted((ev.get("inspected") or {}).items()):
        parts = [_("grade %(grade)s") % {"grade": grade.get("grade", "")}]
        if grade.get("human_damage"):
            parts.append(_("damage by a person: %(amount)s") % {"amount": _money(grade.get("damage_fen"))})
        if grade.get("recovery_value_fen"):
            parts.append(
                _("recovery value to credit: %(amount)s")
                % {"amount": _money(grade.get("recovery_value_fen"))}
            )
        if grade.get("disposal"):
            parts.append(str(DISPOSALS.get(grade["disposal"], grade["disposal"])))
        facts.append(Fact(sn, " · ".join(str(p) for p in parts), mono=False))
    return facts


def _refund(ev: dict[str, Any]) -> list[Fact]:
    facts = []
    if "refund_fen" in ev:
        facts.append(Fact(_("Refunded"), _money(ev["refund_fen"])))
    if ev.get("paid_owed_fen"):
        facts.append(Fact(_("Taken from the deposit for what was owed"), _money(ev["paid_owed_fen"])))
    if ev.get("recovery_credited_fen"):
        facts.append(Fact(_("Device recovery value credited"), _money(ev["recovery_credited_fen"])))
        facts.append(Fact(_("Recovery value paid out"), _money(ev.get("recovery_paid_out_fen"))))
    if ev.get("still_owed_fen"):
        facts.append(Fact(_("Still owed"), _money(ev["still_owed_fen"])))
    for deposit in ev.get("deposits") or []:
        if deposit.get("journal"):
            facts.append(Fact(_("Deposit journal"), deposit["journal"], mono=True))
    for _sn, credit in sorted((ev.get("recovery_credits") or {}).items()):
        if (credit or {}).get("journal"):
            facts.append(Fact(_("Recovery value journal"), credit["journal"], mono=True))
    return facts


def _certificate(ev: dict[str, Any]) -> list[Fact]:
    facts = []
    if ev.get("certificate_code"):
        facts.append(Fact(_("Verification code"), ev["certificate_code"], mono=True))
    if ev.get("issued_at"):
        facts.append(Fact(_("Issued"), _when(ev["issued_at"])))
    return facts


def evidence_facts(step: StepView, *, sns: dict[int, str], staff: bool, links: bool = True) -> list[Fact]:
    """A step's evidence as facts a person reads; links only where the viewer has the page."""
    ev = step.evidence or {}
    if not ev:
        return []
    name = step.name
    if name == "contract":
        return _contract(ev, links)
    if name == "unbind":
        return _unbind(ev, sns)
    if name == "settle":
        return _settle(ev, links)
    if name == "backup":
        return _backup(ev)
    if name == "wipe":
        return _wipe(ev, staff)
    if name == "return":
        return _return(ev)
    if name == "inspect":
        return _inspect(ev)
    if name == "refund":
        return _refund(ev)
    if name == "certificate":
        return _certificate(ev)
    return []


def timeline(
    steps: list[StepView], *, sns: dict[int, str], staff: bool, may_retry: bool
) -> list[TimelineStep]:
    out = []
    for number, step in enumerate(steps, start=1):
        state = step.state if step.state in StepState.values else StepState.PENDING
        out.append(
            TimelineStep(
                step=step,
                number=number,
                icon=ICONS[StepState(state)],
                tone=TONES[StepState(state)],
                facts=evidence_facts(step, sns=sns, staff=staff),
                retry=may_retry and step.state == StepState.FAILED,
            )
        )
    return out
