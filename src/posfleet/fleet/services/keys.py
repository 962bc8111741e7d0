"""Terminal keys (ADR 0024): the only writer of ``TerminalKey``.

A terminal gets a master key (TMK) when it becomes active and loses it when it stops for good or for
a while: deactivated, closed (deregistered) or reported lost. Revoking shreds the key's own data key,
so the sealed master and session keys never open again, wherever a copy of the row is. Without a live
key a terminal cannot sign on, and without a sign-on it has no session key to MAC a sale with — the
gateway's status check is the first guard, the missing key the second.

The lifecycle service (``lifecycle._run``) calls ``on_transition`` inside the transition's own
transaction; what it did goes into the transition's audit row (one row per transition). Staff issue
or rotate a key by hand with ``terminal_key_issue`` (step-up, audited), which shows the clear master
key once, for the key-loading facility; the gateway takes session keys with ``session_key_issue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.db.models.expressions import Combinable
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, clean_text, record
from posfleet.audit.vocabulary import EventType
from posfleet.fleet.models import KeyScheme, Terminal, TerminalKey
from posfleet.fleet.services.locks import terminal_lock
from posfleet.fleet.states import Command, Status
from posfleet.iam.stepup import require_fresh_step_up
from posfleet.platform import clock, keyring, paycrypto
from posfleet.platform.context import Actor
from posfleet.platform.errors import Conflict, TransitionNotAllowed

RevokeReason = TerminalKey.RevokeReason

# The commands that take a terminal's key away, and why; and those that give it one.
REVOKED_BY: dict[Command, str] = {
    Command.DEACTIVATE: RevokeReason.DEACTIVATED,
    Command.DEREGISTER: RevokeReason.CLOSED,
    Command.REPORT_LOST: RevokeReason.LOST,
}
ISSUED_BY = frozenset({Command.ACTIVATE, Command.REACTIVATE})


def _where(key: TerminalKey, part: str) -> str:
    return f"terminal_key:{key.terminal_id}:{key.data_key_id}:{part}"


def _algorithm(scheme: str) -> paycrypto.Algorithm:
    return paycrypto.Algorithm(scheme)


def live_key(terminal_id: int) -> TerminalKey | None:
    """The terminal's unrevoked key, if any (at most one: ``terminal_key_one_live``)."""
    return (
        TerminalKey.objects.filter(terminal_id=terminal_id, revoked_at__isnull=True)
        .select_related("data_key")
        .order_by()
        .first()
    )


def _revoke(terminal: Terminal, reason: str, at: datetime) -> TerminalKey | None:
    key = live_key(terminal.pk)
    if key is None:
        return None
    if not TerminalKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=at, revoked_reason=reason
    ):
        raise Conflict()
    keyring.shred(key.data_key)
    key.revoked_at, key.revoked_reason = at, reason
    return key


def _key_row(
    terminal: Terminal, data_key: keyring.DataKey, *, by: str, at: datetime
) -> tuple[TerminalKey, bytes]:
    """A new, unsaved key of ``terminal`` sealed under ``data_key``, and its clear master key."""
    scheme = terminal.model.key_scheme or KeyScheme.X919
    algorithm = _algorithm(scheme)
    master = paycrypto.new_key(algorithm)
    key = TerminalKey(
        terminal=terminal,
        scheme=scheme,
        data_key=data_key,
        master_sealed=b"",
        master_kcv=paycrypto.kcv(algorithm, master).hex().upper(),
        issued_at=at,
        issued_by=clean_text(by, 150),
    )
    key.master_sealed = keyring.seal(key.data_key, master, _where(key, "master"))
    return key, master


def _issue(terminal: Terminal, *, by: str, at: datetime) -> tuple[TerminalKey, bytes]:
    """A new master key for ``terminal`` (the caller holds the terminal's row lock)."""
    _revoke(terminal, RevokeReason.REISSUED, at)
    key, master = _key_row(terminal, keyring.new_key(), by=by, at=at)
    key.save()
    return key, master


def on_transition(terminal: Terminal, command: Command, *, by: str, at: datetime) -> dict[str, str]:
    """Issue or revoke the terminal's key as ``command`` requires; returns what was done, for the
    transition's audit row (key check values only, never a key)."""
    if command in ISSUED_BY:
        key, _master = _issue(terminal, by=by, at=at)
        return {"key_issued": key.master_kcv}
    reason = REVOKED_BY.get(command)
    if reason is not None:
        revoked = _revoke(terminal, reason, at)
        if revoked is not None:
            return {"key_revoked": revoked.master_kcv}
    return {}


