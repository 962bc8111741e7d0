"""The expiry calendar: each persona sees its own terminals running out, a 12-week chart, and renews
from the row (the merchant and its agent; others' terminals are 404, staff who may not renew 403)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from posfleet.billing.models import ServiceContract, ServiceFeeDue
from posfleet.console.tests.helpers import PERSONAS, SN_A, SN_A1, SN_B, VISIBLE
from posfleet.fleet.models import Terminal
from posfleet.platform.clock import today
from posfleet.testing.money import signed_contract
from posfleet.testing.refusals import assert_nothing_recorded


@pytest.fixture
def expiring(clock, terminals):
    day = today()
    Terminal.objects.filter(sn=SN_A).update(service_expires_on=day + timedelta(days=5))
    Terminal.objects.filter(sn=SN_A1).update(service_expires_on=day - timedelta(days=3))  # in grace
    Terminal.objects.filter(sn=SN_B).update(service_expires_on=day + timedelta(days=60))  # chart only
    signed_contract(terminals[SN_A], deposit_fen=0)
    return terminals


def unchanged():
    """Around a refused renewal: terminals, contracts and fees due as they were; no audit event, outbox
    message or ledger entry (no fee charged)."""
    return assert_nothing_recorded(
        Terminal.objects.all(), ServiceContract.objects.all(), ServiceFeeDue.objects.all()
    )


def chart(html: str) -> dict:
    return json.loads(
        re.search(r'<script id="expiry-data" type="application/json">(.*?)</script>', html).group(1)
    )


@pytest.mark.parametrize("name", PERSONAS)
def test_each_persona_sees_its_own_terminals_running_out(expiring, login, name):
    response = login(name).get("/console/expiry/")
    assert response.status_code == 200
    html = response.content.decode()
    listed = {sn for sn in (SN_A, SN_A1, SN_B) if f'data-testid="expiry-{sn}"' in html}
    assert listed == VISIBLE[name] & {SN_A, SN_A1}  # SN_B runs out in 60 days: in the chart only
    data = chart(html)
    assert len(data["labels"]) == len(data["values"]) == 12
    # The clock stands on Friday 2027-01-15: the weeks start on Monday the 11th, so all three expiry
    # dates (the 12th, the 20th, 16 March) fall in the chart's 12 weeks.
    assert today().isoformat() == "2027-01-15"
    assert sum(data["values"]) == len(VISIBLE[name])


def test_the_merchant_renews_from_the_calendar(expiring, login):
    before = Terminal.objects.get(sn=SN_A).service_expires_on
    done = login("merchant_a").post("/console/expiry/renew/", {"sn": SN_A}, follow=True)
    assert done.status_code == 200
    after = Terminal.objects.get(sn=SN_A).service_expires_on
    assert after.year == before.year + 1
    assert f"Terminal {SN_A} renewed until {after.isoformat()}" in done.content.decode()
    assert "¥99.00" in done.content.decode()


def test_renewal_refusals_change_nothing(expiring, login):
    before = Terminal.objects.get(sn=SN_A).service_expires_on
    with unchanged():
        assert login("merchant_b").post("/console/expiry/renew/", {"sn": SN_A}).status_code == 404
    with unchanged():
        assert login("reviewer").post("/console/expiry/renew/", {"sn": SN_A}).status_code == 403
    with unchanged():
        no_contract = login("agent_a").post("/console/expiry/renew/", {"sn": SN_A1}, follow=True)
    assert "no service contract in force" in no_contract.content.decode()
    assert Terminal.objects.get(sn=SN_A).service_expires_on == before


def test_renewal_offers_go_once_per_expiry_to_the_merchants_of_the_ticked_terminals(expiring, login):
    from posfleet.notifications.models import Delivery
    from posfleet.notifications.services import content
    from posfleet.platform.models import OutboxMessage
    from posfleet.platform.outbox import dispatch_outbox

    agent = login("agent_a")
    page = agent.get("/console/expiry/").content.decode()
    assert 'data-testid="send-offers"' in page
    done = agent.post("/console/expiry/offers/", {"sn": [SN_A, SN_A1, SN_B]}, follow=True).content.decode()
    assert "Renewal offers sent for 1 terminals; 0 had one" in done
    assert SN_A1 in done  # not offered: no contract (and SN_B is another agent's)
    offers = OutboxMessage.objects.filter(event_type="service.renewal_offered")
    assert [m.aggregate_id for m in offers] == [SN_A]
    again = agent.post("/console/expiry/offers/", {"sn": [SN_A]}, follow=True).content.decode()
    assert "Renewal offers sent for 0 terminals; 1 had one" in again
    assert offers.count() == 1

    dispatch_outbox()
    mail = Delivery.objects.filter(notice="service.renewal_offered", channel="inbox").first()
    assert mail is not None
    assert "¥99.00" in content(mail)[1]
    with unchanged():
        assert login("merchant_a").post("/console/expiry/offers/", {"sn": [SN_A]}).status_code == 403


def test_the_merchant_renews_several_at_once(expiring, login, terminals):
    signed_contract(terminals[SN_A1], deposit_fen=0)
    before = {sn: Terminal.objects.get(sn=sn).service_expires_on for sn in (SN_A, SN_A1)}
    page = login("agent_a").post("/console/expiry/renew/", {"sn": [SN_A, SN_A1, SN_B]}, follow=True)
    html = page.content.decode()
    assert "2 terminals renewed for a year" in html
    assert f"{SN_B}: not found" in html
    for sn in (SN_A, SN_A1):
        assert Terminal.objects.get(sn=sn).service_expires_on.year == before[sn].year + 1
