"""Terminal models (机型) and terminals (终端)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from posfleet.fleet.relocation_states import RelocationStatus
from posfleet.fleet.states import INITIAL, Command, Status, sources_of, target_of
from posfleet.platform.clock import now

SN_VALIDATOR = RegexValidator(
    r"^[A-Z0-9][A-Z0-9-]{5,31}$", _("A serial number is 6 to 32 capital letters, digits or dashes.")
)
TID_VALIDATOR = RegexValidator(r"^[0-9A-Z]{8}$", _("A terminal ID (TID) is 8 digits or capital letters."))
ICCID_VALIDATOR = RegexValidator(r"^89\d{17,18}$", _("An ICCID is 19 or 20 digits starting with 89."))


class Kind(models.TextChoices):
    TRADITIONAL = "traditional", _("traditional POS")
    SMART = "smart", _("smart POS")
    E_SIGNATURE = "e_signature", _("e-signature POS")
    WIRELESS = "wireless", _("wireless POS")
    MPOS = "mpos", _("mPOS")


class Capability(models.TextChoices):
    MAGSTRIPE = "magstripe", _("magnetic stripe")
    IC_CHIP = "ic_chip", _("IC chip")
    NFC = "nfc", _("contactless / NFC")
    QR_SCAN = "qr_scan", _("QR scan")
    PRINTER = "printer", _("printer")
    CELLULAR = "cellular", _("4G")
    WIFI = "wifi", _("Wi-Fi")
    GPS = "gps", _("GPS")


class KeyScheme(models.TextChoices):
    """How a model's terminals MAC their ISO 8583 messages (``platform/paycrypto.py``, ADR 0024)."""

    X919 = "x919", _("3DES, ANSI X9.19 retail MAC")
    SM4 = "sm4", _("SM4 (national standard)")


