"""Issue 14's permission matrix (QUALITY.md "Who may do what"): every page and API operation issue 14
added — the merchant's home, the inbox, the terminal list's dormant and selection filters and its
selection, the terminal page's link targets, the comparison, plan change requests, every report with its
files, the agent's page — answered to everyone: nobody (login page / 401), the provider's staff, merchant
A's agent, the sub-agent below it (who does not see A's merchant), the other agent, merchant A and
merchant B. Another tenant's object answers 404 (and says nothing of it); a role without the right 403;
a wrong method 405. A refused write changes nothing.

The expected answers are written out below, by hand, from the rules of DOMAIN.md, the ADRs 0026-0029
and QUALITY.md — not read from the code under test.

The world: merchant A (agent A) with its October 2026 (a terminal, its contract and deposit, the
standard plan; ``test_money_access.money``), merchant B with a terminal; a plan of ours cheaper than the
standard one ("lite") and, for the decisions, merchant A's waiting request to move to it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from posfleet.api.tests.helpers import Api, new_token
from posfleet.billing.models import PlanAssignment, PlanChangeRequest, RatePlan
from posfleet.billing.services.plan_changes import plan_change_request
from posfleet.billing.services.plans import RuleSpec, plan_create
from posfleet.console.models import TerminalSelection
from posfleet.console.tests.test_money_access import MID_A, MID_B, money  # noqa: F401  (fixture)
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command
from posfleet.notifications.models import InboxItem
from posfleet.notifications.services import deliver_due
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.reports.catalogue import REPORTS
from posfleet.testing.personas import SYSTEM
from posfleet.testing.refusals import assert_nothing_recorded
from posfleet.testing.sessions import sign_in

WHO = ("anon", "admin", "reviewer", "warehouse", "agent_a", "agent_a1", "agent_b", "merchant_a", "merchant_b")
SN_A = "SN-STMT-0001"  # merchant A's (build_october)
SN_B = "SN-MONEY-B01"  # merchant B's
REPORT_NAMES = ("fleet", "activity", "dormant", "expiry", "transactions", "declines", "sla", "refunds")


def table(text: str) -> list[tuple[str, dict[str, int]]]:
    """Rows of ``path  anon admin reviewer warehouse agent_a agent_a1 agent_b merchant_a merchant_b``;
    ``{report}`` in a path stands for every report."""
    rows = []
    for line in text.strip().splitlines()[1:]:
        path, *codes = line.split()
        assert len(codes) == len(WHO), line
        expected = dict(zip(WHO, map(int, codes), strict=True))
        names = REPORT_NAMES if "{report}" in path else ("",)
        rows += [(path.replace("{report}", name), expected) for name in names]
    return rows


# -- the console's pages (GET) --------------------------------------------------------------------
# 302: to the login page (anon); for an agent's /agents/me/, to its own page.

PAGES = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
/console/                                            302  200   200  200  200 200  200 200  200
/console/inbox/                                      302  200   200  200  200 200  200 200  200
/console/inbox/?show=unread                          302  200   200  200  200 200  200 200  200
/console/notifications/                              302  200   200  200  403 403  403 403  403
/console/terminals/?dormant=on&dormant_days=30       302  200   200  200  200 200  200 200  200
/console/terminals/?store=S1                         302  200   200  200  200 200  200 200  200
/console/terminals/?selected=1                       302  200   200  200  200 200  200 200  200
/console/terminals/{sn_a}/                           302  200   200  200  200 404  404 200  404
/console/terminals/{sn_b}/                           302  200   200  200  404 404  200 404  200
/console/merchants/{mid_a}/money/                    302  200   200  200  200 404  404 200  404
/console/merchants/{mid_a}/statements/               302  200   200  200  200 404  404 200  404
/console/contracts/{contract}/                       302  200   200  200  200 404  404 200  404
/console/transactions/?terminal={sn_a}               302  200   200  200  200 200  200 200  200
/console/settlements/                                302  200   200  200  200 200  200 403  403
/console/merchants/{mid_a}/compare/                  302  200   200  200  200 404  404 200  404
/console/merchants/{mid_b}/compare/                  302  200   200  200  404 404  200 404  200
/console/plan-changes/                               302  200   200  200  200 200  200 200  200
/console/plan-changes/?tab=all                       302  200   200  200  200 200  200 200  200
/console/reports/                                    302  200   200  200  200 200  200 404  404
/console/reports/{report}/                           302  200   200  200  200 200  200 404  404
/console/reports/{report}/export/csv/                302  200   200  200  200 200  200 404  404
/console/reports/{report}/export/xlsx/               302  200   200  200  200 200  200 404  404
/console/reports/fleet/?agent=AG-A                   302  200   200  200  200 404  404 404  404
/console/reports/fleet/export/csv/?agent=AG-B        302  200   200  200  404 404  200 404  404
/console/reports/nothing/                            302  404   404  404  404 404  404 404  404
/console/reports/fleet/export/pdf/                   302  404   404  404  404 404  404 404  404
/console/agents/me/                                  302  404   404  404  302 302  302 404  404
/console/agents/AG-A/                                302  200   200  200  200 404  404 404  404
/console/agents/AG-A1/                               302  200   200  200  200 200  404 404  404
/console/agents/AG-B/                                302  200   200  200  404 404  200 404  404
/console/agents/AG-NONE/                             302  404   404  404  404 404  404 404  404
""")

