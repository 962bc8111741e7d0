"""The ways a notice leaves posfleet: e-mail over SMTP, SMS through an HTTP provider, signed webhooks.

Each sender raises ``DeliveryError`` with a short, address-free reason when the far end refuses or
cannot be reached; the caller retries with backoff. Every message carries the event id (e-mail header
``X-Posfleet-Event-Id``, SMS field ``id``, webhook header ``webhook-id``) so that a receiver which gets
a message twice — a crash between sending and recording — can drop the copy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import smtplib
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from standardwebhooks.webhooks import Webhook

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
    _post(url, body, headers, what="SMS provider")


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


def private_address(host: str) -> bool:
    """Whether ``host`` is, or resolves to, an address inside our own networks (loopback, private,
    link-local such as cloud metadata, reserved): a webhook must not be a way to reach them (SSRF)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False  # unresolvable: the POST fails on its own, and is retried
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return True
    return False


def send_webhook(*, url: str, msg_id: str, payload: dict[str, Any], secrets_: list[str]) -> None:
    host = urlsplit(url).hostname or ""
    if not settings.POSFLEET_NOTIFY["WEBHOOK_ALLOW_PRIVATE"] and private_address(host):
        raise DeliveryError("webhook endpoint resolves to a private address", permanent=True)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    headers = webhook_headers(msg_id=msg_id, body=body, secrets_=secrets_)
    _post(url, body.encode(), headers, what="webhook endpoint")


def _post(url: str, body: bytes, headers: dict[str, str], *, what: str) -> None:
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"{what} unreachable ({type(exc).__name__})") from None
    if 200 <= answer.status_code < 300:
        return
    permanent = 400 <= answer.status_code < 500 and answer.status_code not in {408, 409, 425, 429}
    raise DeliveryError(f"{what} answered HTTP {answer.status_code}", permanent=permanent)
