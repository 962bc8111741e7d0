"""The terminal-status gate and the database work of each message (ADR 0025), run in the gateway's
worker threads: every call reads committed state, nothing is cached between messages.

- ``look_many`` reads the terminals by TID (and their merchants' MIDs, their models' key schemes, their
  live keys) in one query for the messages that arrived together
  (``fleet.selectors.terminals_for_gateway``): unknown pair → ``58``, unknown merchant →
  ``03``, any status but ``active`` → ``58``.
- ``post`` is where sales and reversals are approved: in one transaction it locks the terminals' rows
  (``FOR UPDATE`` on PostgreSQL; SQLite's writers are serialised already), reads their status again,
  and records the messages through the money code's ingest service. A deactivation holds the same row
  ``FOR UPDATE``, so each comes strictly before or after the other: once a deactivation has committed,
  no later message is approved, on any gateway process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction

from posfleet.billing.natural_keys import transactions_recorded
from posfleet.billing.services.transactions import TxnIn, transactions_ingest
from posfleet.billing.services.transactions import items as codes
from posfleet.fleet import selectors as fleet
from posfleet.fleet.services import keys, terminal_heartbeat
from posfleet.fleet.services.locks import statuses_for_approval
from posfleet.fleet.states import Status
from posfleet.gateway import dialect as d
from posfleet.parties.selectors import mid_taken
from posfleet.platform import clock, paycrypto
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed

if TYPE_CHECKING:
    from posfleet.fleet.models import TerminalKey

ACTOR = Actor.system("gateway")


@dataclass(frozen=True)
class View:
    """What the gate knows of a terminal for one message."""

    terminal_id: int
    sn: str
    tid: str
    mid: str
    status: str
    scheme: str
    key: TerminalKey | None

    @property
    def active(self) -> bool:
        return self.status == Status.ACTIVE


def look(tid: str, mid: str) -> tuple[str, View | None]:
    """(response code, view): ``00`` with the view of an active terminal of that merchant that has a
    key; otherwise ``58`` (any other state, no key, or a TID not of that merchant), or ``03`` when no
    merchant has that MID. The view is there whenever the TID/MID pair is known (a heartbeat's last
    seen is recorded whatever the answer)."""
    return look_many([(tid, mid)])[0]


def look_many(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, View | None]]:
    """``look`` for each (TID, MID) pair, the terminals read in one query (the messages that arrived
    together: ``server.Gateway._admit``)."""
    found = fleet.terminals_for_gateway(tid for tid, _mid in pairs)
    return [_looked(tid, mid, found.get(tid)) for tid, mid in pairs]


def _looked(
    tid: str, mid: str, found: tuple[dict[str, Any], TerminalKey | None] | None
) -> tuple[str, View | None]:
    if found is None or found[0]["mid"] != mid:
        return (d.NOT_PERMITTED if mid and mid_taken(mid) else d.INVALID_MERCHANT), None
    row, key = found
    status, terminal_id = row["status"], row["pk"]
    view = View(
        terminal_id=terminal_id,
        sn=row["sn"],
        tid=tid,
        mid=mid,
        status=status,
        scheme=row["model__key_scheme"],
        key=key if status == Status.ACTIVE else None,
    )
    if not view.active or view.key is None:
        return d.NOT_PERMITTED, view
    return d.APPROVED, view


def sign_on(view: View, mac_data: bytes, given: bytes) -> keys.SessionKey | None:
    """A session key for the terminal whose sign-on is MACed with its master key; None when the MAC
    is wrong or the key was revoked meanwhile (nothing is written then)."""
    assert view.key is not None
    algorithm = paycrypto.Algorithm(view.key.scheme)
    if not paycrypto.verify_mac(algorithm, keys.master_key(view.key), mac_data, given):
        return None
    return keys.session_key_issue(view.key)


def session_key(view: View) -> tuple[paycrypto.Algorithm, bytes] | None:
    """The algorithm and session key that MAC this terminal's messages; None before a sign-on."""
    if view.key is None:
        return None
    clear = keys.session_key(view.key)
    if clear is None:
        return None
    return paycrypto.Algorithm(view.key.scheme), clear


def heartbeat(terminal_id: int, firmware: str, location: dict[str, float] | None) -> bool:
    """Record the beat (last seen, firmware, place: ``fleet.services.terminal_heartbeat``); False when
    its firmware or place is refused as malformed (nothing is recorded then)."""
    terminal = fleet.terminal_by_pk(terminal_id)
    try:
        terminal_heartbeat(terminal=terminal, firmware=firmware, location=location, source="gateway")
    except ValidationFailed:
        return False
    return True


