"""Words as CONTEXT.md says them: the status filter counts statuses (not terminals), and a service
contract's state never reads like a terminal's ("in force"/生效中, never "active"/已激活)."""

from __future__ import annotations

import re

import pytest

from posfleet.billing.models import ServiceContract
from posfleet.console.tests.helpers import SN_A
from posfleet.testing.money import signed_contract


def speak(world, name: str, language: str) -> None:
    user = world.user(name)
    user.language = language
    user.save(update_fields=["language"])


def summary(html: str) -> str:
    found = re.search(r'data-testid="status-filter-summary"[^>]*>\s*(.*?)\s*</span>', html, re.S)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("language", "two", "one"),
    [("en", "2 statuses selected", "1 status selected"), ("zh-hans", "已选 2 种状态", "已选 1 种状态")],
)
def test_the_status_filter_counts_the_statuses_ticked(clock, terminals, world, login, language, two, one):
    speak(world, "admin", language)
    client = login("admin")
    html = client.get("/console/terminals/?status=active&status=deactivated").content.decode()
    assert summary(html) == two  # two statuses, whatever the number of terminals in them
    assert f'data-n1="{one}"' in html  # the words the script shows as boxes are ticked
    assert f'data-n2="{two}"' in html
    assert "台" not in summary(html)  # never a number of terminals (台)
    assert summary(client.get("/console/terminals/").content.decode()) in {"All statuses", "全部状态"}


@pytest.mark.parametrize(
    ("language", "in_force", "active"), [("en", "in force", "active"), ("zh-hans", "生效中", "已激活")]
)
def test_a_contract_in_force_never_reads_like_an_active_terminal(
    clock, terminals, world, login, language, in_force, active
):
    contract = signed_contract(terminals[SN_A], deposit_fen=0)
    assert contract.status == ServiceContract.Status.ACTIVE
    speak(world, "merchant_a", language)
    client = login("merchant_a")

    page = client.get(f"/console/contracts/{contract.pk}/").content.decode()
    assert re.search(rf'data-testid="contract-status">{in_force}<', page)
    assert f'data-testid="contract-status">{active}<' not in page
    listed = client.get("/console/contracts/").content.decode()
    badges = re.findall(r'class="badge contract-badge contract-active">([^<]*)<', listed)
    assert badges == [in_force]
    terminal_page = client.get(f"/console/terminals/{SN_A}/").content.decode()
    assert in_force in terminal_page  # the link to its contract, with the contract's state
