"""Proving the chain intact: every row's hash recomputed, every link and the head checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from posfleet.audit.chain import GENESIS_HASH, HASHED_FIELDS, compute_hash
from posfleet.audit.models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    last_seq: int
    problem: str = ""
    bad_seq: int | None = None


def verify_chain(*, progress: Callable[[int], None] | None = None, chunk: int = 5000) -> VerifyResult:
    """Walk the whole chain in order. Stops at the first bad event and names it."""
    from django.conf import settings

    key = settings.POSFLEET_AUDIT_KEY.encode()
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        if not AuditEvent.objects.exists():
            return VerifyResult(True, 0, 0)
        return VerifyResult(False, 0, 0, "the chain head is missing", None)
    columns = (*HASHED_FIELDS, "prev_hash", "hash")
    expected_seq, prev = 1, GENESIS_HASH
    checked = 0
    rows = AuditEvent.objects.order_by("seq").values_list(*columns).iterator(chunk_size=chunk)
    for row in rows:
        content = dict(zip(columns, row, strict=True))
        seq = content["seq"]
        if seq != expected_seq:
            if seq > expected_seq:
                return VerifyResult(
                    False,
                    checked,
                    expected_seq - 1,
                    f"event #{expected_seq} is missing (deleted or never written)",
                    expected_seq,
                )
            return VerifyResult(False, checked, expected_seq - 1, f"event #{seq} is out of order", seq)
        if content["prev_hash"] != prev:
            return VerifyResult(
                False,
                checked,
                seq - 1,
                f"event #{seq} does not link to event #{seq - 1} (reordered, replaced or inserted)",
                seq,
            )
        if compute_hash(prev, content, key) != content["hash"]:
            return VerifyResult(
                False, checked, seq - 1, f"event #{seq} was altered after it was written", seq
            )
        prev = content["hash"]
        expected_seq += 1
        checked += 1
        if progress is not None and checked % chunk == 0:
            progress(checked)
    last = expected_seq - 1
    if head.last_seq != last or head.last_hash != prev:
        if head.last_seq > last:
            return VerifyResult(
                False,
                checked,
                last,
                f"the chain ends at event #{last} but its head records #{head.last_seq}: "
                f"events #{last + 1}..#{head.last_seq} were cut off",
                last + 1,
            )
        return VerifyResult(False, checked, last, "the chain head does not match the last event", last)
    if progress is not None:
        progress(checked)
    return VerifyResult(True, checked, last)