@dataclass(frozen=True)
class Posting:
    """A sale or reversal to be recorded: approved by the issuer, or a sale it declined (``status``
    ``declined`` with the issuer's ``response_code``: recorded, it moves no money)."""

    tid: str
    batch_no: str
    trace_no: str
    txn_date: date
    method: str
    entry_mode: str
    amount_fen: int
    card_masked: str
    kind: str = "sale"
    original: tuple[str, str, str, date] | None = None
    status: str = "approved"
    response_code: str = d.APPROVED


def already_recorded(postings: Sequence[Posting]) -> set[tuple[str, str, str, date]]:
    """The natural keys (TID, batch, trace, date) of these postings that are recorded already (``94``):
    one query."""
    return set(transactions_recorded([natural_key(p) for p in postings]))


def natural_key(posting: Posting) -> tuple[str, str, str, date]:
    return (posting.tid, posting.batch_no, posting.trace_no, posting.txn_date)


def recorded_ids(postings: list[Posting]) -> list[int | None]:
    """For postings whose group's outcome is unknown (the poster process died while writing it: its
    transaction committed or not), the id each was recorded under, or None: what happened, read back."""
    found = transactions_recorded([natural_key(p) for p in postings])
    return [found.get(natural_key(p)) for p in postings]


def post(items: list[tuple[int, Posting]]) -> list[tuple[str, int | None]]:
    """Record postings — (terminal id, posting) pairs — all in one transaction (the gateway groups the
    postings that wait while one is being written); for each, the response code for its terminal —
    ``00`` recorded, ``94`` a duplicate (nothing written), ``58`` the terminal is no longer active,
    ``25`` no such original, ``30`` refused as malformed — and the transaction's id when one was
    recorded. Runs in the gateway's poster process (``poster.py``) or its posting thread."""
    answers: list[tuple[str, int | None]] = [(d.NOT_PERMITTED, None)] * len(items)
    with transaction.atomic():
        statuses = statuses_for_approval(sorted({terminal_id for terminal_id, _posting in items}))
        at = clock.now()  # after the locks: an approval is dated before any later deactivation
        chosen = [
            i for i, (terminal_id, _posting) in enumerate(items) if statuses.get(terminal_id) == Status.ACTIVE
        ]
        if not chosen:
            return answers
        results = transactions_ingest(actor=ACTOR, items=[_txn(items[i][1], at) for i in chosen])
    for i, result in zip(chosen, results, strict=True):
        if result.ok:
            answers[i] = (d.DUPLICATE, None) if result.replayed else (d.APPROVED, result.transaction_id)
        else:
            answers[i] = (_REFUSAL_CODES.get(result.code or "", d.FORMAT_ERROR), None)
    return answers


def _txn(posting: Posting, at: datetime) -> TxnIn:
    return TxnIn(
        tid=posting.tid,
        batch_no=posting.batch_no,
        trace_no=posting.trace_no,
        txn_date=posting.txn_date,
        occurred_at=at,
        method=posting.method,
        entry_mode=posting.entry_mode,
        amount_fen=posting.amount_fen,
        kind=posting.kind,
        card_masked=posting.card_masked,
        original=posting.original,
        status=posting.status,
        response_code=posting.response_code,
    )


_REFUSAL_CODES = {
    codes.DUPLICATE_KEY_CONFLICT: d.DUPLICATE,
    codes.TERMINAL_NOT_ACTIVE: d.NOT_PERMITTED,
    codes.UNKNOWN_TERMINAL: d.NOT_PERMITTED,
    codes.ORIGINAL_NOT_FOUND: d.NO_ORIGINAL,
    codes.ORIGINAL_OTHER_MERCHANT: d.NO_ORIGINAL,
    codes.REVERSAL_OTHER_TERMINAL: d.NO_ORIGINAL,
    codes.REVERSAL_NOT_SAME_DAY: d.NO_ORIGINAL,
    codes.REVERSAL_NOT_FULL_AMOUNT: d.NO_ORIGINAL,
    codes.REFUND_EXCEEDS_SALE: d.DUPLICATE,  # a second reversal of a sale already reversed
    codes.NO_RATE_PLAN: d.SYSTEM_ERROR,
    codes.NO_RATE_FOR_METHOD: d.NOT_PERMITTED,
}
