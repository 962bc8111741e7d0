"""Whose figures a report shows, and over which period: the one place the reports read a request.

- **Who.** ``reports.view_reports`` (rules.py) says who may read reports at all; a merchant is refused
  (403). The provider's staff read the whole fleet; an agent reads its own subtree — through the very
  selectors that scope everything else (``terminals_visible_to``, ``cases_visible_to``…), asked for the
  reader. Narrowing to one agent (``agent=<code>``, and the agent's own page) asks the same selectors
  for that agent's people: ``agent_viewer`` stands in for a user of the agent's organisation, so an
  agent's figures are, by construction, what its own users see — no second copy of any scope rule.
  An agent the reader may not see is not found (404), as everywhere.
- **When.** ``ReportParams``: ``months`` (back, or ahead for the expiry forecast), ``days`` (the
  dormant terminals' silence) and the agent; bad input is refused with a clear message naming the field
  (422) before anything is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from posfleet.iam.models import Role, User
from posfleet.parties.selectors import Agent, agent_for
from posfleet.platform.errors import PermissionDenied, ValidationFailed

MONTHS_DEFAULT, MONTHS_MAX = 12, 36
DAYS_DEFAULT, DAYS_MAX = 30, 365
MONTH_CHOICES = (3, 6, 12, 24, 36)
DAYS_CHOICES = (7, 14, 30, 60, 90, 180)


@dataclass(frozen=True)
class ReportParams:
    months: int = MONTHS_DEFAULT  # calendar months back (this one included), or ahead for the forecast
    days: int = DAYS_DEFAULT  # dormant terminals: no approved sale for this many days
    agent: str = ""  # an agent's code: its subtree only ("" = the reader's whole scope)

    def record(self) -> dict[str, Any]:
        """What an export's audit row keeps of the question."""
        return {"months": self.months, "days": self.days, **({"agent": self.agent} if self.agent else {})}


def _whole(data: Mapping[str, Any], key: str, default: int, top: int) -> int:
    raw = data.get(key)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= top:
        raise ValidationFailed(
            _("%(field)s must be a whole number from 1 to %(top)s.") % {"field": key, "top": top}, field=key
        )
    return int(text)


def params_from(data: Mapping[str, Any]) -> ReportParams:
    """The parameters of a request (query string), checked; ``ValidationFailed`` names a bad one."""
    agent = str(data.get("agent") or "").strip().upper()
    if len(agent) > 16:
        raise ValidationFailed(_("Unknown agent."), field="agent")
    return ReportParams(
        months=_whole(data, "months", MONTHS_DEFAULT, MONTHS_MAX),
        days=_whole(data, "days", DAYS_DEFAULT, DAYS_MAX),
        agent=agent,
    )


def may_read_reports(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm("reports.view_reports"))


def agent_viewer(agent: Agent) -> User:
    """A stand-in for the people of ``agent``'s organisation (never saved): the selectors asked for it
    answer exactly what the agent's own users see — its merchants, its sub-agents' and their terminals,
    cases, applications and complaints."""
    return User(
        username=f"agent:{agent.code}", role=Role.AGENT, organisation=agent.organisation, is_active=True
    )


@dataclass(frozen=True)
class Viewer:
    """Whose figures: ``user`` is asked of every selector; ``agent`` is the agent narrowed to, if any."""

    user: User
    agent: Agent | None
    reader: User  # who asked (the audit row of an export names them)

    @property
    def label(self) -> str:
        return self.user.get_username()


def report_viewer(reader: User, agent_code: str = "") -> Viewer:
    """The viewer of a report ``reader`` asks for: refused (``PermissionDenied``) unless they may read
    reports; narrowed to ``agent_code`` when given (``NotFound`` when the reader may not see it)."""
    if not may_read_reports(reader):
        raise PermissionDenied(_("Reports are for the provider's staff and agents."))
    if not agent_code:
        return Viewer(reader, None, reader)
    agent = agent_for(reader, agent_code)
    return Viewer(agent_viewer(agent), agent, reader)


# -- calendar months, in the provider's time zone ---------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def months_back(count: int, today: date) -> list[date]:
    """The first days of the last ``count`` months, this one included, oldest first."""
    this = month_start(today)
    return [add_months(this, i) for i in range(1 - count, 1)]


def months_ahead(count: int, today: date) -> list[date]:
    """The first days of this month and the ``count - 1`` after it."""
    this = month_start(today)
    return [add_months(this, i) for i in range(count)]


def month_key(first: date) -> str:
    """``2026-11``: how a month is written in rows, files and the API."""
    return f"{first.year:04d}-{first.month:02d}"
