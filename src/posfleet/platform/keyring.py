"""Envelope encryption of personal data with one key per data subject (ARCHITECTURE "PII encryption").

Each subject (an applicant, then the merchant it becomes) has a random 256-bit data key, stored only
wrapped (AES-GCM) by a master key that never touches the database. Values are sealed with AES-GCM
under the subject's key, with a fresh 96-bit nonce and associated data naming where the value lives
(``table:column:id``), so a sealed value copied to another row or column does not open. Destroying the
data key (``shred``) makes every sealed value of that subject unreadable, wherever copies remain.

Settings: ``POSFLEET_KEYRING = {"CURRENT": "k1", "KEYS": {"k1": <32 bytes, urlsafe base64>}}``. Old
master keys stay listed until every data key is rewrapped (``rewrap``).
"""

from __future__ import annotations

import base64
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from posfleet.platform.clock import now
from posfleet.platform.errors import DomainError
from posfleet.platform.models import DataKey

FORMAT = b"\x01"  # version byte of a sealed value: 1 = AES-256-GCM, nonce(12) | ciphertext+tag
NONCE_BYTES = 12


class KeyShredded(DomainError):
    """The subject's key was destroyed: the data is gone for good (by design)."""

    code = "data_shredded"
    status = 410
    title = _("This personal data was destroyed and can no longer be read.")


class SealBroken(DomainError):
    code = "data_unreadable"
    status = 500
    title = _("A sealed value could not be opened (wrong key or tampered data).")


def _master(kek_id: str) -> AESGCM:
    keys = settings.POSFLEET_KEYRING["KEYS"]
    if kek_id not in keys:
        raise ImproperlyConfigured(f"master key {kek_id!r} is not in POSFLEET_KEYRING")
    raw = base64.urlsafe_b64decode(keys[kek_id])
    if len(raw) != 32:
        raise ImproperlyConfigured(f"master key {kek_id!r} must be 32 bytes")
    return AESGCM(raw)


def _wrap(kek_id: str, key_id: uuid.UUID, dek: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _master(kek_id).encrypt(nonce, dek, f"datakey:{key_id}".encode())


def new_key() -> DataKey:
    """A fresh data key for a new subject (saved; call inside the transaction that uses it)."""
    kek_id = settings.POSFLEET_KEYRING["CURRENT"]
    key_id = uuid.uuid4()
    dek = AESGCM.generate_key(bit_length=256)
    return DataKey.objects.create(
        id=key_id, kek_id=kek_id, wrapped=_wrap(kek_id, key_id, dek), created_at=now()
    )


def new_keys(count: int) -> list[DataKey]:
    """``count`` fresh data keys saved with one bulk insert (many subjects at once: the demo's terminals);
    call inside the transaction that uses them."""
    kek_id = settings.POSFLEET_KEYRING["CURRENT"]
    at = now()
    keys = []
    for _n in range(count):
        key_id = uuid.uuid4()
        dek = AESGCM.generate_key(bit_length=256)
        keys.append(DataKey(id=key_id, kek_id=kek_id, wrapped=_wrap(kek_id, key_id, dek), created_at=at))
    return DataKey.objects.bulk_create(keys)


def _dek(key: DataKey) -> bytes:
    wrapped = bytes(key.wrapped or b"")
    if key.shredded_at is not None or not wrapped:
        raise KeyShredded()
    try:
        return _master(key.kek_id).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], f"datakey:{key.id}".encode()
        )
    except InvalidTag as exc:
        raise SealBroken() from exc


def seal(key: DataKey, plaintext: bytes, where: str) -> bytes:
    """``plaintext`` encrypted under the subject's key, bound to ``where`` (e.g. ``application:42:kyc``)."""
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT + nonce + AESGCM(_dek(key)).encrypt(nonce, plaintext, where.encode())


def unseal(key: DataKey, sealed: bytes | memoryview, where: str) -> bytes:
    sealed = bytes(sealed)
    if sealed[:1] != FORMAT:
        raise SealBroken()
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(_dek(key)).decrypt(nonce, body, where.encode())
    except InvalidTag as exc:
        raise SealBroken() from exc


def shred(key: DataKey) -> bool:
    """Destroy the data key (crypto-shredding). Idempotent: False when it was already gone."""
    changed = DataKey.objects.filter(pk=key.pk, shredded_at__isnull=True).update(
        wrapped=b"", shredded_at=now()
    )
    key.refresh_from_db()
    return bool(changed)


def rewrap(*, batch: int = 500) -> int:
    """Wrap every live data key under the current master key (after adding a new one). Returns the count."""
    current = settings.POSFLEET_KEYRING["CURRENT"]
    done = 0
    for key in (
        DataKey.objects.filter(shredded_at__isnull=True).exclude(kek_id=current).iterator(chunk_size=batch)
    ):
        dek = _dek(key)
        DataKey.objects.filter(pk=key.pk, kek_id=key.kek_id).update(
            kek_id=current, wrapped=_wrap(current, key.id, dek)
        )
        done += 1
    return done
