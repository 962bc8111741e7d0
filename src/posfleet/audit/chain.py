"""The hash of one audit event, and the canonical form it is computed over.

``hash = HMAC-SHA256(key, prev_hash ‖ canonical_json(content))``. The content includes the sequence
number and the previous hash, so editing, deleting, inserting or reordering any row changes a hash
that the next rows depend on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

GENESIS_HASH = "0" * 64

# The fields that are hashed, in the order they appear in the canonical form.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "event_type",
    "actor_kind",
    "actor_id",
    "actor_label",
    "organisation_id",
    "subject_type",
    "subject_id",
    "reason",
    "note",
    "outcome",
    "request_id",
    "source_ip",
    "before",
    "after",
)


def _normalise(field: str, value: Any) -> Any:
    if field == "occurred_at":
        assert isinstance(value, datetime)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if field == "source_ip" and value:
        return ipaddress.ip_address(value).compressed
    return value


def canonical(content: dict[str, Any]) -> bytes:
    doc = {f: _normalise(f, content.get(f)) for f in HASHED_FIELDS}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(prev_hash: str, content: dict[str, Any], key: bytes | None = None) -> str:
    key = key if key is not None else settings.POSFLEET_AUDIT_KEY.encode()
    mac = hmac.new(key, prev_hash.encode("ascii") + b"\n", hashlib.sha256)
    mac.update(canonical(content))
    return mac.hexdigest()
