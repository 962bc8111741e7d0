"""The terminal page's timeline and the API's ``/terminals/{sn}/events`` are one read model
(fleet/timeline.py): the same events, the same labels, newest first on the page and oldest first in the
API."""

from __future__ import annotations

import re

from posfleet.console.tests.helpers import SN_A, SN_B
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command
from posfleet.platform.context import Actor


def timeline_of(html: str) -> str:
    return html.split('data-testid="timeline"')[1].split("</ol>")[0]


def test_the_page_and_the_api_show_the_same_timeline(terminals, login):
    terminal_transition(
        actor=Actor.system("risk-desk"), sn=SN_A, action=Command.SUSPEND, reason="risk", note="chargebacks"
    )
    client = login("agent_a")
    api = client.get(f"/api/v1/terminals/{SN_A}/events").json()["items"]
    page = timeline_of(client.get(f"/console/terminals/{SN_A}/").content.decode())

    assert re.findall(r'data-event="([^"]+)"', page) == [e["event_type"] for e in reversed(api)]
    labels = [
        re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<span class="fw-semibold">([^<]+)</span>', page)
    ]
    assert labels == [e["event_label"][0].upper() + e["event_label"][1:] for e in reversed(api)]
    suspended = api[-1]
    assert (suspended["event_label"], suspended["actor_label"], suspended["reason"], suspended["note"]) == (
        "suspended",
        "risk-desk",
        "risk",
        "chargebacks",
    )
    newest = page.split("</li>")[0]
    assert "risk-desk" in newest
    assert 'Reason: <span class="text-body">risk control</span>' in newest  # the reason's label
    assert "chargebacks" in newest
    allocated = page.split('data-event="terminal.allocated"')[1].split("</li>")[0]
    assert 'Agent: <span class="text-body font-monospace">AG-A</span>' in allocated  # a fact worth showing


def test_another_merchants_terminal_has_no_timeline_anywhere(terminals, login):
    client = login("merchant_a")
    assert client.get(f"/console/terminals/{SN_B}/").status_code == 404
    assert client.get(f"/api/v1/terminals/{SN_B}/events").status_code == 404