class TerminalModel(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    maker = models.CharField(_("maker"), max_length=64)
    name = models.CharField(_("model"), max_length=64)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    capabilities = models.JSONField(_("capabilities"), default=list, blank=True)
    key_scheme = models.CharField(
        _("key scheme"), max_length=8, choices=KeyScheme.choices, default=KeyScheme.X919
    )

    class Meta:
        ordering = ["maker", "name"]
        verbose_name = _("terminal model")
        verbose_name_plural = _("terminal models")
        constraints = [models.UniqueConstraint(fields=["maker", "name"], name="terminal_model_maker_name")]

    def __str__(self) -> str:
        return f"{self.maker} {self.name}"


def _transition_methods() -> dict[str, Any]:
    """One django-fsm-2 transition method per command, generated from ``states.TRANSITIONS``.

    They only move the status; the service functions in ``fleet/services.py`` are their only callers.
    """
    methods: dict[str, Any] = {}
    for command in Command:

        def method(self: Terminal) -> None:
            return None

        method.__name__ = command.value
        method.__doc__ = f"Transition `{command.value}` (called only by fleet.services)."
        methods[command.value] = transition(
            field="status", source=[s.value for s in sources_of(command)], target=target_of(command).value
        )(method)
    return methods


TerminalTransitions = type("TerminalTransitions", (), _transition_methods())


class Terminal(TerminalTransitions, ConcurrentTransitionMixin, models.Model):  # type: ignore[misc, valid-type]
    sn = models.CharField(_("serial number (SN)"), max_length=32, unique=True, validators=[SN_VALIDATOR])
    model = models.ForeignKey(
        TerminalModel, on_delete=models.PROTECT, related_name="terminals", verbose_name=_("model")
    )
    status = FSMField(
        _("status"), default=INITIAL.value, choices=Status.choices, protected=True, db_index=True
    )
    tid = models.CharField(
        _("terminal ID (TID)"), max_length=8, null=True, blank=True, unique=True, validators=[TID_VALIDATOR]
    )
    agent = models.ForeignKey(
        "parties.Agent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="terminals",
        verbose_name=_("agent"),
    )
    merchant = models.ForeignKey(
        "parties.Merchant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="terminals",
        verbose_name=_("merchant"),
    )
    store = models.ForeignKey(
        "parties.Store",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="terminals",
        verbose_name=_("store"),
    )
    sim_iccid = models.CharField(_("SIM ICCID"), max_length=20, blank=True, validators=[ICCID_VALIDATOR])
    service_expires_on = models.DateField(_("service expiry"), null=True, blank=True, db_index=True)
    firmware_version = models.CharField(_("firmware"), max_length=32, blank=True)
    # The last heartbeat (device channel or gateway): online, offline and silent are read from it by
    # ``fleet.health`` (``ONLINE_WITHIN``, ``SILENT_AFTER``).
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # Where the device last said it was (with its heartbeat): {"lat", "lon", "accuracy_m"} in WGS-84
    # degrees and metres, written only by ``fleet.services.terminal_heartbeat``.
    last_location = models.JSONField(_("last location"), null=True, blank=True)
    status_reason = models.CharField(_("status reason"), max_length=32, blank=True)
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    import_batch = models.CharField(max_length=32, blank=True, db_index=True)
    registered_at = models.DateTimeField(_("registered"), default=now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sn"]
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        indexes = [
            models.Index(fields=["agent", "status"], name="terminal_agent_status_idx"),
            models.Index(fields=["merchant", "status"], name="terminal_merchant_status_idx"),
            models.Index(fields=["model", "status"], name="terminal_model_status_idx"),
            # The fleet-wide pages at a provider's scale (bench/pages.py, docs/adr/0034): a status
            # filter's page in SN order, the expiry calendar's weeks and its due list read from the
            # index alone. (Not (agent, model): SQLite then began an agent's SN-ordered list from its
            # agents and sorted all their terminals; the counters answer per model.)
            models.Index(fields=["status", "sn"], name="terminal_status_sn_idx"),
            models.Index(
                fields=["service_expires_on", "status", "agent", "merchant"], name="terminal_expiry_scope_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.sn

    def snapshot(self) -> dict[str, Any]:
        """The facts an audit event records before and after a change."""
        return {
            "status": self.status,
            "agent": self.agent.code if self.agent_id and self.agent else None,
            "merchant": self.merchant.mid if self.merchant_id and self.merchant else None,
            "store": self.store.code if self.store_id and self.store else None,
            "tid": self.tid,
        }


class StatusPeriod(models.Model):
    """One stretch of time a terminal spent in one status: ``[started_at, ended_at)``, open while current.

    Written by the fleet services with every change (the same transaction), so "was this terminal active
    at 14:03 on 2 May?" is one indexed query (billing refuses approved transactions otherwise). The
    first period starts at the first change: before it the terminal was in stock since ``registered_at``
    (imports of new stock write no period rows).
    """

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="status_periods")
    status = models.CharField(max_length=16, choices=Status.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["terminal_id", "started_at"]
        indexes = [models.Index(fields=["terminal", "started_at"], name="status_period_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"], condition=models.Q(ended_at__isnull=True), name="status_period_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id} {self.status} from {self.started_at}"


class TerminalTally(models.Model):
    """How many terminals each (agent, model, status) has: the fleet's counters (docs/adr/0034).

    Written only by the database's own triggers on ``fleet_terminal`` (migration 0009), in the
    transaction of the change, whatever writes it: the services, an import's COPY, a bulk UPDATE, the
    demo, a DELETE. SQLite keeps one row per key up to date; PostgreSQL appends a row of +n/-n per
    change (no row two transactions both update: no lock waits, no deadlocks) and
    ``fleet.services.tally_compact`` folds them every few minutes. A count is always the SUM of a
    key's rows, exact at every commit. Derived rows: no foreign-key constraints (a zero row must not
    hold an agent or a model back); the tests prove they equal a recount after every kind of change.
    """

    agent = models.ForeignKey(
        "parties.Agent",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
    )
    model = models.ForeignKey(
        TerminalModel, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    status = models.CharField(max_length=16)
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["agent", "model", "status"], name="terminal_tally_key_idx")]

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.model_id}/{self.status}: {self.n}"


class Replacement(models.Model):
    """One replacement (换机): ``new`` took over ``old``'s merchant and store, its service expiry and its
    contract, and ``old`` was deregistered to come back to the warehouse.

    A history row, never changed: a device lives several lives (returned, refurbished, allocated
    again), so one terminal may appear in several rows over the years; the TIDs are kept here because
    refurbishing clears them from the terminals. Written by ``fleet.services.terminal_take_over``.
    """

    old = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="replaced_by", verbose_name=_("replaced terminal")
    )
    new = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="replaces", verbose_name=_("new terminal")
    )
    old_tid = models.CharField(_("replaced TID"), max_length=8, blank=True)
    new_tid = models.CharField(_("new TID"), max_length=8, blank=True)
    replaced_at = models.DateTimeField(_("replaced"))

    class Meta:
        ordering = ["-replaced_at", "-id"]
        verbose_name = _("replacement")
        verbose_name_plural = _("replacements")
        constraints = [
            models.CheckConstraint(condition=~models.Q(old=models.F("new")), name="replacement_not_itself"),
        ]

    def __str__(self) -> str:
        return f"{self.old_id} → {self.new_id} at {self.replaced_at}"


# -------------------------------------------------------------------------------------------------
# The device command channel of smart terminals (fleet/services/devices.py is the only writer).


class DeviceCredential(models.Model):
    """The credential a smart terminal signs in to the device channel with: a public ``key_id`` and a
    secret shown once, at issue, and stored only as its SHA-256 (a leaked table opens no device).

    At most one unrevoked credential per terminal (``device_credential_one_live``): issuing a new one
    revokes the old in the same transaction, and closure revokes it for good.
    """

    class RevokeReason(models.TextChoices):
        REISSUED = "reissued", _("a new credential was issued")
        CLOSURE = "closure", _("terminal closed (deregistered)")
        COMPROMISED = "compromised", _("credential compromised")
        RETURNED = "returned", _("device returned to the warehouse")
        LOST = "lost", _("device lost or stolen")
        OTHER = "other", _("other")

    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="device_credentials", verbose_name=_("terminal")
    )
    key_id = models.CharField(_("key ID"), max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)  # SHA-256 hex of the secret; never the secret
    issued_at = models.DateTimeField(_("issued"))
    issued_by = models.CharField(_("issued by"), max_length=150, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.CharField(
        _("revocation reason"), max_length=16, blank=True, choices=RevokeReason.choices
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("device credential")
        verbose_name_plural = _("device credentials")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"],
                condition=models.Q(revoked_at__isnull=True),
                name="device_credential_one_live",
            ),
        ]

    def __str__(self) -> str:
        return self.key_id


