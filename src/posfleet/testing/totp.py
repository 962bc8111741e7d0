"""TOTP helpers for tests and the demo: the demo secret and code generation at a given time."""

from __future__ import annotations

import base64
import binascii
import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from posfleet.iam.models import User

DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # demo data only: printed by `make run`, shown on the login page


def hex_key(base32_secret: str) -> str:
    return binascii.hexlify(base64.b32decode(base32_secret)).decode()


def enrol(user: User, secret: str = DEMO_TOTP_SECRET) -> TOTPDevice:
    TOTPDevice.objects.filter(user=user).delete()
    return TOTPDevice.objects.create(user=user, name="authenticator", key=hex_key(secret), confirmed=True)


def code_at(at: float | None = None, secret: str = DEMO_TOTP_SECRET) -> str:
    totp = TOTP(base64.b32decode(secret), step=30, t0=0, digits=6)
    totp.time = at if at is not None else time.time()
    return f"{totp.token():06d}"
