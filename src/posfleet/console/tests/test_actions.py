"""The action dialog end to end: preview, step-up, the command through the service, the result."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.console.tests.helpers import SN_A, SN_A1, SN_B, htmx, ids_with_prefix, totp, trace
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.iam.web import SESSION_KEY
from posfleet.platform.models import OutboxMessage
from posfleet.testing.personas import make_terminal

URL = "/console/terminals/actions/{}/"


def post(client, command, sns, **data):
    return client.post(URL.format(command), {"sn": list(sns), **data}, **htmx())


@pytest.fixture
def fleet(clock, world, terminals):
    """Three active terminals of merchant A and one still in stock."""
    sns = ["SN-BULK-001", "SN-BULK-002", "SN-BULK-003"]
    for sn in sns:
        make_terminal(world, sn, Status.ACTIVE, merchant=world.merchant_a)
    make_terminal(world, "SN-BULK-STOCK", Status.IN_STOCK)
    return sns


def test_dialog_lists_the_selection_and_says_which_will_be_skipped(fleet, login):
    response = login("admin").get(URL.format("deactivate"), {"sn": [*fleet, "SN-BULK-STOCK"]}, **htmx())
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # only the dialog, for the modal
    for sn in fleet:
        assert f'data-testid="candidate-{sn}" data-applies="true"' in html
    skipped = html.split('data-testid="candidate-SN-BULK-STOCK"')[1].split("</tr>")[0]
    assert 'data-applies="false"' in skipped
    assert "will be skipped: not possible while the terminal is in stock" in skipped
    assert '<select name="reason"' in html
    for value in ("cost", "technology_update", "device_fault", "other"):
        assert f'value="{value}"' in html
    assert 'name="totp"' in html  # no fresh step-up yet
    assert 'data-testid="confirm-action"' in html
    assert "Deactivate: 3 terminals" in html


def test_bulk_deactivation_with_totp_deactivates_each_terminal_and_audits_it(fleet, login, world):
    client = login("admin")
    session_before = client.session.session_key
    outbox_before = OutboxMessage.objects.count()
    response = post(
        client, "deactivate", [*fleet, "SN-BULK-STOCK"], reason="cost", note="closing", totp=totp()
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "terminals-changed"
    assert ids_with_prefix(html, "result-") == {*fleet, "SN-BULK-STOCK"}
    for sn in fleet:
        row = html.split(f'data-testid="result-{sn}"')[1].split("</tr>")[0]
        assert 'data-ok="true"' in row
        assert "status-deactivated" in row
        assert Terminal.objects.get(sn=sn).status == Status.DEACTIVATED
    refused = html.split('data-testid="result-SN-BULK-STOCK"')[1].split("</tr>")[0]
    assert 'data-ok="false"' in refused
    assert "transition_not_allowed" in refused
    assert Terminal.objects.get(sn="SN-BULK-STOCK").status == Status.IN_STOCK
    events = AuditEvent.objects.filter(event_type=EventType.TERMINAL_DEACTIVATED).order_by("seq")
    assert [(e.subject_id, e.reason, e.note, e.actor_label) for e in events] == [
        (sn, "cost", "closing", "admin") for sn in fleet
    ]
    assert all(e.before["status"] == "active" and e.after["status"] == "deactivated" for e in events)
    assert OutboxMessage.objects.count() == outbox_before + 3
    assert AuditEvent.objects.filter(event_type=EventType.STEP_UP_SUCCEEDED).count() == 1
    assert client.session.session_key != session_before  # step-up rotates the session id
    assert SESSION_KEY in client.session


def test_bulk_deactivation_without_totp_changes_nothing(fleet, login):
    before = trace(*fleet)
    response = post(login("admin"), "deactivate", fleet, reason="cost")
    html = response.content.decode()
    assert response.status_code == 200
    assert "HX-Trigger" not in response
    assert 'data-testid="result-' not in html
    assert "This field is required." in html.split('name="totp"')[1]
    assert trace(*fleet) == before


def test_bulk_deactivation_with_a_wrong_code_changes_nothing(fleet, login):
    before = trace(*fleet)
    wrong = f"{(int(totp()) + 1) % 1_000_000:06d}"
    html = post(login("admin"), "deactivate", fleet, reason="cost", totp=wrong).content.decode()
    assert "The verification code is wrong, expired or already used." in html
    assert 'data-testid="result-' not in html
    assert trace(*fleet) == before
    assert AuditEvent.objects.filter(event_type=EventType.STEP_UP_FAILED).count() == 1


def test_a_code_is_accepted_once(fleet, login):
    client = login("admin")
    code = totp()
    assert (
        post(client, "deactivate", fleet[:1], reason="cost", totp=code)["HX-Trigger"] == "terminals-changed"
    )
    other = login("admin")  # a second session of the same user replays the same code
    before = trace(*fleet)
    html = post(other, "deactivate", fleet[1:], reason="cost", totp=code).content.decode()
    assert "The verification code is wrong, expired or already used." in html
    assert trace(*fleet) == before


def test_fresh_step_up_is_not_asked_again_but_stale_one_is(fleet, login, clock):
    client = login("admin")
    post(client, "deactivate", fleet[:1], reason="cost", totp=totp())
    clock.shift(60)
    html = client.get(URL.format("deactivate"), {"sn": fleet[1]}, **htmx()).content.decode()
    assert 'name="totp"' not in html
    assert 'data-testid="step-up-fresh"' in html
    response = post(client, "deactivate", fleet[1:2], reason="cost")
    assert Terminal.objects.get(sn=fleet[1]).status == Status.DEACTIVATED
    assert response["HX-Trigger"] == "terminals-changed"

    clock.shift(6 * 60)  # past the 5-minute window
    html = client.get(URL.format("deactivate"), {"sn": fleet[2]}, **htmx()).content.decode()
    assert 'name="totp"' in html
    before = trace(*fleet)
    html = post(client, "deactivate", fleet[2:], reason="cost").content.decode()
    assert 'data-testid="result-' not in html
    assert trace(*fleet) == before
    html = post(client, "deactivate", fleet[2:], reason="cost", totp=totp()).content.decode()
    assert 'data-ok="true"' in html
    assert Terminal.objects.get(sn=fleet[2]).status == Status.DEACTIVATED


def test_other_reason_needs_a_note(fleet, login):
    before = trace(*fleet)
    html = post(login("admin"), "deactivate", fleet, reason="other", totp=totp()).content.decode()
    assert "Say in the note what the other reason is." in html
    assert trace(*fleet) == before
    assert not AuditEvent.objects.filter(event_type=EventType.STEP_UP_SUCCEEDED).exists()  # code not spent


def test_unknown_reason_is_refused(fleet, login):
    before = trace(*fleet)
    html = post(login("admin"), "deactivate", fleet, reason="boredom", totp=totp()).content.decode()
    assert "Select a valid choice." in html
    assert trace(*fleet) == before


def test_no_selection_is_refused(fleet, login):
    before = trace(*fleet)
    html = post(login("admin"), "deactivate", [], reason="cost", totp=totp()).content.decode()
    assert "Select at least one terminal." in html
    assert 'data-testid="result-' not in html
    assert trace(*fleet) == before
    assert not AuditEvent.objects.filter(event_type__startswith="mfa.").exists()  # code not spent


# ---------------------------------------------------------------------------------------------
# Wrong role and other tenants: the action is not offered; a forged POST is refused by the service.


def test_reviewer_is_offered_no_actions(clock, terminals, login):
    client = login("reviewer")
    list_html = client.get("/console/terminals/").content.decode()
    assert "data-action=" not in list_html
    assert "data-row-action=" not in list_html
    detail = client.get(f"/console/terminals/{SN_A}/").content.decode()
    assert "data-action=" not in detail


def test_forged_post_by_a_wrong_role_is_refused_and_changes_nothing(clock, terminals, login):
    before = trace(SN_A, SN_B)
    html = post(login("reviewer"), "deactivate", [SN_A, SN_B], reason="cost", totp=totp()).content.decode()
    assert 'name="totp"' not in html  # a role that cannot run it is not asked for (nor spends) a code
    for sn in (SN_A, SN_B):
        row = html.split(f'data-testid="result-{sn}"')[1].split("</tr>")[0]
        assert 'data-ok="false"' in row
        assert "permission_denied" in row
    assert trace(SN_A, SN_B) == before
    assert not AuditEvent.objects.filter(event_type__startswith="mfa.").exists()


def test_merchant_cannot_suspend_even_by_forged_post(clock, terminals, login):
    before = trace(SN_A)
    html = post(login("merchant_a"), "suspend", [SN_A], reason="risk").content.decode()
    row = html.split(f'data-testid="result-{SN_A}"')[1].split("</tr>")[0]
    assert 'data-ok="false"' in row
    assert "permission_denied" in row
    assert trace(SN_A) == before


def test_merchant_cannot_allocate_even_by_forged_post(clock, terminals, login, world):
    stock = make_terminal(world, "SN-STOCK-XYZ", Status.IN_STOCK)
    before = trace(stock.sn)
    html = post(login("merchant_a"), "allocate", [stock.sn], agent_code="AG-A").content.decode()
    assert "Select a valid choice." in html  # a merchant sees no agents to allocate to
    assert trace(stock.sn) == before


def test_other_tenants_terminal_is_not_found_for_a_forged_post(clock, terminals, login):
    client = login("agent_b")
    before = trace(SN_A, SN_B)
    html = post(client, "deactivate", [SN_A], reason="cost", totp=totp()).content.decode()
    row = html.split(f'data-testid="result-{SN_A}"')[1].split("</tr>")[0]
    assert "not_found" in row
    assert trace(SN_A, SN_B) == before


@pytest.mark.parametrize(
    ("name", "offered"),
    [
        ("admin", {"deactivate", "suspend", "report_lost"}),
        ("agent_a", {"deactivate", "report_lost"}),
        ("merchant_a", {"deactivate", "report_lost"}),
        ("warehouse", set()),
        ("reviewer", set()),
    ],
)
def test_row_menu_offers_only_what_the_user_may_do_to_that_terminal(clock, terminals, login, name, offered):
    html = login(name).get(f"/console/terminals/?q={SN_A}").content.decode()
    assert set(ids_with_prefix(html, "row-menu-")) == {SN_A}
    row = html.split(f'data-row-sn="{SN_A}"')[1].split("</tr>")[0]
    assert {
        a for a in ("deactivate", "suspend", "report_lost", "allocate") if f'data-row-action="{a}"' in row
    } == (offered)


@pytest.mark.parametrize(
    ("name", "bulk"),
    [
        ("admin", {"deactivate", "allocate", "scrap", "deregister", "bind"}),
        ("warehouse", {"allocate", "scrap"}),
        ("agent_a", {"deactivate", "bind"}),
        ("merchant_a", {"deactivate"}),
        ("reviewer", set()),
    ],
)
def test_bulk_toolbar_offers_what_the_role_could_run(clock, terminals, login, name, bulk):
    html = login(name).get("/console/terminals/").content.decode()
    toolbar = html.split('data-testid="bulk-toolbar"')[1].split('id="terminal-table"')[0]
    candidates = ("deactivate", "allocate", "scrap", "deregister", "bind")
    assert {c for c in candidates if f'data-action="{c}"' in toolbar} == bulk


# ---------------------------------------------------------------------------------------------
# Commands with parameters, and the single-terminal flow.


def test_warehouse_allocates_stock_to_an_agent(clock, world, login):
    stock = [make_terminal(world, f"SN-ALLOC-{i}", Status.IN_STOCK) for i in range(2)]
    client = login("warehouse")
    html = client.get(URL.format("allocate"), {"sn": [t.sn for t in stock]}, **htmx()).content.decode()
    assert '<select name="agent_code"' in html
    assert 'value="AG-B"' in html
    assert 'name="reason"' not in html  # allocation takes no reason
    assert 'name="totp"' not in html  # nor a step-up
    html = post(client, "allocate", [t.sn for t in stock], agent_code="AG-B").content.decode()
    assert html.count('data-ok="true"') == 2
    assert set(Terminal.objects.filter(sn__startswith="SN-ALLOC-").values_list("status", "agent__code")) == {
        ("allocated", "AG-B")
    }


def test_allocate_needs_an_agent(clock, world, login):
    stock = make_terminal(world, "SN-ALLOC-X", Status.IN_STOCK)
    before = trace(stock.sn)
    html = post(login("warehouse"), "allocate", [stock.sn], agent_code="").content.decode()
    assert "This field is required." in html
    assert Terminal.objects.get(sn=stock.sn).status == Status.IN_STOCK
    assert trace(stock.sn) == before


def test_bind_asks_for_a_tid_only_for_a_single_terminal(clock, world, login):
    shipped = [
        make_terminal(world, f"SN-BIND-{i}", Status.SHIPPED, merchant=world.merchant_a) for i in range(2)
    ]
    client = login("agent_a")
    one = client.get(URL.format("bind"), {"sn": shipped[0].sn}, **htmx()).content.decode()
    many = client.get(URL.format("bind"), {"sn": [t.sn for t in shipped]}, **htmx()).content.decode()
    assert 'name="merchant_mid"' in one
    assert 'name="store_code"' in one
    assert 'name="tid"' in one
    assert 'name="merchant_mid"' in many
    assert 'name="tid"' not in many
    html = post(
        client, "bind", [shipped[0].sn], merchant_mid="100000000000001", store_code="S1", tid="ABCD1234"
    ).content.decode()
    assert 'data-ok="true"' in html
    bound = Terminal.objects.select_related("merchant", "store").get(sn=shipped[0].sn)
    assert (bound.status, bound.merchant.mid, bound.store.code, bound.tid) == (
        "bound",
        "100000000000001",
        "S1",
        "ABCD1234",
    )


def test_ship_records_carrier_and_tracking_number(clock, world, login):
    allocated = make_terminal(world, "SN-SHIP-1", Status.ALLOCATED)
    client = login("warehouse")
    html = client.get(URL.format("ship"), {"sn": allocated.sn}, **htmx()).content.decode()
    assert 'name="carrier"' in html
    assert 'name="tracking_no"' in html
    post(client, "ship", [allocated.sn], carrier="SF Express", tracking_no="SF123")
    event = AuditEvent.objects.get(event_type=EventType.TERMINAL_SHIPPED, subject_id=allocated.sn)
    assert (event.after["carrier"], event.after["tracking_no"]) == ("SF Express", "SF123")


def test_single_terminal_from_its_page(clock, terminals, login):
    client = login("merchant_a")
    page = client.get(f"/console/terminals/{SN_A}/").content.decode()
    assert 'data-action="deactivate"' in page
    assert f'hx-get="/console/terminals/actions/deactivate/?sn={SN_A}"' in page
    html = post(client, "deactivate", [SN_A], reason="business_change", totp=totp()).content.decode()
    assert f'data-testid="result-{SN_A}" data-ok="true"' in html
    refreshed = client.get(f"/console/terminals/{SN_A}/", **htmx()).content.decode()
    assert "<html" not in refreshed  # the page body only, for the refresh after the action
    assert f'data-status="deactivated" data-testid="status-{SN_A}"' in refreshed
    assert "business change" in refreshed.split('data-testid="timeline"')[1]


def test_without_javascript_the_dialog_is_a_page(clock, terminals, login):
    client = login("agent_a1")
    page = client.get(URL.format("deactivate"), {"sn": SN_A1})
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    response = client.post(URL.format("deactivate"), {"sn": SN_A1, "reason": "cost", "totp": totp()})
    assert f'data-testid="result-{SN_A1}" data-ok="true"' in response.content.decode()
    assert "<html" in response.content.decode()
    assert Terminal.objects.get(sn=SN_A1).status == Status.DEACTIVATED
    assert Terminal.objects.get(sn=SN_B).status == Status.ACTIVE


def test_ten_wrong_codes_lock_the_step_up_and_the_right_code_is_refused_too(fleet, login):
    client = login("admin")
    before = trace(*fleet)
    for _ in range(10):
        post(client, "deactivate", fleet, reason="cost", totp="000000")
    html = post(client, "deactivate", fleet, reason="cost", totp=totp()).content.decode()
    assert "Too many wrong verification codes." in html
    assert 'data-testid="result-' not in html
    assert trace(*fleet) == before
