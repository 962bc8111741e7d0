"""Checking one row of a terminal file and turning it into the values to register.

Written for speed (precompiled patterns, no model instances, no ``full_clean``): the import validates
every row twice (first pass: report; second pass: write), so this is its hottest code. The patterns
are the model's own validators' patterns, so a row that passes here passes ``full_clean`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from django.utils.translation import gettext as _

from posfleet.fleet.models import ICCID_VALIDATOR, SN_VALIDATOR
from posfleet.fleet.states import Status
from posfleet.fleet.transfer.columns import MAX_LENGTH, STATUS_COLUMN

_SN = re.compile(SN_VALIDATOR.regex)
_ICCID = re.compile(ICCID_VALIDATOR.regex)
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?[eE]\+?\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FORMULA_START = ("=", "+", "-", "@")
_IN_STOCK_WORDS = {"", Status.IN_STOCK.value, str(Status.IN_STOCK.label), "在库"}
MIN_YEAR, MAX_YEAR = 2000, 2099

# (sn, model_id, sim_iccid, service_expires_on, firmware_version)
Values = tuple[str, int, str, date | None, str]
Problem = tuple[str, str, str]  # (column, code, message)


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


def _text(value: Any, column: str) -> str:
    """A cell as trimmed text. Numbers that Excel cannot hold exactly are refused, not guessed."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int):  # bool included
        text = str(value)
    elif isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            text = str(int(value))
        elif column in {"sn", "sim_iccid"}:
            raise _Invalid("number_lost_digits", _lost_digits())
        else:
            text = repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value).strip()
    if column == "sim_iccid":
        text = text.replace(" ", "")  # printed ICCIDs come in groups of four
    if text and text[0] in FORMULA_START:
        raise _Invalid(
            "formula",
            _(
                "“%(value)s” looks like a spreadsheet formula (it starts with “%(char)s”). "
                "Formulas are not accepted as values: enter the plain value."
            )
            % {"value": _short(text), "char": text[0]},
        )
    limit = MAX_LENGTH.get(column)
    if limit is not None and len(text) > limit:
        raise _Invalid(
            "too_long",
            _("The value is %(length)d characters long; at most %(limit)d are allowed.")
            % {"length": len(text), "limit": limit},
        )
    return text


def _lost_digits() -> str:
    return _(
        "Excel stored this as a number and digits were lost (e.g. 8.98600E+18). "
        "Format the column as Text and enter the value again."
    )


def _short(text: str, limit: int = 40) -> str:
    text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        if value.time() != datetime.min.time():
            raise _Invalid("date_invalid", _("A date has no time of day: use YYYY-MM-DD."))
        value = value.date()
    if isinstance(value, date):
        parsed = value
    else:
        text = _text(value, "service_expires_on")
        if not text:
            return None
        match = _DATE.match(text)
        if match is None:
            raise _Invalid(
                "date_invalid", _("“%(value)s” is not a date: use YYYY-MM-DD.") % {"value": _short(text)}
            )
        try:
            parsed = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise _Invalid(
                "date_invalid", _("%(value)s is not a day of the calendar.") % {"value": _short(text)}
            ) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise _Invalid(
            "date_invalid",
            _("%(value)s is not a plausible service expiry (years %(min)d to %(max)d).")
            % {"value": parsed.isoformat(), "min": MIN_YEAR, "max": MAX_YEAR},
        )
    return parsed


RowCheck = Callable[[Sequence[Any]], tuple[str | None, Values | None, list[Problem]]]


