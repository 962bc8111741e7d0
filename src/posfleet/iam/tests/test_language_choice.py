"""A person chooses the console's language in the navbar: a POST with its CSRF token (never a link, no
personal data in the address) that switches the session and keeps the choice on the user, whose
notices and e-mails then follow it."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import translation

from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Command, Status
from posfleet.iam.models import User
from posfleet.notifications.models import Delivery
from posfleet.notifications.services import content
from posfleet.platform.models import OutboxMessage
from posfleet.platform.outbox import dispatch_outbox
from posfleet.testing.personas import SYSTEM, make_terminal
from posfleet.testing.sessions import sign_in

pytestmark = pytest.mark.django_db


def switch_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/accounts/language/".*?</form>', html, re.S)
    assert form is not None, "the navbar offers the language choice"
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', form.group(0)))
    return fields


def test_a_merchant_chooses_chinese_in_the_navbar_and_its_notices_follow(world):
    make_terminal(world, "SN-LANG-1", Status.ACTIVE)
    OutboxMessage.objects.all().delete()
    terminal_transition(actor=SYSTEM, sn="SN-LANG-1", action=Command.DEACTIVATE, reason="cost")
    dispatch_outbox()  # the notice is fanned out while the merchant still reads English
    notice = Delivery.objects.filter(user=world.user("merchant_a")).first()
    assert notice is not None
    assert notice.language == "en"

    client = sign_in(Client(enforce_csrf_checks=True), world.user("merchant_a"))
    page = client.get("/console/terminals/").content.decode()
    assert '<html lang="en">' in page
    fields = switch_form(page)
    assert (fields["language"], fields["next"]) == ("zh-hans", "/console/terminals/")

    # without the token the choice is refused and nothing changes
    refused = client.post("/accounts/language/", {"language": "zh-hans", "next": fields["next"]})
    assert refused.status_code == 403
    assert User.objects.get(username="merchant_a").language == "en"

    response = client.post("/accounts/language/", fields)
    assert (response.status_code, response["Location"]) == (302, "/console/terminals/")
    assert "merchant_a" not in response["Location"]
    assert User.objects.get(username="merchant_a").language == "zh-hans"
    assert '<html lang="zh-hans">' in client.get("/console/terminals/").content.decode()

    # the notice written before the switch is sent (and shown) in the language chosen since
    subject, _body = content(Delivery.objects.get(pk=notice.pk))
    with translation.override("zh-hans"):
        assert subject.startswith(translation.gettext("Terminal %(tid)s is deactivated").split("%")[0])
    assert re.search(r"[\u4e00-\u9fff]", subject)

    # and back: the menu now offers English
    back = switch_form(client.get("/console/").content.decode())
    assert back["language"] == "en"
    client.post("/accounts/language/", back)
    assert User.objects.get(username="merchant_a").language == "en"


def test_the_choice_is_a_post_without_personal_data_in_the_address(world):
    html = sign_in(Client(), world.user("agent_a")).get("/console/").content.decode()
    assert 'action="/accounts/language/"' in html
    assert not re.search(r'href="[^"]*language=', html)  # never a link that changes state
