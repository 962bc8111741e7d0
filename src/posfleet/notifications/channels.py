"""The ways a notice leaves posfleet: e-mail over SMTP, SMS through an HTTP provider, signed webhooks.

Each sender raises ``DeliveryError`` with a short, address-free reason when the far end refuses or
cannot be reached; the caller retries with backoff. Every message carries the event id (e-mail header
``X-Posfleet-Event-Id``, SMS field ``id``, webhook header ``webhook-id``) so that a receiver which gets
a message twice — a crash between sending and recording — can drop the copy.

The HTTP channels connect through ``outbound`` (ADR 0021): one parse of the URL, one resolution, a
connection to exactly the address checked; a webhook only to globally routable addresses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import secrets
import smtplib
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from standardwebhooks.webhooks import Webhook

from posfleet.notifications import outbound

TIMEOUT = 10  # seconds, the HTTP channels (SMTP: MAILERS' timeout option)


class DeliveryError(Exception):
    """The channel did not take the message. ``reason`` is safe to store and show (no address)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:200]
        self.permanent = permanent


def send_email(*, to: str, subject: str, body: str, event_id: str) -> None:
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"X-Posfleet-Event-Id": event_id},
    )
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _msg in exc.recipients.values()})
        raise DeliveryError(
            f"SMTP recipient refused ({', '.join(map(str, codes))})", permanent=min(codes) >= 500
        ) from None
    except smtplib.SMTPResponseException as exc:  # 5xx: the server will never take it; 4xx: later
        raise DeliveryError(f"SMTP {exc.smtp_code}", permanent=exc.smtp_code >= 500) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP unreachable ({type(exc).__name__})") from None


_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_PHONE_DECORATION = re.compile(r"[\s().-]")


def sms_number(phone: str) -> str:
    """The mainland China mobile number in ``phone`` — ``13800000001``, ``138 0000 0001``,
    ``+86-138-0000-0001`` — as the SMS provider takes it (11 digits), or "" when ``phone`` is none (a
    landline, an extension, nothing): the one rule of whether a merchant's contact can get an SMS."""
    digits = _PHONE_DECORATION.sub("", phone or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits.removeprefix(prefix)
            break
    return digits if _MOBILE.fullmatch(digits) else ""


def sms_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_sms(*, to: str, text: str, event_id: str) -> None:
    """POST ``{"id", "to", "text"}`` as JSON to the provider's URL, signed with HMAC-SHA256 of the body
    (header ``X-Posfleet-Signature``). A 2xx answer is delivery; 4xx other than 408/429 is permanent."""
    url = settings.POSFLEET_NOTIFY["SMS_URL"]
    if not url:
        raise DeliveryError("SMS is not configured", permanent=True)
    body = json.dumps({"id": event_id, "to": to, "text": text}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    secret = settings.POSFLEET_NOTIFY["SMS_SECRET"]
    if secret:
        headers["X-Posfleet-Signature"] = sms_signature(secret, body)
    try:  # the operator's own setting: a private address is allowed (an SMS gateway inside)
        destination = outbound.parse(url, schemes=frozenset({"http", "https"}))
        addresses = outbound.resolve(destination, public_only=False)
    except outbound.Refused as refused:
        raise DeliveryError(
            f"SMS provider URL refused ({refused.code})", permanent=not refused.transient
        ) from None
    _post(destination, addresses, body, headers, what="SMS provider")


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_headers(
    *, msg_id: str, body: str, secrets_: list[str], at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers; one ``v1,`` signature per valid secret (two during a rotation)."""
    when = (at or datetime.now(tz=UTC)).astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets_)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
        "Content-Type": "application/json",
    }


def webhook_destination(url: str, *, resolve: bool) -> tuple[outbound.Destination, list[str]]:
    """The one check of a webhook URL (ADR 0021), at save time and again at every delivery: parsed
    once; with ``resolve``, its host resolved once and, unless ``WEBHOOK_ALLOW_PRIVATE`` (tests, labs),
    every address public. Returns what a delivery connects to; raises ``outbound.Refused``."""
    policy = settings.POSFLEET_NOTIFY
    schemes = frozenset({"https", "http"} if policy["WEBHOOK_ALLOW_HTTP"] else {"https"})
    destination = outbound.parse(url, schemes=schemes)
    if not resolve:
        return destination, []
    return destination, outbound.resolve(destination, public_only=not policy["WEBHOOK_ALLOW_PRIVATE"])


_REFUSALS = {
    "address_not_public": "webhook endpoint resolves to a private address",
    "host_unresolvable": "webhook endpoint host does not resolve",
}


def send_webhook(*, url: str, msg_id: str, payload: dict[str, Any], secrets_: list[str]) -> None:
    try:
        destination, addresses = webhook_destination(url, resolve=True)
    except outbound.Refused as refused:
        reason = _REFUSALS.get(refused.code, f"webhook endpoint URL refused ({refused.code})")
        raise DeliveryError(reason, permanent=not refused.transient) from None
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    headers = webhook_headers(msg_id=msg_id, body=body, secrets_=secrets_)
    _post(destination, addresses, body.encode(), headers, what="webhook endpoint")


def _post(
    destination: outbound.Destination,
    addresses: list[str],
    body: bytes,
    headers: dict[str, str],
    *,
    what: str,
) -> None:
    try:
        status = outbound.post(destination, addresses, body, headers, timeout=TIMEOUT)
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{what} unreachable ({type(exc).__name__})") from None
    if 200 <= status < 300:
        return
    permanent = 400 <= status < 500 and status not in {408, 409, 425, 429}
    raise DeliveryError(f"{what} answered HTTP {status}", permanent=permanent)
