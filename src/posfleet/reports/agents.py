"""An agent's own page (服务商主页): its merchants and terminals by status, its activity and its
merchants' takings month by month, and what is open with it — applications, closure cases, complaints.

Everything is read as the agent's own people see it (``scope.agent_viewer``) through the same selectors
as the reports and the lists: the page's figures are the reports' figures narrowed to the agent. The
provider's staff open any agent's page; an agent opens its own and its sub-agents' (the tenancy rule,
``agents_visible_to``); anyone else's answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from posfleet.closure.complaint_selectors import complaints_visible_to, filter_complaints
from posfleet.closure.selectors import cases_visible_to, filter_cases
from posfleet.enrollment.selectors import visible_applications
from posfleet.enrollment.states import FINAL as APPLICATION_FINAL
from posfleet.enrollment.states import ApplicationStatus
from posfleet.fleet.selectors import count_by_status
from posfleet.fleet.states import Status
from posfleet.iam.models import User
from posfleet.parties.selectors import Agent, MerchantStatus, agents_visible_to, merchants_visible_to
from posfleet.platform.clock import now
from posfleet.reports.catalogue import REPORTS, ReportResult, run
from posfleet.reports.scope import ReportParams, Viewer, report_viewer
from posfleet.reports.selectors import review_late

LISTED = 10  # open applications, cases and complaints shown on the page (the lists have the rest)


@dataclass(frozen=True)
class Tally:
    code: str
    label: str
    count: int


@dataclass(frozen=True)
class OpenItems:
    """What is open with the agent of one kind: how many, how many are past their clock, the first
    ``LISTED``."""

    count: int
    late: int
    items: list[Any]


@dataclass(frozen=True)
class AgentOverview:
    agent: Agent
    viewer: Viewer
    params: ReportParams
    sub_agents: int
    merchants: list[Tally]
    terminals: list[Tally]
    activity: ReportResult
    volume: ReportResult
    applications: OpenItems
    cases: OpenItems
    complaints: OpenItems

    @property
    def merchants_total(self) -> int:
        return sum(t.count for t in self.merchants)

    @property
    def terminals_total(self) -> int:
        return sum(t.count for t in self.terminals)


def own_agent(user: User) -> Agent | None:
    """The agent an agent user works for (None for everyone else)."""
    if not user.is_authenticated or user.organisation_id is None:
        return None
    return agents_visible_to(user).filter(organisation_id=user.organisation_id).first()


def agent_overview(reader: User, code: str, params: ReportParams) -> AgentOverview:
    """Agent ``code``'s page as ``reader`` may see it: ``PermissionDenied`` unless they may read
    reports, ``NotFound`` unless they may see the agent."""
    viewer = report_viewer(reader, code)
    assert viewer.agent is not None
    user = viewer.user
    at = now()

    by_status = count_by_status(user)
    merchant_rows = merchants_visible_to(user).order_by().values("status").annotate(n=Count("pk"))
    merchants = {r["status"]: r["n"] for r in merchant_rows}

    applications = (
        visible_applications(user).exclude(status__in=APPLICATION_FINAL).order_by("submitted_at", "pk")
    )
    cases = filter_cases(cases_visible_to(user), "open", at).order_by("requested_at", "pk")
    complaints = filter_complaints(complaints_visible_to(user), "open", user, at).order_by("raised_at", "pk")

    return AgentOverview(
        agent=viewer.agent,
        viewer=viewer,
        params=params,
        sub_agents=agents_visible_to(user).exclude(pk=viewer.agent.pk).count(),
        merchants=[
            Tally(s.value, str(s.label), merchants[s.value]) for s in MerchantStatus if merchants.get(s.value)
        ],
        terminals=[
            Tally(s.value, str(s.label), by_status[s.value]) for s in Status if by_status.get(s.value)
        ],
        activity=run(REPORTS["activity"], viewer, params),
        volume=run(REPORTS["transactions"], viewer, params),
        applications=OpenItems(
            count=applications.count(),
            late=applications.filter(review_late(ApplicationStatus.SUBMITTED, at)).count(),
            items=list(applications[:LISTED]),
        ),
        cases=OpenItems(
            count=cases.count(),
            late=filter_cases(cases_visible_to(user), "late", at).count(),
            items=list(cases[:LISTED]),
        ),
        complaints=OpenItems(
            count=complaints.count(),
            late=filter_complaints(complaints_visible_to(user), "late", user, at).count(),
            items=list(complaints[:LISTED]),
        ),
    )
