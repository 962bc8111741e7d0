"""Registration: a terminal enters the fleet in stock, one at a time or a validated chunk of an
import at once (one audit event and one outbox message per chunk)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.events import TerminalsImported
from posfleet.fleet.models import Terminal
from posfleet.platform.clock import now
from posfleet.platform.context import Actor
from posfleet.platform.errors import (
    ValidationFailed,
)
from posfleet.platform.events import publish

# ---------------------------------------------------------------------------------------------
# Registration: a terminal enters the fleet in stock.


@dataclass(frozen=True)
class NewTerminal:
    sn: str
    model_id: int
    sim_iccid: str = ""
    service_expires_on: date | None = None
    firmware_version: str = ""


def terminal_register(*, actor: Actor, terminal: NewTerminal, note: str = "") -> Terminal:
    """Register one device into the warehouse stock (status ``in_stock``)."""
    actor.require("fleet.import_terminals")
    with transaction.atomic():
        if Terminal.objects.filter(sn=terminal.sn).exists():
            raise ValidationFailed(_("A terminal with this SN exists already."), field="sn")
        created = Terminal.objects.create(
            sn=terminal.sn,
            model_id=terminal.model_id,
            sim_iccid=terminal.sim_iccid,
            service_expires_on=terminal.service_expires_on,
            firmware_version=terminal.firmware_version,
        )
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_REGISTERED,
                subject_type="terminal",
                subject_id=created.sn,
                note=clean_text(note),
                after=created.snapshot(),
            ),
        )
    return created


_VARYING = ("sn", "model", "sim_iccid", "service_expires_on", "firmware_version")


def _insert_in_stock(*, batch: str, at: datetime, terminals: Sequence[NewTerminal]) -> None:
    """INSERT validated new terminals with one statement per chunk: COPY on PostgreSQL, executemany
    elsewhere. ``Terminal(...)`` + ``bulk_create`` cost over 100 µs a row (model instances and Django's
    per-field SQL compilation), 8x the insert itself (bench/import_terminals.py). The columns that do
    not vary per row are prepared once from a template instance, so a new field with a default needs
    no change here. Like bulk_create, this sends no signals and runs no model validation: callers pass
    validated rows (fleet.transfer validates with the model's own patterns)."""
    db = transaction.get_connection()
    fields = [f for f in Terminal._meta.concrete_fields if not f.primary_key]
    template = Terminal(model_id=0, import_batch=batch, registered_at=at)
    template.updated_at = at
    base: list[Any] = [
        None if f.name in _VARYING else f.get_db_prep_save(getattr(template, f.attname), db) for f in fields
    ]
    names = [f.name for f in fields]
    i_sn, i_model, i_iccid, i_expires, i_firmware = (names.index(n) for n in _VARYING)
    adapt_date = db.ops.adapt_datefield_value
    rows = []
    for t in terminals:
        row = base.copy()
        row[i_sn] = t.sn
        row[i_model] = t.model_id
        row[i_iccid] = t.sim_iccid
        row[i_expires] = adapt_date(t.service_expires_on)
        row[i_firmware] = t.firmware_version
        rows.append(row)
    quote = db.ops.quote_name
    table = quote(Terminal._meta.db_table)
    columns = ", ".join(quote(f.column) for f in fields)
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            with db.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def terminals_register_batch(*, actor: Actor, batch: str, terminals: Sequence[NewTerminal]) -> int:
    """Register a chunk of validated devices in one transaction with one audit event for the chunk.

    The import path calls this per chunk; each terminal keeps ``import_batch`` so its timeline shows
    the import event. Returns the number of terminals created.
    """
    actor.require("fleet.import_terminals")
    if not terminals:
        return 0
    at = now()
    with transaction.atomic():
        _insert_in_stock(batch=batch, at=at, terminals=terminals)
        digest = hashlib.sha256("\n".join(t.sn for t in terminals).encode()).hexdigest()
        record(
            actor,
            Entry(
                event_type=EventType.TERMINALS_IMPORTED,
                subject_type="import_batch",
                subject_id=batch,
                after={
                    "count": len(terminals),
                    "first_sn": terminals[0].sn,
                    "last_sn": terminals[-1].sn,
                    "sns_sha256": digest,
                },
                occurred_at=at,
            ),
        )
        publish([TerminalsImported(aggregate_id=batch, count=len(terminals))], occurred_at=at)
    return len(terminals)
