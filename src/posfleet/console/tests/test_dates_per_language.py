"""A page writes its dates in the reader's language, one format each (``config/formats``): the
terminal page and the expiry calendar, in English and in Chinese; ISO only for the machine."""

from __future__ import annotations

from datetime import date

import pytest

from posfleet.console.tests.helpers import SN_A
from posfleet.fleet.models import Terminal

EXPIRES = date(2027, 1, 5)


@pytest.fixture
def expiring(clock, terminals):
    Terminal.objects.filter(sn=SN_A).update(service_expires_on=EXPIRES)
    return terminals


@pytest.mark.parametrize(("language", "written"), [("en", "5 Jan 2027"), ("zh-hans", "2027年1月5日")])
def test_the_terminal_page_and_the_calendar_write_the_day_in_the_readers_format(
    expiring, world, login, language, written
):
    user = world.user("merchant_a")
    user.language = language
    user.save(update_fields=["language"])
    client = login("merchant_a")

    page = client.get(f"/console/terminals/{SN_A}/").content.decode()
    assert f'<time datetime="2027-01-05">{written}</time>' in page
    calendar = client.get("/console/expiry/").content.decode()
    assert written in calendar
    for other in {"5 Jan 2027", "2027年1月5日", "Jan. 5, 2027", "01/05/2027"} - {written}:
        assert other not in page
        assert other not in calendar
