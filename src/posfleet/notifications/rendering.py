"""A notice in words: its parameters (language-neutral: the event's payload and the facts around it,
``services.params_of``) rendered in the reader's language, at the moment it is read or sent.

One formatting rule (ADR 0026): a parameter named ``*_on`` is a date in the locale's format, ``*_at`` or
``*_until`` a moment, ``*_fen`` an amount in yuan through ``platform.money.format_fen`` (under the name
without ``_fen``: ``refund_fen`` fills ``%(refund)s``); ``when`` and ``day`` are when the event happened.
Codes in the words become labels here too: reasons, closure steps, complaint categories.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext_lazy as _

from posfleet.closure.complaint_states import ComplaintCategory
from posfleet.closure.states import SPEC as CLOSURE_STEPS
from posfleet.closure.states import ClosureReason, StepName
from posfleet.enrollment.review import explained
from posfleet.fleet.states import SPECS, Command
from posfleet.notifications.models import Channel
from posfleet.notifications.notices import ESCALATION, WORDS
from posfleet.platform.money import format_fen


def render(key: str, params: dict[str, Any], language: str) -> tuple[str, str]:
    """The subject and body of notice ``key`` in ``language``, from its language-neutral ``params``
    (``services.params_of``): dates and amounts are formatted here, for this reader; a value missing
    shows as "—". Raises ``KeyError`` for a notice kind that no longer exists."""
    with translation.override(language):
        if key == ESCALATION:
            return _render_escalation(params, language)
        words = WORDS[key]
        values = facts(params)
        if "reason" in values and "command" in values:
            values["reason"] = reason_label(values["command"], values["reason"])
        if key.startswith("application.") and params.get("reasons"):
            codes = str(params["reasons"]).split(",")
            values["reason"] = explained(codes, str(params.get("reason") or ""))
        if key.startswith("closure."):
            values = closure_values(values)
        elif key.startswith("complaint."):
            values = complaint_values(values)
        if "review_due_at" in values:
            values.setdefault("review_due", values["review_due_at"])  # the applications' words
        filled = _Defaulting(values)
        return str(words.subject) % filled, str(words.body) % filled


def _render_escalation(params: dict[str, Any], language: str) -> tuple[str, str]:
    """An undelivered notice told to the agent: its subject (in this reader's language), the merchant,
    the channel in words and the attempts."""
    original = str(params.get("notice", ""))
    subject = render(original, params.get("params") or {}, language)[0] if original in WORDS else "—"
    channel = params.get("channel", "")
    values = _Defaulting(
        {
            "subject": subject,
            "merchant_name": str(params.get("merchant_name", "")),
            "mid": str(params.get("mid", "")),
            "channel": str(Channel(channel).label) if channel in Channel.values else "—",
            "attempts": str(params.get("attempts", "")),
        }
    )
    words = WORDS[ESCALATION]
    return str(words.subject) % values, str(words.body) % values


def facts(params: dict[str, Any]) -> dict[str, str]:
    """The parameters as words in the active language: ``*_on`` dates and ``*_at``/``*_until`` moments
    in the locale's format (moments in the provider's time zone), ``*_fen`` amounts in yuan (also under
    the name without ``_fen``), ``when``/``day`` the moment and the day the event happened. An empty
    value is left out (it shows as "—")."""
    out: dict[str, str] = {}
    for name, value in params.items():
        if value is None or value == "" or isinstance(value, dict | list):
            continue
        if name.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
            out[name] = str(value)
            out[name.removesuffix("_fen")] = format_fen(value)
            continue
        text = str(value)
        if name.endswith("_on"):
            text = _day(text)
        elif name.endswith(("_at", "_until")):
            text = _moment(text)
        out[name] = text
    occurred = params.get("occurred_at")
    if isinstance(occurred, str) and occurred:
        out["when"] = out["occurred_at"]
        moment = _parse_moment(occurred)
        out["day"] = formats.date_format(timezone.localtime(moment), "DATE_FORMAT") if moment else occurred
    return out


def _day(text: str) -> str:
    try:
        return formats.date_format(date.fromisoformat(text), "DATE_FORMAT")
    except ValueError:
        return text


def _parse_moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _moment(text: str) -> str:
    """A moment in the language's one format (``config/formats``): "6 Dec 2026 10:00",
    "2026年12月6日 10:00"."""
    moment = _parse_moment(text)
    if moment is None:
        return text
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "—"


def reason_label(command: str, reason: str) -> str:
    try:
        choices = SPECS[Command(command)].reasons
    except (ValueError, KeyError):
        choices = None
    if choices is not None and reason in choices.values:
        return str(choices(reason).label)
    return reason or "—"


def complaint_values(values: dict[str, str]) -> dict[str, str]:
    out = dict(values)
    out["number"] = values.get("number") or values.get("sn", "")
    if values.get("category") in ComplaintCategory.values:
        out["category"] = str(ComplaintCategory(values["category"]).label)
    case = values.get("case", "")
    out["case_words"] = (_(", with closure case %(case)s") % {"case": case}) if case else ""
    return out


def closure_values(values: dict[str, str]) -> dict[str, str]:
    """The words of a closure notice from its facts: the case number (the event's aggregate id, which
    the parameters call ``sn``), the reason and the step in words, the return address."""
    out = dict(values)
    out["number"] = values.get("number") or values.get("sn", "")
    if values.get("reason") in ClosureReason.values:
        out["reason"] = str(ClosureReason(values["reason"]).label)
    if values.get("step") in CLOSURE_STEPS:
        out["step_label"] = str(CLOSURE_STEPS[StepName(values["step"])].label)
    if not values.get("return_address"):
        out["return_address"] = settings.POSFLEET_CLOSURE["RETURN_ADDRESS"]
    return out