# The wrong method: the write endpoints refuse GET, the pages refuse POST (anon: the login page first).
METHODS = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
GET:/console/inbox/read/                             302  405   405  405  405 405  405 405  405
GET:/console/terminals/selection/                    302  405   405  405  405 405  405 405  405
GET:/console/merchants/{mid_a}/plan-changes/         302  405   405  405  405 405  405 405  405
GET:/console/plan-changes/{request}/approve/         302  405   405  405  405 405  405 405  405
POST:/console/plan-changes/                          302  405   405  405  405 405  405 405  405
POST:/console/reports/fleet/                         302  405   405  405  405 405  405 405  405
POST:/console/agents/AG-A/                           302  405   405  405  405 405  405 405  405
""")

# -- the API's reads (GET) ------------------------------------------------------------------------

API_READS = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
/me/home                                             401  403   403  403  403 403  403 200  200
/notifications                                       401  200   200  200  200 200  200 200  200
/notifications/deliveries                            401  200   200  200  403 403  403 403  403
/terminals?dormant_days=30                           401  200   200  200  200 200  200 200  200
/terminals/{sn_a}                                    401  200   200  200  200 404  404 200  404
/merchants/{mid_a}/comparison                        401  200   200  200  200 404  404 200  404
/merchants/{mid_b}/comparison                        401  200   200  200  404 404  200 404  200
/plan-change-requests                                401  200   200  200  200 200  200 200  200
/plan-change-requests/{request}                      401  200   200  200  200 404  404 200  404
/plan-change-requests/999999                         401  404   404  404  404 404  404 404  404
/reports                                             401  200   200  200  200 200  200 403  403
/reports/{report}                                    401  200   200  200  200 200  200 403  403
/reports/fleet?agent=AG-A1                           401  200   200  200  200 200  404 403  403
/reports/fleet?agent=AG-B                            401  200   200  200  404 404  200 403  403
""")

API_METHODS = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
POST:/me/home                                        405  405   405  405  405 405  405 405  405
POST:/reports/fleet                                  405  405   405  405  405 405  405 405  405
GET:/plan-change-requests/{request}/approve          405  405   405  405  405 405  405 405  405
""")

# -- writes: what each one answers, by whom (the successes' effects and the refusals' nothing below) --

CONSOLE_WRITES = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
request                                              302  403   403  403  302 404  404 302  404
approve                                              302  302   403  403  403 404  404 403  404
reject                                               302  302   403  403  403 404  404 403  404
withdraw                                             302  403   403  403  302 404  404 302  404
""")

