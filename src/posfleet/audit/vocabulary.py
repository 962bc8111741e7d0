"""The typed vocabulary of the audit chain. Adding a member needs no migration (choices only)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    # Terminal life (one per fleet command; see fleet/states.py)
    TERMINAL_REGISTERED = "terminal.registered", _("registered into stock")
    TERMINAL_ALLOCATED = "terminal.allocated", _("allocated to agent")
    TERMINAL_PULLED_BACK = "terminal.pulled_back", _("pulled back from agent")
    TERMINAL_SHIPPED = "terminal.shipped", _("shipped")
    TERMINAL_BOUND = "terminal.bound", _("bound to merchant")
    TERMINAL_ACTIVATED = "terminal.activated", _("activated")
    TERMINAL_SUSPENDED = "terminal.suspended", _("suspended")
    TERMINAL_RESUMED = "terminal.resumed", _("resumed")
    TERMINAL_DEACTIVATED = "terminal.deactivated", _("deactivated")
    TERMINAL_REACTIVATED = "terminal.reactivated", _("reactivated")
    TERMINAL_DEREGISTERED = "terminal.deregistered", _("deregistered")
    TERMINAL_RETURN_RECEIVED = "terminal.return_received", _("return received")
    TERMINAL_REFURBISHED = "terminal.refurbished", _("refurbished")
    TERMINAL_SCRAPPED = "terminal.scrapped", _("scrapped")
    TERMINAL_REPORTED_LOST = "terminal.reported_lost", _("reported lost")
    TERMINALS_IMPORTED = "terminals.imported", _("terminals imported")
    TERMINALS_EXPORTED = "terminals.exported", _("terminals exported")
    # Money
    PLAN_CREATED = "plan.created", _("rate plan created")
    PLAN_VERSION_ADDED = "plan.version_added", _("rate plan version added")
    PLAN_ASSIGNED = "plan.assigned", _("rate plan assigned")
    CONTRACT_OFFERED = "contract.offered", _("service contract offered")
    CONTRACT_ACCEPTED = "contract.accepted", _("service contract accepted")
    DEPOSIT_COLLECTED = "deposit.collected", _("deposit collected")
    DEPOSIT_RELEASED = "deposit.released", _("deposit refunded or forfeited")
    SERVICE_FEE_CHARGED = "service_fee.charged", _("service fee charged")
    TRANSACTIONS_INGESTED = "transactions.ingested", _("transactions ingested")
    SETTLEMENT_RUN = "settlement.run", _("settlement run")
    LEDGER_CORRECTED = "ledger.corrected", _("ledger correction")
    TRANSACTIONS_EXPORTED = "transactions.exported", _("transactions exported")
    # Enrollment and renewal
    EXPIRY_SWEEP = "expiry.sweep", _("expiry notices recorded")
    TERMINAL_SERVICE_EXTENDED = "terminal.service_extended", _("service period extended")
    SERVICE_RENEWED = "service.renewed", _("service renewed")
    # Notifications
    NOTIFICATION_RESENT = "notification.resent", _("notice sent again")
    WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created", _("webhook endpoint created")
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", _("webhook secret rotated")
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled", _("webhook endpoint disabled")
    # Parties
    AGENT_CREATED = "agent.created", _("agent created")
    MERCHANT_CREATED = "merchant.created", _("merchant created")
    STORE_CREATED = "store.created", _("store created")
    # Identity and access
    LOGIN_SUCCEEDED = "auth.login_succeeded", _("logged in")
    LOGIN_FAILED = "auth.login_failed", _("login failed")
    LOGIN_LOCKED = "auth.login_locked", _("login locked after too many failures")
    LOGGED_OUT = "auth.logged_out", _("logged out")
    MFA_ENROLLED = "mfa.enrolled", _("two-factor authentication enrolled")
    MFA_BACKUP_CODES_ISSUED = "mfa.backup_codes_issued", _("backup codes issued")
    STEP_UP_SUCCEEDED = "mfa.step_up_succeeded", _("identity verified")
    STEP_UP_FAILED = "mfa.step_up_failed", _("identity verification failed")
    STEP_UP_LOCKED = "mfa.step_up_locked", _("identity verification locked")
    TOKEN_CREATED = "token.created", _("API token created")
    TOKEN_REVOKED = "token.revoked", _("API token revoked")
    USER_CREATED = "user.created", _("user created")
    ROLE_CHANGED = "user.role_changed", _("role changed")


class ActorKind(models.TextChoices):
    USER = "user", _("user")
    TOKEN = "token", _("API token")
    JOB = "job", _("job")
    SYSTEM = "system", _("system")
