"""Log hygiene: request ids on every line; secrets and personal data never reach a log.

The filter masks what looks like a secret (tokens, TOTP codes in known parameters, passwords) and
personal data (phone numbers, e-mail addresses, ID card numbers, card numbers), and strips control
characters so a crafted value cannot forge a second log line.
"""

from __future__ import annotations

import logging
import re

from posfleet.platform.context import current_request_id

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"pf_[A-Za-z0-9_-]{8,}"), "pf_***"),  # API tokens
    (
        re.compile(
            r"(?i)(password|passwd|secret|token|totp|otp|authorization)([\"']?\s*[:=]\s*[\"']?)[^\s,&\"']+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\b\d{6}(\d{6,9})(\d{4})\b"), "******…\\2"),  # card numbers / ID numbers
    (re.compile(r"\b1[3-9]\d{9}\b"), "1**********"),  # mainland mobile numbers
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "***@***"),
    (re.compile(r"[\r\n\x1b\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"), " "),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = str(record.msg)
        record.msg = redact(message)
        record.args = ()
        return True