def row_checker(columns: Sequence[str | None], models: Mapping[str, int]) -> RowCheck:
    """A function checking one row of cells laid out as ``columns`` (canonical names; None for
    ignored ones). It returns ``(sn, values, problems)``: ``sn`` whenever the SN itself is valid (so
    duplicates are found even in otherwise bad rows), ``values`` only when the whole row is valid."""
    position = {name: i for i, name in enumerate(columns) if name is not None}
    i_sn = position["sn"]
    i_model = position["model"]
    i_iccid = position.get("sim_iccid")
    i_date = position.get("service_expires_on")
    i_firmware = position.get("firmware_version")
    i_status = position.get(STATUS_COLUMN)
    width = len(columns)
    known = ", ".join(sorted({code for code in models if " " not in code})[:10])

    def cell(cells: Sequence[Any], index: int | None) -> Any:
        if index is None or index >= len(cells):
            return None
        return cells[index]

    sn_match, iccid_match, control = _SN.match, _ICCID.match, _CONTROL.search
    firmware_limit = MAX_LENGTH["firmware_version"]

    def fast(cells: Sequence[Any]) -> Values | None:
        """The common case (every cell text, every value valid) without building anything; None
        sends the row to the thorough check, which names each problem."""
        if len(cells) != width:
            return None
        try:
            sn = cells[i_sn].strip().upper()
            if sn_match(sn) is None:
                return None
            model_id = models.get(cells[i_model].strip().casefold())
            if model_id is None:
                return None
            iccid = cells[i_iccid].strip() if i_iccid is not None else ""
            if iccid and iccid_match(iccid) is None:
                return None
            expires = None
            if i_date is not None:
                text = cells[i_date].strip()
                if text:
                    if len(text) != 10 or text[4] != "-" or text[7] != "-":
                        return None
                    expires = date.fromisoformat(text)
                    if not MIN_YEAR <= expires.year <= MAX_YEAR:
                        return None
            firmware = cells[i_firmware].strip() if i_firmware is not None else ""
            if firmware and (
                firmware[0] in FORMULA_START or len(firmware) > firmware_limit or control(firmware)
            ):
                return None
            if i_status is not None and cells[i_status].strip() not in _IN_STOCK_WORDS:
                return None
        except (AttributeError, ValueError):  # not text, or not a calendar date
            return None
        return sn, model_id, iccid, expires, firmware

    def check(cells: Sequence[Any]) -> tuple[str | None, Values | None, list[Problem]]:
        values = fast(cells)
        if values is not None:
            return values[0], values, []
        problems: list[Problem] = []
        sn: str | None = None
        model_id = 0
        iccid = firmware = ""
        expires: date | None = None

        try:
            raw_sn = _text(cell(cells, i_sn), "sn").upper()
            if not raw_sn:
                raise _Invalid("sn_required", _("The SN is missing."))
            if _SN.match(raw_sn) is None:
                if _SCIENTIFIC.match(raw_sn):
                    raise _Invalid("number_lost_digits", _lost_digits())
                raise _Invalid("sn_invalid", f"“{_short(raw_sn)}”: {SN_VALIDATOR.message}")
            sn = raw_sn
        except _Invalid as bad:
            problems.append(("sn", bad.code, bad.message))

        try:
            code = _text(cell(cells, i_model), "model")
            if not code:
                raise _Invalid("model_required", _("The terminal model is missing."))
            found = models.get(code.casefold())
            if found is None:
                raise _Invalid(
                    "model_unknown",
                    _("Unknown terminal model “%(code)s”. Known model codes: %(known)s.")
                    % {"code": _short(code), "known": known},
                )
            model_id = found
        except _Invalid as bad:
            problems.append(("model", bad.code, bad.message))

        if i_iccid is not None:
            try:
                iccid = _text(cell(cells, i_iccid), "sim_iccid")
                if iccid and _ICCID.match(iccid) is None:
                    if _SCIENTIFIC.match(iccid):
                        raise _Invalid("number_lost_digits", _lost_digits())
                    raise _Invalid("iccid_invalid", f"“{_short(iccid)}”: {ICCID_VALIDATOR.message}")
            except _Invalid as bad:
                problems.append(("sim_iccid", bad.code, bad.message))

        if i_date is not None:
            try:
                expires = _parse_date(cell(cells, i_date))
            except _Invalid as bad:
                problems.append(("service_expires_on", bad.code, bad.message))

        if i_firmware is not None:
            try:
                firmware = _text(cell(cells, i_firmware), "firmware_version")
                if _CONTROL.search(firmware):
                    raise _Invalid("control_characters", _("The value contains control characters."))
            except _Invalid as bad:
                problems.append(("firmware_version", bad.code, bad.message))

        if i_status is not None:
            status = cell(cells, i_status)
            status_text = "" if status is None else str(status).strip()
            if status_text not in _IN_STOCK_WORDS:
                problems.append(
                    (
                        STATUS_COLUMN,
                        "status_not_importable",
                        _(
                            "Only devices in stock can be imported (this row's status is “%(status)s”): "
                            "the import registers new devices into stock."
                        )
                        % {"status": _short(status_text)},
                    )
                )

        if len(cells) > width and any(c is not None and str(c).strip() for c in cells[width:]):
            problems.append(
                ("", "extra_cells", _("The row has values beyond the last column of the header."))
            )

        if problems:
            return sn, None, problems
        assert sn is not None
        return sn, (sn, model_id, iccid, expires, firmware), problems

    return check


def is_blank(cells: Sequence[Any]) -> bool:
    if cells and cells[0].__class__ is str and cells[0] and not cells[0].isspace():
        return False  # the common case, decided by the first cell
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in cells)
