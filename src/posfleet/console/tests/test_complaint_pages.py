"""The console's complaint pages (ADR 0023): who reaches the list and a complaint's page (others' are
404), the buttons each role sees, a merchant raising one through the form, and a refused button
changing nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from posfleet.closure.models import ClosureCase, Complaint
from posfleet.closure.services import complaint_raise
from posfleet.console.tests.helpers import PERSONAS
from posfleet.platform.context import Actor
from posfleet.testing.refusals import assert_nothing_recorded


@pytest.fixture
def complaint(world):
    return complaint_raise(
        actor=Actor.for_user(world.user("merchant_a")),
        category="device",
        subject="Printer jams",
        text="The printer jams on every receipt.",
    )


SEES = {"admin", "reviewer", "warehouse", "agent_a", "merchant_a"}


def test_anonymous_is_sent_to_the_login_page(clock, complaint):
    for url in (
        "/console/complaints/",
        f"/console/complaints/{complaint.number}/",
        "/console/complaints/new/",
    ):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("name", PERSONAS)
def test_list_and_page_in_scope_only(clock, login, complaint, name):
    client = login(name)
    html = client.get("/console/complaints/?tab=all").content.decode()
    assert (f'data-testid="complaint-{complaint.number}"' in html) == (name in SEES)
    assert 'data-nav="complaints"' in html
    page = client.get(f"/console/complaints/{complaint.number}/")
    assert page.status_code == (200 if name in SEES else 404)
    if name in SEES:
        body = page.content.decode()
        assert 'data-testid="complaint-clock"' in body
        assert "72 h left" in body


def test_buttons_follow_the_role(clock, login, complaint):
    def buttons(name: str) -> set[str]:
        html = login(name).get(f"/console/complaints/{complaint.number}/").content.decode()
        return {
            b
            for b in ("acknowledge", "resolve", "reject", "escalate", "take-over", "close", "reopen")
            if f'data-testid="action-{b}"' in html
        }

    assert buttons("agent_a") == {"acknowledge", "resolve", "reject"}
    assert buttons("merchant_a") == {"escalate", "close"}
    assert buttons("reviewer") == {"escalate"}  # the provider may take it from a slow agent
    assert buttons("warehouse") == set()


def test_merchant_raises_and_the_agent_acknowledges(clock, login, world):
    merchant = login("merchant_a")
    assert merchant.get("/console/complaints/new/").status_code == 200
    assert login("agent_a").get("/console/complaints/new/").status_code == 403
    invalid = merchant.post(
        "/console/complaints/new/", {"category": "agent", "to": "agent", "subject": "", "text": ""}
    )
    assert invalid.status_code == 200
    assert 'data-testid="form-invalid"' in invalid.content.decode()
    assert not Complaint.objects.exists()
    response = merchant.post(
        "/console/complaints/new/",
        {"category": "agent", "to": "provider", "subject": "Deposit not refunded", "text": "Two weeks now."},
    )
    assert response.status_code == 302
    complaint = Complaint.objects.get()
    assert response["Location"] == f"/console/complaints/{complaint.number}/"
    assert complaint.addressed_to_id == world.provider.pk
    # Addressed to the provider: the agent does not see it, and its button is refused as not found.
    with assert_nothing_recorded(Complaint.objects.all(), ClosureCase.objects.all()):
        assert (
            login("agent_a").post(f"/console/complaints/{complaint.number}/acknowledge/").status_code == 404
        )
        assert merchant.post(f"/console/complaints/{complaint.number}/acknowledge/").status_code == 403
    done = login("reviewer").post(f"/console/complaints/{complaint.number}/acknowledge/")
    assert done.status_code == 302
    complaint.refresh_from_db()
    assert complaint.status == "acknowledged"
