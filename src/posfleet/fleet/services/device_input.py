"""What the device channel accepts (``fleet/services/devices.py``): a command's kind, its payload
and key, a device's heartbeat (firmware, location) and its answer. Each check returns the clean value
or raises ``ValidationFailed`` (422) naming the field, before anything is written."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from posfleet.audit.services import clean_text
from posfleet.fleet.models import DeviceCommand
from posfleet.platform.errors import ValidationFailed

CommandKind = DeviceCommand.Kind

MAX_JSON_BYTES = 4096  # a payload or a device's result, serialised
MAX_TEXT = 500  # a message or a lock screen's text
MAX_PARAMS = 50
MAX_KEY = 128
MAX_FIRMWARE = 32


def check_firmware(firmware: str) -> str:
    """A firmware version as a device reports it ("" when it reports none)."""
    firmware = clean_text(firmware.strip(), MAX_FIRMWARE + 1)
    if len(firmware) > MAX_FIRMWARE or not firmware.isprintable():
        raise ValidationFailed(
            _("A firmware version is at most %(n)d printable characters.") % {"n": MAX_FIRMWARE},
            field="firmware",
        )
    return firmware


def check_location(location: Mapping[str, Any] | None) -> dict[str, float] | None:
    if location is None:
        return None
    if not isinstance(location, Mapping):
        raise ValidationFailed(_("A location is an object with lat and lon."), field="location")
    out: dict[str, float] = {}
    for name, low, high, required in (
        ("lat", -90.0, 90.0, True),
        ("lon", -180.0, 180.0, True),
        ("accuracy_m", 0.0, 100_000.0, False),
    ):
        value = location.get(name)
        if value is None and not required:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise ValidationFailed(
                _("%(name)s must be a number from %(low)s to %(high)s.")
                % {"name": name, "low": low, "high": high},
                field=f"location.{name}",
            )
        out[name] = float(value)
    return out


def check_kind(kind: str) -> CommandKind:
    try:
        return CommandKind(kind)
    except ValueError as exc:
        raise ValidationFailed(
            _("Unknown device command “%(kind)s”.") % {"kind": str(kind)[:32]},
            field="kind",
            allowed=list(CommandKind.values),
        ) from exc


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _text(payload: Mapping[str, Any], *, required: bool) -> dict[str, str]:
    text = payload.get("text")
    if text is None and not required:
        return {}
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT or "\x00" in text:
        raise ValidationFailed(
            _("Give a text of 1 to %(n)d characters.") % {"n": MAX_TEXT}, field="payload.text"
        )
    return {"text": text.strip()}


def _params(payload: Mapping[str, Any]) -> dict[str, Any]:
    params = payload.get("params")
    if not isinstance(params, Mapping) or not params or len(params) > MAX_PARAMS:
        raise ValidationFailed(
            _("Give 1 to %(n)d parameters as an object.") % {"n": MAX_PARAMS}, field="payload.params"
        )
    for name, value in params.items():
        fine = isinstance(value, str | int | bool) and not isinstance(value, float)
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not fine:
            raise ValidationFailed(
                _("A parameter is a name of at most 64 characters with a text, whole number or yes/no."),
                field="payload.params",
            )
    return {"params": dict(params)}


# The keys each kind's payload takes.
_PAYLOAD_KEYS: dict[CommandKind, frozenset[str]] = {
    CommandKind.LOCK: frozenset({"text"}),
    CommandKind.UNLOCK: frozenset(),
    CommandKind.WIPE: frozenset(),
    CommandKind.MESSAGE: frozenset({"text"}),
    CommandKind.UPDATE_PARAMS: frozenset({"params"}),
}


def check_payload(kind: CommandKind, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    payload = {} if payload is None else payload
    if not isinstance(payload, Mapping):
        raise ValidationFailed(_("The payload is a JSON object."), field="payload")
    unknown = set(payload) - _PAYLOAD_KEYS[kind]
    if unknown:
        raise ValidationFailed(
            _("Unexpected payload fields: %(names)s.") % {"names": ", ".join(sorted(map(str, unknown)))},
            field="payload",
            allowed=sorted(_PAYLOAD_KEYS[kind]),
        )
    if kind == CommandKind.MESSAGE:
        clean = _text(payload, required=True)
    elif kind == CommandKind.LOCK:
        clean = _text(payload, required=False)
    elif kind == CommandKind.UPDATE_PARAMS:
        clean = _params(payload)
    else:
        clean = {}
    if _json_size(clean) > MAX_JSON_BYTES:
        raise ValidationFailed(_("The payload is too large."), field="payload")
    return clean


def check_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not isinstance(key, str) or len(key) > MAX_KEY or not all("\x21" <= c <= "\x7e" for c in key):
        raise ValidationFailed(
            _("A command key is 1 to %(n)d visible ASCII characters.") % {"n": MAX_KEY}, field="key"
        )
    return key


def check_result(result: Mapping[str, Any] | None) -> dict[str, Any]:
    result = {} if result is None else result
    if not isinstance(result, Mapping):
        raise ValidationFailed(_("The result is a JSON object."), field="result")
    clean = dict(result)
    if _json_size(clean) > MAX_JSON_BYTES:
        raise ValidationFailed(_("The result is too large."), field="result")
    return clean