def terminal_key_issue(*, actor: Actor, sn: str) -> tuple[TerminalKey, bytes]:
    """Issue (or rotate) the master key of active terminal ``sn`` and return it in clear, once, for the
    key-loading facility. The previous key is revoked (``reissued``). Needs a fresh step-up."""
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require("fleet.manage_device_credential", terminal)
        if terminal.status != Status.ACTIVE:
            raise TransitionNotAllowed(
                _("Only an active terminal gets a key (this one is %(status)s).")
                % {"status": Status(terminal.status).label},
                current_status=terminal.status,
            )
        require_fresh_step_up(actor)
        at = clock.now()
        previous = live_key(terminal.pk)
        key, master = _issue(terminal, by=actor.label, at=at)
        record(
            actor,
            Entry(
                event_type=EventType.TERMINAL_KEY_ISSUED,
                subject_type="terminal",
                subject_id=terminal.sn,
                before={"kcv": previous.master_kcv} if previous is not None else {},
                after={"kcv": key.master_kcv, "scheme": key.scheme},
                occurred_at=at,
            ),
        )
    return key, master


def _keyless() -> Combinable:
    """No unrevoked key. (Not ``.exclude(keys__revoked_at__isnull=True)``: its outer join also
    excludes a terminal that never had a key, whose missing key row reads as a NULL ``revoked_at``.)"""
    return ~Exists(TerminalKey.objects.filter(terminal=OuterRef("pk"), revoked_at__isnull=True))


def keys_issue_missing(*, by: str = "system", batch: int = 500) -> int:
    """Give every active terminal without a live key one (terminals activated before keys existed,
    the demo's bulk fixtures). Idempotent; returns how many were issued. Each batch in one transaction
    with its terminals' rows locked and checked again, the keys inserted in bulk."""
    issued = 0
    while True:
        ids = list(
            Terminal.objects.filter(_keyless(), status=Status.ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return issued
        with transaction.atomic():
            terminals = list(
                Terminal.objects.select_for_update(of=("self",))
                .select_related("model")
                .filter(_keyless(), pk__in=ids, status=Status.ACTIVE)
                .order_by("pk")
            )
            at = clock.now()
            data_keys = keyring.new_keys(len(terminals))
            TerminalKey.objects.bulk_create(
                [_key_row(t, k, by=by, at=at)[0] for t, k in zip(terminals, data_keys, strict=True)]
            )
        issued += len(terminals)


def master_key(key: TerminalKey) -> bytes:
    """The clear master key (the gateway wraps session keys with it; the terminal simulator plays the
    key-loading facility). Raises ``keyring.KeyShredded`` once the key is revoked."""
    return keyring.unseal(key.data_key, key.master_sealed, _where(key, "master"))


def session_key(key: TerminalKey) -> bytes | None:
    """The clear session key of the last sign-on, or None before the first."""
    if not key.session_sealed:
        return None
    return keyring.unseal(key.data_key, key.session_sealed, _where(key, "session"))


@dataclass(frozen=True)
class SessionKey:
    wrapped: bytes  # under the master key, for field 62 of the 0810
    kcv: bytes
    scheme: str


def session_key_issue(key: TerminalKey) -> SessionKey | None:
    """A fresh session key for a sign-on with live ``key``, stored sealed; None when the key was
    revoked meanwhile (compare-and-set on ``revoked_at``). No audit row: a sign-on is telemetry like a
    heartbeat (the terminal's key and status changes are audited where they happen)."""
    algorithm = _algorithm(key.scheme)
    master = master_key(key)
    clear = paycrypto.new_key(algorithm)
    sealed = keyring.seal(key.data_key, clear, _where(key, "session"))
    check = paycrypto.kcv(algorithm, clear, length=4)  # field 62 carries four bytes
    if not TerminalKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        session_sealed=sealed, session_kcv=check.hex().upper(), signed_on_at=clock.now()
    ):
        return None
    return SessionKey(wrapped=paycrypto.wrap(algorithm, master, clear), kcv=check, scheme=key.scheme)


def terminal_keys_revoke(*, actor: Actor, sn: str, reason: str) -> TerminalKey | None:
    """Make sure terminal ``sn`` holds no live key (a closure's evidence that it cannot sign on again):
    revokes a live one (audited) and returns the terminal's latest key, revoked — or None when it never
    had one. Idempotent: with the key already revoked (at deactivation) nothing is written."""
    if reason not in RevokeReason.values or reason == RevokeReason.REISSUED:
        raise ValueError(f"not a revocation reason: {reason!r}")
    with transaction.atomic():
        terminal = terminal_lock(actor, sn)
        actor.require("fleet.manage_device_credential", terminal)
        at = clock.now()
        revoked = _revoke(terminal, reason, at)
        if revoked is not None:
            record(
                actor,
                Entry(
                    event_type=EventType.TERMINAL_KEY_REVOKED,
                    subject_type="terminal",
                    subject_id=terminal.sn,
                    reason=reason,
                    before={"kcv": revoked.master_kcv},
                    after={"kcv": revoked.master_kcv, "revoked": True},
                    occurred_at=at,
                ),
            )
        return TerminalKey.objects.filter(terminal=terminal).order_by("-issued_at", "-pk").first()
