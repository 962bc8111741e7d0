"""The key that signs merchants' data backups, and what a merchant reads to check one.

A backup's ``manifest.json`` lists every file with its size and SHA-256; ``manifest.sig`` is the Ed25519
signature of the manifest's exact bytes (base64). Whoever holds the published public key
(``GET /.well-known/posfleet-backup-key``) can prove, without posfleet, that the bundle is the one
posfleet made and that no byte of it changed since.

The private key comes from ``settings.POSFLEET_BACKUP_SIGNING_KEY`` (32 bytes, base64). Unset
(development, tests), it is derived from SECRET_KEY with HKDF, so it stays the same across restarts and
backups made yesterday still verify. Its id is the first 16 hex digits of the SHA-256 of the raw public
key: the manifest names it, so a bundle signed by a key since replaced says so instead of failing
silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "Ed25519"
DERIVATION_LABEL = b"posfleet backup signing"
KEY_PATH = "/.well-known/posfleet-backup-key"


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    key_id: str
    public_pem: str


def signing_key() -> SigningKey:
    """The current signing key (read from the settings each time, built once per setting)."""
    return _key(settings.POSFLEET_BACKUP_SIGNING_KEY or "", settings.SECRET_KEY)


@lru_cache(maxsize=4)
def _key(configured: str, secret: str) -> SigningKey:
    if configured:
        try:
            seed = base64.b64decode(configured.strip().replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured("POSFLEET_BACKUP_SIGNING_KEY is not base64") from exc
        if len(seed) != 32:
            raise ImproperlyConfigured("POSFLEET_BACKUP_SIGNING_KEY must be 32 bytes (base64)")
    else:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVATION_LABEL)
        seed = hkdf.derive(secret.encode())
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return SigningKey(private, public, hashlib.sha256(raw).hexdigest()[:16], pem)


def sign(data: bytes) -> str:
    """The base64 Ed25519 signature of ``data`` with the current key."""
    return base64.b64encode(signing_key().private.sign(data)).decode()


def signature_valid(data: bytes, signature: str | bytes) -> bool:
    """Whether ``signature`` (base64) is the current key's signature of exactly ``data``."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        signing_key().public.verify(raw, data)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def public_key_pem() -> str:
    """What ``/.well-known/posfleet-backup-key`` serves: the public key, PEM (SubjectPublicKeyInfo)."""
    return signing_key().public_pem


# -- README.txt: how to verify, in the bundle itself (zh and en; docs/backup-verification.md) --------
# The words are in backup_readme.txt (commands are long lines, copied as they are).

README_TEMPLATE = Path(__file__).with_name("backup_readme.txt")


def readme(*, mid: str, name: str, created_at: str) -> str:
    key = signing_key()
    return README_TEMPLATE.read_text(encoding="utf-8").format(
        mid=mid,
        name=name,
        created_at=created_at,
        algorithm=ALGORITHM,
        key_id=key.key_id,
        key_path=KEY_PATH,
        pem=key.public_pem,
    )
