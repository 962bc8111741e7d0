"""One transaction as the acquirer or terminal reports it, its result, and the checks that need no
database (formats, enumerations, amounts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils.translation import gettext as _

from posfleet.billing.models import EntryMode, PaymentMethod, TransactionKind, TransactionStatus

MAX_BATCH = 10_000

# The stable codes of a refused item (TxnResult.code); the API and the CSV report show them as is.
UNKNOWN_TERMINAL = "unknown_terminal"
TERMINAL_NOT_ACTIVE = "terminal_not_active"  # billing.errors.TerminalNotActive.code
NO_RATE_PLAN = "no_rate_plan"  # billing.errors.NoRatePlan.code
NO_RATE_FOR_METHOD = "no_rate_for_method"
INVALID_KEY = "invalid_key"
INVALID_AMOUNT = "invalid_amount"
INVALID_METHOD = "invalid_method"
INVALID_ENTRY_MODE = "invalid_entry_mode"
INVALID_KIND = "invalid_kind"
INVALID_STATUS = "invalid_status"
INVALID_TIME = "invalid_time"
INVALID_CARD = "invalid_card"
INVALID_RESPONSE_CODE = "invalid_response_code"
INVALID_EXTERNAL_ID = "invalid_external_id"
ORIGINAL_MISSING = "original_missing"
ORIGINAL_NOT_ALLOWED = "original_not_allowed"
ORIGINAL_NOT_FOUND = "original_not_found"
ORIGINAL_OTHER_MERCHANT = "original_other_merchant"
REFUND_EXCEEDS_SALE = "refund_exceeds_sale"
REVERSAL_OTHER_TERMINAL = "reversal_other_terminal"
REVERSAL_NOT_SAME_DAY = "reversal_not_same_day"
REVERSAL_NOT_FULL_AMOUNT = "reversal_not_full_amount"
DUPLICATE_KEY_CONFLICT = "duplicate_key_conflict"

Key = tuple[str, str, str, date]  # (tid, batch_no, trace_no, txn_date): the acquirer's natural key

_METHODS = frozenset(PaymentMethod.values)
_ENTRY_MODES = frozenset(EntryMode.values)
_KINDS = frozenset(TransactionKind.values)
_STATUSES = frozenset(TransactionStatus.values)
_LABELS = {
    INVALID_METHOD: lambda: _("payment method"),
    INVALID_ENTRY_MODE: lambda: _("entry mode"),
    INVALID_KIND: lambda: _("kind"),
    INVALID_STATUS: lambda: _("status"),
}
_TID = re.compile(r"^[0-9A-Z]{8}$")
_NUMBER = re.compile(r"^[0-9]{1,6}$")
_CARD = re.compile(r"^[0-9]{6}[*Xx]{2,9}[0-9]{4}$")
_RESPONSE = re.compile(r"^[0-9A-Z]{2}$")


@dataclass(frozen=True)
class TxnIn:
    """One transaction as the acquirer/terminal reports it."""

    tid: str
    batch_no: str
    trace_no: str
    txn_date: date
    occurred_at: datetime
    method: str  # PaymentMethod value
    entry_mode: str  # EntryMode value
    amount_fen: int
    kind: str = TransactionKind.SALE  # sale | refund | reversal
    status: str = TransactionStatus.APPROVED  # approved | declined
    card_masked: str = ""
    response_code: str = "00"
    external_id: str | None = None
    # (tid, batch_no, trace_no, txn_date) of the sale, for a refund or reversal
    original: tuple[str, str, str, date] | None = None
    original_external_id: str | None = None

    @property
    def key(self) -> Key:
        return (self.tid, self.batch_no, self.trace_no, self.txn_date)


@dataclass(frozen=True)
class TxnResult:
    index: int
    ok: bool
    transaction_id: int | None = None
    fee_fen: int | None = None  # the fee charged (sale) or returned (refund, reversal)
    code: str | None = None
    detail: str | None = None
    replayed: bool = False


def refused(index: int, code: str, detail: Any) -> TxnResult:
    return TxnResult(index=index, ok=False, code=code, detail=str(detail))


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_item(item: TxnIn) -> tuple[str, str] | None:
    """The first thing wrong with ``item`` that needs no database, as (code, detail); None if fine."""
    if not (
        isinstance(item.tid, str)
        and _TID.match(item.tid)
        and isinstance(item.batch_no, str)
        and _NUMBER.match(item.batch_no)
        and isinstance(item.trace_no, str)
        and _NUMBER.match(item.trace_no)
        and isinstance(item.txn_date, date)
        and not isinstance(item.txn_date, datetime)
    ):
        return INVALID_KEY, _(
            "The key is a TID of 8 digits or capital letters, a batch number and a trace number of "
            "1 to 6 digits, and a date."
        )
    if not _is_fen(item.amount_fen) or item.amount_fen <= 0:
        return INVALID_AMOUNT, _("The amount is a whole, positive number of fen.")
    if not isinstance(item.occurred_at, datetime) or item.occurred_at.utcoffset() is None:
        return INVALID_TIME, _("The time of the transaction needs a date, a time and a time zone.")
    for code, value, choices in (
        (INVALID_METHOD, item.method, _METHODS),
        (INVALID_ENTRY_MODE, item.entry_mode, _ENTRY_MODES),
        (INVALID_KIND, item.kind, _KINDS),
        (INVALID_STATUS, item.status, _STATUSES),
    ):
        if value not in choices:
            return code, _("Unknown %(what)s “%(value)s”; one of: %(choices)s.") % {
                "what": _LABELS[code](),
                "value": str(value)[:16],
                "choices": ", ".join(sorted(choices)),
            }
    if not isinstance(item.card_masked, str) or (item.card_masked and not _CARD.match(item.card_masked)):
        return INVALID_CARD, _("Only a masked card number (first 6 and last 4 digits) is stored.")
    if not isinstance(item.response_code, str) or not _RESPONSE.match(item.response_code):
        return INVALID_RESPONSE_CODE, _("The response code is 2 digits or capital letters.")
    for external in (item.external_id, item.original_external_id):
        if external is not None and not (isinstance(external, str) and 0 < len(external) <= 64):
            return INVALID_EXTERNAL_ID, _("An external id is 1 to 64 characters.")
    follow_up = item.kind != TransactionKind.SALE
    names_original = item.original is not None or item.original_external_id is not None
    if follow_up and not names_original:
        return ORIGINAL_MISSING, _("A refund or reversal names the sale it belongs to.")
    if not follow_up and names_original:
        return ORIGINAL_NOT_ALLOWED, _("A sale does not name an original transaction.")
    if item.original is not None:
        parts = tuple(item.original) if isinstance(item.original, tuple | list) else ()
        tid, batch_no, trace_no, day = (parts + (None,) * 4)[:4]
        if not (
            len(parts) == 4
            and isinstance(tid, str)
            and _TID.match(tid)
            and isinstance(batch_no, str)
            and _NUMBER.match(batch_no)
            and isinstance(trace_no, str)
            and _NUMBER.match(trace_no)
            and isinstance(day, date)
        ):
            return INVALID_KEY, _("The original is named by its TID, batch number, trace number and date.")
    return None
