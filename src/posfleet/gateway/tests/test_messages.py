"""Round trips of every message through a real gateway on loopback, with the issuer simulator behind it:
what the terminal reads back, and what was (or was not) recorded."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from posfleet.audit.models import AuditEvent
from posfleet.billing.models import Journal, Transaction
from posfleet.fleet.models import Terminal as TerminalRow
from posfleet.fleet.models import TerminalKey
from posfleet.fleet.services import terminal_transition
from posfleet.fleet.states import Status
from posfleet.gateway import codec, server
from posfleet.gateway import dialect as d
from posfleet.gateway.tests.conftest import terminal_of
from posfleet.platform import keyring, paycrypto
from posfleet.testing.money import on_standard_plan
from posfleet.testing.personas import SYSTEM, make_terminal

pytestmark = pytest.mark.django_db(transaction=True)
CARD = "6225880123456789"


@pytest.fixture
def active(world) -> TerminalRow:  # type: ignore[no-untyped-def]
    on_standard_plan(world.merchant_a)
    return make_terminal(world, "SN-GW-0001", Status.ACTIVE)


def test_activation_issues_a_key_and_the_audit_row_names_its_check_value(active: TerminalRow) -> None:
    key = TerminalKey.objects.get(terminal=active, revoked_at__isnull=True)
    row = AuditEvent.objects.filter(subject_id=active.sn, event_type="terminal.activated").get()
    assert row.after["key_issued"] == key.master_kcv
    assert len(key.master_kcv) == 6


def test_sign_on_then_a_card_sale_is_approved_recorded_and_maced(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    assert pos.sign_on().approved
    reply = pos.sale(12_345, pan=CARD)
    assert reply.code == "00"
    assert reply.mac_ok is True
    assert reply.fields["38"]
    assert reply.fields["37"].isdigit()
    txn = Transaction.objects.get(tid=active.tid, trace_no=reply.fields["11"])
    assert (txn.amount_fen, txn.status, txn.kind, txn.method) == (12_345, "approved", "sale", "credit")
    assert txn.card_masked == "622588******6789"  # never the whole number
    assert txn.fee_fen > 0
    assert txn.capture_journal_id is not None


def test_a_scanned_sale_is_a_qr_payment(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    reply = pos.sale(800, qr_code="284012345678901234", entry_mode="031")
    assert reply.approved
    assert Transaction.objects.get(tid=active.tid, trace_no=reply.fields["11"]).method == "qr"


def test_the_same_sale_twice_answers_94_and_is_recorded_once(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    fields = pos.sale_fields(5_000, pan=CARD)
    assert pos.send_sale_fields(fields).approved
    again = pos.send_sale_fields(fields)
    assert again.code == d.DUPLICATE
    assert Transaction.objects.filter(tid=active.tid, trace_no=fields["11"]).count() == 1


def test_a_tampered_message_fails_its_mac_and_changes_nothing(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    assert pos.session_key is not None
    fields = pos.sale_fields(100, pan=CARD)
    from posfleet.platform import paycrypto

    signed = codec.encode_with_mac(
        d.SALE, fields, lambda data: paycrypto.mac(pos.scheme, pos.session_key, data)
    )  # type: ignore[arg-type]
    tampered = signed.replace(b"\x00\x00\x00\x00\x01\x00", b"\x00\x00\x00\x09\x99\x00", 1)  # 1.00 → 999.00
    assert tampered != signed
    answer = pos.exchange(tampered)
    assert answer.get("39") == d.MAC_FAILURE
    assert not Transaction.objects.filter(tid=active.tid).exists()


def test_without_a_sign_on_there_is_no_session_key_to_mac_with(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    assert pos.sale(100, pan=CARD).code == d.MAC_FAILURE
    assert not Transaction.objects.exists()


def test_the_issuers_declines_and_silence(gateway_factory, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    running = gateway_factory(issuer_timeout=0.5)
    pos = terminal_of(active, running)
    pos.sign_on()
    journals = Journal.objects.count()
    assert pos.sale(1_051, pan=CARD).code == d.INSUFFICIENT_FUNDS
    assert pos.sale(1_005, pan=CARD).code == d.DO_NOT_HONOUR
    assert pos.sale(1_068, pan=CARD).code == d.ISSUER_UNAVAILABLE  # no answer: declined, never assumed
    assert not Transaction.objects.filter(status="approved").exists()
    declined = Transaction.objects.filter(tid=active.tid).order_by("trace_no")
    # the host's declines are recorded (no fee, no money); the unanswered sale's outcome is unknown: not
    assert [(t.status, t.amount_fen, t.response_code, t.fee_fen) for t in declined] == [
        ("declined", 1_051, d.INSUFFICIENT_FUNDS, 0),
        ("declined", 1_005, d.DO_NOT_HONOUR, 0),
    ]
    assert Journal.objects.count() == journals


def test_the_issuer_link_is_kept_but_never_reused_after_a_timeout(
    gateway_factory, active: TerminalRow
) -> None:  # type: ignore[no-untyped-def]
    running = gateway_factory(issuer_timeout=0.5, late=1.0)
    issuer = running.gateway.issuer
    pos = terminal_of(active, running)
    pos.sign_on()
    assert [pos.sale(amount, pan=CARD).code for amount in (1_000, 1_001, 1_002)] == ["00"] * 3
    assert issuer.opened == 1  # one connection to the host, kept open between sales
    late = pos.sale(1_077, pan=CARD)  # the host approves after 1 s; the gateway gives up at 0.5 s
    assert late.code == d.ISSUER_UNAVAILABLE
    time.sleep(0.8)  # the late approval is sent meanwhile, on the link the gateway dropped
    after = pos.sale(1_003, pan=CARD)
    assert after.code == d.APPROVED
    assert issuer.opened == 2  # a new link for the reversal of the unanswered sale, then reused
    recorded = Transaction.objects.filter(tid=active.tid, status="approved").order_by("trace_no")
    assert [t.amount_fen for t in recorded] == [1_000, 1_001, 1_002, 1_003]


def test_a_reversal_cancels_the_sale(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    sale = pos.sale_fields(2_000, pan=CARD)
    assert pos.send_sale_fields(sale).approved
    reply = pos.reversal(sale)
    assert reply.approved
    assert reply.mac_ok
    reversal = Transaction.objects.get(tid=active.tid, kind="reversal")
    assert reversal.original is not None
    assert reversal.original.trace_no == sale["11"]
    unknown = dict(sale, **{"11": "999999"})
    assert pos.reversal(unknown).code == d.NO_ORIGINAL


def test_a_heartbeat_records_last_seen_firmware_and_place(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    assert pos.heartbeat(lat=31.2304, lon=121.4737, firmware="2.1.0").approved
    active.refresh_from_db()
    assert active.last_heartbeat_at is not None
    assert active.firmware_version == "2.1.0"
    assert active.last_location == {"lat": 31.2304, "lon": 121.4737}


def test_unknown_terminals_and_merchants(gateway, active: TerminalRow, world) -> None:  # type: ignore[no-untyped-def]
    stranger = terminal_of(active, gateway)
    stranger.tid = "ZZ999999"
    assert stranger.sign_on().code == d.NOT_PERMITTED
    stranger.tid, stranger.mid = active.tid, world.merchant_b.mid  # another merchant's MID
    assert stranger.sign_on().code == d.NOT_PERMITTED
    stranger.mid = "999999999999999"
    assert stranger.sign_on().code == d.INVALID_MERCHANT


def test_deactivation_revokes_the_key_and_refuses_every_message(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    assert pos.sale(100, pan=CARD).approved
    key = TerminalKey.objects.get(terminal=active, revoked_at__isnull=True)
    terminal_transition(actor=SYSTEM, sn=active.sn, action="deactivate", reason="cost")
    assert pos.sale(100, pan=CARD).code == d.NOT_PERMITTED
    assert pos.sign_on().code == d.NOT_PERMITTED
    assert pos.heartbeat().code == d.NOT_PERMITTED
    key.refresh_from_db()
    assert key.revoked_reason == "deactivated"
    with pytest.raises(keyring.KeyShredded):
        keyring.unseal(key.data_key, key.master_sealed, "anything")
    assert Transaction.objects.filter(tid=active.tid).count() == 1


def test_reactivation_issues_a_new_key_and_the_old_one_no_longer_signs(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    old = terminal_of(active, gateway)
    terminal_transition(actor=SYSTEM, sn=active.sn, action="deactivate", reason="cost")
    terminal_transition(actor=SYSTEM, sn=active.sn, action="reactivate")
    assert old.sign_on().code == d.MAC_FAILURE  # the old master key signs nothing any more
    fresh = terminal_of(active, gateway)
    assert fresh.sign_on().approved
    assert fresh.sale(300, pan=CARD).approved


def test_a_closed_terminal_cannot_sign_on(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    terminal_transition(actor=SYSTEM, sn=active.sn, action="deactivate", reason="cost")
    terminal_transition(actor=SYSTEM, sn=active.sn, action="deregister", reason="business_change")
    assert pos.sign_on().code == d.NOT_PERMITTED
    assert not TerminalKey.objects.filter(terminal=active, revoked_at__isnull=True).exists()


def test_garbage_closes_only_its_own_connection(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as raw:
        raw.sendall(struct.pack(">H", 12) + b"\x60\x00\x00\x00\x01" + b"garbage")
        assert raw.recv(100) == b""  # closed: not even a message type could be read
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as raw:
        raw.sendall(struct.pack(">H", 60_000))  # over the size limit
        assert raw.recv(100) == b""
    assert pos.sale(100, pan=CARD).approved  # the others never noticed


def test_a_readable_message_with_a_wrong_field_answers_30(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    pos.sign_on()
    fields = pos.sale_fields(100, pan=CARD)
    fields["49"] = "840"  # dollars
    answer = pos.exchange(codec.encode(d.SALE, {**fields, "64": "00" * 8}))
    assert answer.get("39") == d.FORMAT_ERROR
    assert not Transaction.objects.exists()


def test_an_sm4_model_signs_on_and_macs_with_sm4(gateway, world) -> None:  # type: ignore[no-untyped-def]
    from posfleet.fleet.models import TerminalModel

    on_standard_plan(world.merchant_a)
    sm4 = TerminalModel.objects.create(
        code="newland-n910", maker="Newland", name="N910", kind="smart", key_scheme="sm4"
    )
    row = make_terminal(world, "SN-GW-SM4", Status.ACTIVE, model=sm4)
    pos = terminal_of(row, gateway)
    assert pos.scheme == "sm4"
    assert pos.sign_on().approved
    reply = pos.sale(4_200, pan=CARD)
    assert reply.approved
    assert reply.mac_ok is True
    # The same message MACed with 3DES instead is refused.
    pos.scheme = paycrypto.Algorithm.X919
    assert pos.sale(4_200, pan=CARD).code == d.MAC_FAILURE


def test_a_sign_on_without_the_master_key_takes_nothing_away(gateway, active: TerminalRow) -> None:  # type: ignore[no-untyped-def]
    pos = terminal_of(active, gateway)
    assert pos.sign_on().approved
    key = TerminalKey.objects.get(terminal=active, revoked_at__isnull=True)
    impostor = terminal_of(active, gateway)
    impostor.master_key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # knows the TID and MID only
    assert impostor.sign_on().code == d.MAC_FAILURE
    after = TerminalKey.objects.get(pk=key.pk)
    assert (after.session_sealed, after.signed_on_at) == (key.session_sealed, key.signed_on_at)
    assert pos.sale(700, pan=CARD).approved  # the real terminal's session still stands


def test_messages_checked_together_each_get_their_own_answer(gateway, world) -> None:  # type: ignore[no-untyped-def]
    """The financial messages that arrive together are checked in one trip (``server._admit_many``):
    the terminals in one query, the natural keys in another — and each message still gets its own
    answer: approved for the issuer, a bad MAC, a duplicate, a malformed amount, a deactivated
    terminal. Nothing is written by the checks."""
    on_standard_plan(world.merchant_a)
    rows = [make_terminal(world, f"SN-ADMIT-{n}", Status.ACTIVE) for n in range(4)]
    good, tampered, replayed, stopped = (terminal_of(row, gateway) for row in rows)
    for pos in (good, tampered, replayed, stopped):
        assert pos.sign_on().approved
    recorded = replayed.sale_fields(1_000, pan=CARD)
    assert replayed.send_sale_fields(recorded).approved
    altered = bytearray(tampered.financial_request(d.SALE, tampered.sale_fields(2_000, pan=CARD)))
    at = bytes(altered).index(b"\x00\x00\x00\x00\x20\x00")  # field 4, BCD: 2,000 fen → 2,001
    altered[at + 5] = 0x01
    zero = good.sale_fields(0, pan=CARD)
    batch = [
        good.financial_request(d.SALE, good.sale_fields(3_000, pan=CARD)),
        bytes(altered),
        replayed.financial_request(d.SALE, recorded),
        good.financial_request(d.SALE, zero),
    ]
    messages = [codec.decode(raw) for raw in batch]
    before = Transaction.objects.count()
    with CaptureQueriesContext(connection) as queries:
        admitted = server._admit_many(messages)
    assert [each[0] for each in admitted] == [d.APPROVED, d.MAC_FAILURE, d.DUPLICATE, d.FORMAT_ERROR]
    assert len(queries.captured_queries) == 2
    assert admitted[0][3] is not None and admitted[0][3].amount_fen == 3_000  # noqa: PT018

    terminal_transition(actor=SYSTEM, sn=rows[3].sn, action="deactivate", reason="cost")
    late = codec.decode(stopped.financial_request(d.SALE, stopped.sale_fields(4_000, pan=CARD)))
    again = server._admit_many([*messages, late])
    assert [each[0] for each in again] == [
        d.APPROVED,
        d.MAC_FAILURE,
        d.DUPLICATE,
        d.FORMAT_ERROR,
        d.NOT_PERMITTED,
    ]
    assert Transaction.objects.count() == before