API_WRITES = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
request                                              401  403   403  403  201 404  404 201  404
approve                                              401  200   403  403  403 404  404 403  404
reject                                               401  200   403  403  403 404  404 403  404
withdraw                                             401  403   403  403  200 404  404 200  404
""")

OWN_AGENT = {"agent_a": "AG-A", "agent_a1": "AG-A1", "agent_b": "AG-B"}
DONE = {"request": "requested", "approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}


def test_the_matrix_names_every_report():
    assert set(REPORT_NAMES) == set(REPORTS)  # a new report gets its rows here


@pytest.fixture
def shop(money, world):  # noqa: F811
    """Merchant A's money world, a cheaper plan of ours, and merchant A's waiting request for it."""
    plan_create(
        actor=SYSTEM,
        code="lite",
        name="Lite",
        effective_from=date(2020, 1, 1),
        rules={m: RuleSpec(Decimal("0.0030")) for m in ("credit", "debit", "qr", "nfc", "foreign")},
    )
    return money


def waiting_request(world: Any) -> PlanChangeRequest:
    return plan_change_request(
        actor=Actor.for_user(world.user("merchant_a")),
        merchant=world.merchant_a,
        to_plan=RatePlan.objects.get(code="lite"),
        effective_from=today() + timedelta(days=10),
        note="",
    )


def split(path: str) -> tuple[str, str]:
    """``"POST:/x"`` -> ("POST", "/x"); a path alone is a GET."""
    for method in ("GET", "POST"):
        if path.startswith(f"{method}:"):
            return method, path[len(method) + 1 :]
    return "GET", path


def fill(path: str, shop: Any, request_id: int) -> str:
    return path.format(
        mid_a=MID_A, mid_b=MID_B, sn_a=SN_A, sn_b=SN_B, contract=shop.contract.pk, request=request_id
    )


def console_client(world: Any, who: str) -> Client:
    return Client() if who == "anon" else sign_in(Client(), world.user(who))


def api_client(world: Any, who: str) -> Api:
    return Api() if who == "anon" else Api(new_token(world.user(who)))


NAMES = {"merchant_a": ("Shop A", "Shop A Ltd", "Shop A main store"), "merchant_b": ("Shop B", "Zhang San")}


def leaks(body: str, who: str) -> list[str]:
    """Another merchant's names in a refusal's body (the caller's own organisation is in the page's
    frame; the MID the caller typed may be echoed: its own input, as in the page's path)."""
    others = [name for owner, names in NAMES.items() if owner != who for name in names]
    return [name for name in others if name in body]


@pytest.mark.parametrize("who", WHO)
def test_console_pages(shop, world, who):
    request_id = waiting_request(world).pk
    client = console_client(world, who)
    wrong = []
    for path, expected in PAGES + METHODS:
        method, url = split(path)
        url = fill(url, shop, request_id)
        response = client.post(url) if method == "POST" else client.get(url)
        got = response.status_code
        if got != expected[who]:
            wrong.append((method, url, expected[who], got))
        elif got == 302 and who == "anon":
            assert response["Location"].startswith("/accounts/login/?next="), url
        elif got == 302:
            assert response["Location"] == f"/console/agents/{OWN_AGENT[who]}/", url
        elif got == 404:
            assert leaks(response.content.decode(), who) == [], url
    assert wrong == []


@pytest.mark.parametrize("who", WHO)
def test_api_reads(shop, world, who):
    request_id = waiting_request(world).pk
    api = api_client(world, who)
    wrong = []
    for path, expected in API_READS + API_METHODS:
        method, url = split(path)
        url = fill(url, shop, request_id)
        response = api.post(url, {}) if method == "POST" else api.get(url)
        got = response.status_code
        if got != expected[who]:
            wrong.append((method, url, expected[who], got))
        elif got in (401, 403, 404):
            code = {401: "not_authenticated", 403: "permission_denied", 404: "not_found"}[got]
            assert response.json()["code"] == code, url
            assert leaks(response.content.decode(), who) == [], url
    assert wrong == []


def _console_write(client: Client, action: str, request_id: int) -> Any:
    if action == "request":
        body = {"to_plan": "lite", "effective_from": str(today() + timedelta(days=20))}
        return client.post(f"/console/merchants/{MID_A}/plan-changes/", body)
    return client.post(f"/console/plan-changes/{request_id}/{action}/", {"reason": "Not this year."})


def _api_write(api: Api, action: str, request_id: int) -> Any:
    if action == "request":
        body = {"merchant": MID_A, "to_plan": "lite", "effective_from": str(today() + timedelta(days=20))}
        return api.post("/plan-change-requests", body)
    return api.post(f"/plan-change-requests/{request_id}/{action}", {"reason": "Not this year."})


CASES = [(action, who) for action in DONE for who in WHO]


@pytest.mark.parametrize(("action", "who"), CASES, ids=[f"{a}-{w}" for a, w in CASES])
@pytest.mark.parametrize("edge", ["console", "api"])
def test_plan_change_writes(shop, world, edge, action, who):
    """Each write of a plan change request, by everyone: the expected answer; a success does what it
    says, a refusal changes no request, no assignment, no audit row, no outbox message."""
    request_id = 0 if action == "request" else waiting_request(world).pk
    expected = dict(CONSOLE_WRITES if edge == "console" else API_WRITES)[action][who]
    client = console_client(world, who) if edge == "console" else api_client(world, who)
    write = _console_write if edge == "console" else _api_write
    succeeds = expected in (200, 201) or (edge == "console" and expected == 302 and who != "anon")
    if succeeds:
        response = write(client, action, request_id)
        assert response.status_code == expected, response.content
        change = PlanChangeRequest.objects.get()
        assert change.status == DONE[action]
        assert (change.assignment is not None) == (action == "approve")
        return
    with assert_nothing_recorded(PlanChangeRequest.objects.all(), PlanAssignment.objects.all()):
        response = write(client, action, request_id)
    assert response.status_code == expected, response.content
    if expected == 302:
        assert response["Location"].startswith("/accounts/login/?next=")
    else:
        assert leaks(response.content.decode(), who) == []


@pytest.fixture
def notice(shop, world):
    """One unread notice in merchant A's inbox (its terminal suspended), the agents' too."""
    OutboxMessage.objects.all().delete()
    terminal_transition(actor=Actor.system("test"), sn=SN_A, action=Command.SUSPEND, reason="risk")
    dispatch_outbox()
    deliver_due()
    return InboxItem.objects.get(user=world.user("merchant_a"))


@pytest.mark.parametrize("who", WHO)
def test_only_the_owner_marks_its_notice_read(notice, world, who):
    """Marking merchant A's notice read, in the console and the API: only merchant A's own request
    marks it; anyone else's is answered as for an unknown item and leaves it unread."""
    console = console_client(world, who).post(
        "/console/inbox/read/", {"item": notice.pk, "next": "/console/"}
    )
    api = api_client(world, who).post("/notifications/read", {"ids": [notice.pk]})
    notice.refresh_from_db()
    if who == "anon":
        assert console["Location"].startswith("/accounts/login/?next=")
        assert api.status_code == 401
        assert notice.read_at is None
    elif who == "merchant_a":
        assert (console.status_code, console["Location"]) == (302, "/console/")
        assert (api.status_code, api.json()["marked"]) == (200, 0)  # already read by the console
        assert notice.read_at is not None
    else:
        assert (console.status_code, api.status_code, api.json()["marked"]) == (302, 200, 0)
        assert notice.read_at is None


# Selecting terminals by pasting SNs and selecting every match: who gets merchant A's terminal.
SELECTS_A = table("""
path                                                 anon admin revw ware agA agA1 agB merA merB
{sn_a}                                               302  200   200  200  200 200  200 200  200
""")
SEES_A = {"admin", "reviewer", "warehouse", "agent_a", "merchant_a"}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("op", ["paste", "add_matches", "add"])
def test_nobody_selects_anothers_terminal(shop, world, who, op):
    client = console_client(world, who)
    data = {"op": op, "sns": SN_A, "q": SN_A}
    if who in SEES_A:
        response = client.post("/console/terminals/selection/", data)
        assert response.status_code == 200
        assert list(TerminalSelection.objects.values_list("terminal__sn", flat=True)) == [SN_A]
        return
    with assert_nothing_recorded(TerminalSelection.objects.all()):
        response = client.post("/console/terminals/selection/", data)
    assert response.status_code == SELECTS_A[0][1][who]
    if who != "anon":
        html = response.content.decode()
        assert f'data-sn="{SN_A}"' not in html
        if op == "paste":
            assert f'data-unknown="{SN_A}"' in html  # unknown, as an SN that does not exist
