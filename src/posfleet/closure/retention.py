"""The end of retention (DOMAIN.md "Data and privacy"): a closed merchant's personal data is destroyed
by destroying its data key (crypto-shredding, platform/keyring.py): every value sealed under it — the
KYC data and documents of its applications, wherever copies remain — can no longer be opened. Its
transaction records, settlements, ledger and audit trail are kept: they are the acquiring records the
law keeps (5 years in China), and hold no KYC data.

A merchant is due when it is closed for good: its status is closed, no terminal is still with it, every
closure case of it is final, and the later of its closure and its last case's end is older than
``POSFLEET_CLOSURE["RETENTION_YEARS"]`` (never under 5). The sweep runs daily (config/schedule.py) and is
safe to run twice: a merchant whose key is gone is skipped, and the key is destroyed with
compare-and-set, once.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction

from posfleet.audit.selectors import events_about
from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.closure import backup_rules  # noqa: F401  (registers closure.shred_data)
from posfleet.closure.models import ClosureCase
from posfleet.closure.states import OPEN
from posfleet.fleet.selectors import merchant_holds_terminals
from posfleet.parties.selectors import merchant_for
from posfleet.parties.states import MerchantStatus
from posfleet.platform import keyring
from posfleet.platform.clock import now
from posfleet.platform.context import Actor

MIN_RETENTION_YEARS = 5  # acquiring records in China: the floor whatever the setting says


def retention_years() -> int:
    return max(MIN_RETENTION_YEARS, int(settings.POSFLEET_CLOSURE["RETENTION_YEARS"]))


def years_before(at: datetime, years: int) -> datetime:
    """The same moment ``years`` earlier (29 February becomes the 28th)."""
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def retention_sweep(*, actor: Actor, at: datetime | None = None) -> int:
    """Crypto-shred the personal data of every merchant past retention (see the module). Returns how
    many merchants' data was destroyed by this run; each one is audited (``merchant.data_shredded``)."""
    actor.require("closure.shred_data")
    at = at or now()
    cutoff = years_before(at, retention_years())
    closed = (
        events_about("merchant")
        .filter(event_type=EventType.MERCHANT_CLOSED, occurred_at__lt=cutoff)
        .order_by("seq")
        .values_list("subject_id", "occurred_at")
    )
    shredded = 0
    for mid, closed_at in closed.iterator(chunk_size=500):
        if _shred_if_due(actor, mid, closed_at, cutoff):
            shredded += 1
    return shredded


def _shred_if_due(actor: Actor, mid: str, closed_at: datetime, cutoff: datetime) -> bool:
    merchant = merchant_for(None, mid)
    key = merchant.data_key
    if merchant.status != MerchantStatus.CLOSED or key is None or key.shredded_at is not None:
        return False  # nothing sealed, or already destroyed
    if merchant_holds_terminals(merchant.pk):
        return False
    cases = ClosureCase.objects.filter(merchant_id=merchant.pk)
    if cases.filter(status__in=OPEN).exists():
        return False
    last_case = cases.exclude(ended_at=None).order_by("-ended_at").values_list("ended_at", flat=True).first()
    if last_case is not None and last_case >= cutoff:
        return False
    with transaction.atomic():
        if not keyring.shred(key):
            return False  # another sweep got there first
        record(
            actor,
            Entry(
                event_type=EventType.MERCHANT_DATA_SHREDDED,
                subject_type="merchant",
                subject_id=merchant.mid,
                reason="retention_ended",
                after={
                    "closed_at": max(closed_at, last_case or closed_at).isoformat(),
                    "retention_years": retention_years(),
                    "data_key": str(key.pk),
                },
            ),
        )
    return True