class DeviceCommand(models.Model):
    """One command for a smart terminal's device (lock, unlock, wipe, message, update parameters) and
    what the device answered: the evidence a closure keeps of its wipe.

    ``queued`` → ``delivered`` (the device fetched it) → ``acknowledged`` (it did it) or ``failed`` (it
    said it could not); ``queued`` or ``delivered`` past ``expires_at`` → ``expired``.
    """

    class Kind(models.TextChoices):
        LOCK = "lock", _("lock")
        UNLOCK = "unlock", _("unlock")
        WIPE = "wipe", _("wipe")
        MESSAGE = "message", _("message")
        UPDATE_PARAMS = "update_params", _("update parameters")

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")  # waiting for the device to fetch it
        DELIVERED = "delivered", _("delivered")  # fetched, not answered yet
        ACKNOWLEDGED = "acknowledged", _("acknowledged")  # the device did it
        FAILED = "failed", _("failed")  # the device answered that it could not
        EXPIRED = "expired", _("expired")  # not answered in time

    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="device_commands", verbose_name=_("terminal")
    )
    kind = models.CharField(_("command"), max_length=16, choices=Kind.choices)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=State.choices, default=State.QUEUED, db_index=True
    )
    # The caller's idempotency key ("closure:<case>:wipe"): a repeat of the same send returns this row.
    key = models.CharField(_("idempotency key"), max_length=128, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        "iam.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    actor_label = models.CharField(_("sent by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("sent"))
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    acknowledged_at = models.DateTimeField(_("answered"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    result = models.JSONField(_("result"), null=True, blank=True)  # what the device reported

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("device command")
        verbose_name_plural = _("device commands")
        indexes = [
            models.Index(fields=["terminal", "status"], name="device_command_pending_idx"),
            models.Index(fields=["status", "expires_at"], name="device_command_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.terminal_id} ({self.status})"


# -------------------------------------------------------------------------------------------------
# Device health (fleet/services/health.py is the only writer).


class HeartbeatSource(models.TextChoices):
    """Where a heartbeat came from: the device channel of smart terminals (HTTP), or the ISO 8583
    gateway (a network-management message, 0800/0820)."""

    DEVICE_CHANNEL = "device_channel", _("device channel")
    GATEWAY = "gateway", _("ISO 8583 gateway")


class RelocationAlert(models.Model):
    """A terminal reported a position far from its store (移机告警), for a person to review.

    Raised by ``fleet.services.terminal_heartbeat`` when a reported position is more than
    ``POSFLEET_RELOCATION_DISTANCE_M`` from the coordinates of the terminal's store. The row keeps the
    evidence as it was at detection (both positions and their distance, computed once) and never
    changes it; only the review moves the status (``fleet/relocation_states.py``): open →
    confirmed_moved or dismissed. At most one open alert per terminal (``relocation_alert_one_open``).
    """

    Status = RelocationStatus

    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="relocation_alerts", verbose_name=_("terminal")
    )
    store = models.ForeignKey(
        "parties.Store", on_delete=models.PROTECT, related_name="+", verbose_name=_("store")
    )
    reported_latitude = models.DecimalField(_("reported latitude"), max_digits=9, decimal_places=6)
    reported_longitude = models.DecimalField(_("reported longitude"), max_digits=9, decimal_places=6)
    accuracy_m = models.PositiveIntegerField(_("accuracy (m)"), null=True, blank=True)
    store_latitude = models.DecimalField(_("store latitude"), max_digits=9, decimal_places=6)
    store_longitude = models.DecimalField(_("store longitude"), max_digits=9, decimal_places=6)
    distance_m = models.PositiveIntegerField(_("distance (m)"))
    detected_at = models.DateTimeField(_("detected"))
    source = models.CharField(_("source"), max_length=16, choices=HeartbeatSource.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=RelocationStatus.choices, default=RelocationStatus.OPEN
    )
    reviewed_by = models.ForeignKey(
        "iam.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name = _("relocation alert")
        verbose_name_plural = _("relocation alerts")
        indexes = [
            models.Index(fields=["status", "detected_at"], name="relocation_alert_status_idx"),
            models.Index(fields=["terminal", "detected_at"], name="relocation_alert_terminal_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"],
                condition=models.Q(status=RelocationStatus.OPEN),
                name="relocation_alert_one_open",
            ),
            models.CheckConstraint(
                condition=models.Q(status=RelocationStatus.OPEN, reviewed_at__isnull=True)
                | (~models.Q(status=RelocationStatus.OPEN) & models.Q(reviewed_at__isnull=False)),
                name="relocation_alert_reviewed_when_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id} {self.distance_m} m ({self.status})"


# -------------------------------------------------------------------------------------------------
# The keys a terminal signs its ISO 8583 messages with (fleet/services/keys.py is the only writer).


class TerminalKey(models.Model):
    """A terminal's master key (TMK), issued at activation, and the session key (TAK) of its last
    sign-on, wrapped under the master key for the 0810 answer.

    Both are stored sealed (``platform/keyring.py``) under a data key of their own, so revoking the key
    (deactivation, closure, loss) shreds that data key: no copy of the row, in a backup or a dead tuple,
    opens again. At most one live key per terminal (``terminal_key_one_live``).
    """

    class RevokeReason(models.TextChoices):
        DEACTIVATED = "deactivated", _("terminal deactivated")
        CLOSED = "closed", _("terminal closed (deregistered)")
        LOST = "lost", _("device lost or stolen")
        REISSUED = "reissued", _("a new key was issued")
        COMPROMISED = "compromised", _("key compromised")

    terminal = models.ForeignKey(
        Terminal, on_delete=models.PROTECT, related_name="keys", verbose_name=_("terminal")
    )
    scheme = models.CharField(_("key scheme"), max_length=8, choices=KeyScheme.choices)
    data_key = models.ForeignKey("platform.DataKey", on_delete=models.PROTECT, related_name="+")
    master_sealed = models.BinaryField()
    master_kcv = models.CharField(_("master key check value"), max_length=6)
    session_sealed = models.BinaryField(null=True, blank=True)
    session_kcv = models.CharField(_("session key check value"), max_length=8, blank=True)
    signed_on_at = models.DateTimeField(_("last sign-on"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued"))
    issued_by = models.CharField(_("issued by"), max_length=150, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_reason = models.CharField(
        _("revocation reason"), max_length=16, blank=True, choices=RevokeReason.choices
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("terminal key")
        verbose_name_plural = _("terminal keys")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"],
                condition=models.Q(revoked_at__isnull=True),
                name="terminal_key_one_live",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scheme} key {self.master_kcv} of {self.terminal_id}"
