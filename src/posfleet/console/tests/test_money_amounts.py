"""Amounts typed in the console (issue 11: "１００" released a deposit): digits 0–9 and their full-width
forms are read, every other digit is refused with a clear message, and a deposit release shows the
amount it read and moves money only once that read-back is confirmed (with the step-up code). On every
refusal nothing moves: the deposit row, the ledger, the audit chain and the outbox stay as they were."""

from __future__ import annotations

import pytest

from posfleet.audit.models import AuditEvent
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import Deposit, Entry, Journal, RatePlan
from posfleet.console.tests.helpers import htmx, totp
from posfleet.console.tests.test_money_access import money  # noqa: F401  (fixture)
from posfleet.console.tests.test_money_pages import text_of
from posfleet.platform.models import OutboxMessage

RELEASE = "/console/deposits/{}/release/"
OTHER_DIGITS = [
    "١٠٠",  # Arabic-Indic
    "۱۰۰",  # Extended Arabic-Indic
    "१००",  # Devanagari
    "²",  # superscript two
    "¹⁰⁰",
    "①",  # circled one
    "五十",  # Chinese numerals
    "１٠０",  # full-width mixed with Arabic-Indic
]


def state(deposit: Deposit) -> tuple:
    """What a refused or unconfirmed release must leave as it was."""
    row = Deposit.objects.filter(pk=deposit.pk).values(
        "status", "refunded_fen", "forfeited_fen", "released_at", "release_journal"
    )
    return (
        row.get(),
        Journal.objects.count(),
        Entry.objects.count(),
        AuditEvent.objects.count(),
        OutboxMessage.objects.count(),
    )


def test_full_width_digits_are_read_back_and_move_money_only_once_confirmed(money, login):  # noqa: F811
    client = login("reviewer")
    url = RELEASE.format(money.deposit.pk)
    before = state(money.deposit)

    review = client.post(url, {"refund": "１００", "reason": "device_damaged", "note": "screen"}, **htmx())
    html = review.content.decode()
    assert review.status_code == 200
    assert text_of(html, "release-readback") == (
        "You are refunding ¥100.00 to Shop A and forfeiting ¥199.00 of the ¥299.00 deposit for terminal "
        "SN-STMT-0001."
    )
    assert text_of(html, "release-typed") == "Read from what you typed: “１００”."
    for hidden in ('name="refund" value="100.00"', 'name="confirm_fen" value="10000"'):
        assert hidden in html, hidden
    assert 'name="totp"' in html  # the step-up code is asked with the confirmation, not before
    assert 'data-testid="confirm-release"' in html
    assert 'data-testid="release-done"' not in html
    assert state(money.deposit) == before  # nothing moved, no code spent

    done = client.post(
        url,
        {
            "refund": "100.00",
            "reason": "device_damaged",
            "note": "screen",
            "confirm_fen": "10000",
            "totp": totp(),
        },
        **htmx(),
    )
    assert 'data-testid="release-done"' in done.content.decode()
    deposit = Deposit.objects.get(pk=money.deposit.pk)
    assert (deposit.status, deposit.refunded_fen, deposit.forfeited_fen) == ("refunded", 10000, 19900)
    assert AuditEvent.objects.filter(event_type=EventType.DEPOSIT_RELEASED).count() == 1


@pytest.mark.parametrize("typed", OTHER_DIGITS)
def test_digits_of_other_scripts_are_refused_and_nothing_moves(money, login, typed):  # noqa: F811
    client = login("reviewer")
    url = RELEASE.format(money.deposit.pk)
    before = state(money.deposit)
    expected = f"“{typed}” has digits other than 0–9: type the amount with the digits 0 to 9, e.g. 12.30."

    review = client.post(url, {"refund": typed, "reason": "device_damaged"}, **htmx()).content.decode()
    assert expected in review
    assert 'data-testid="release-readback"' not in review
    assert 'name="confirm_fen"' not in review
    assert state(money.deposit) == before

    # a confirmation forged around the refused text: refused the same, and the code is not even tried
    forged = {"refund": typed, "reason": "device_damaged", "confirm_fen": "10000", "totp": totp()}
    html = client.post(url, forged, **htmx()).content.decode()
    assert expected in html
    assert 'data-testid="release-done"' not in html
    assert state(money.deposit) == before


def test_a_confirmation_of_another_amount_moves_nothing_and_shows_the_amount_again(money, login):  # noqa: F811
    client = login("reviewer")
    url = RELEASE.format(money.deposit.pk)
    before = state(money.deposit)
    # the read-back said ¥1.00; the refund field now says ¥100.00
    data = {"refund": "100", "reason": "device_damaged", "confirm_fen": "100", "totp": totp()}
    html = client.post(url, data, **htmx()).content.decode()
    assert "The amount to refund changed: check it and confirm again." in html
    assert text_of(html, "release-readback").startswith("You are refunding ¥100.00 to Shop A")
    assert 'name="confirm_fen" value="10000"' in html
    assert state(money.deposit) == before


def test_changing_the_amount_goes_back_to_the_form(money, login):  # noqa: F811
    client = login("reviewer")
    url = RELEASE.format(money.deposit.pk)
    before = state(money.deposit)
    data = {"refund": "100.00", "reason": "device_damaged", "confirm_fen": "10000", "step": "edit"}
    html = client.post(url, data, **htmx()).content.decode()
    assert 'name="refund"' in html
    assert 'value="100.00"' in html
    assert 'data-testid="release-readback"' not in html
    assert 'data-testid="review-release"' in html
    assert state(money.deposit) == before


@pytest.mark.parametrize("typed", ["٠.٣٠", "0.３٠", "²%", "⁰.⁶%"])
def test_a_rate_with_other_digits_is_refused(money, login, typed):  # noqa: F811
    plans = RatePlan.objects.count()
    response = login("admin").post(
        "/console/plans/new/",
        {
            "code": "rival-digits",
            "name": "Rival",
            "is_competitor": "on",
            "provider_name": "Rival Ltd",
            "effective_from": "2027-01-15",
            "settlement_cycle": "t1",
            "rate_credit": typed,
        },
    )
    expected = f"“{typed}” has digits other than 0–9: type the rate with the digits 0 to 9"
    assert expected in response.content.decode()
    assert RatePlan.objects.count() == plans
