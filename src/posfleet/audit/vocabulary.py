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
    TERMINAL_TOOK_OVER = "terminal.took_over", _("took over from a replaced terminal")
    TERMINALS_IMPORTED = "terminals.imported", _("terminals imported")
    TERMINALS_EXPORTED = "terminals.exported", _("terminals exported")
    # The device channel of smart terminals (fleet/services/devices.py)
    DEVICE_CREDENTIAL_ISSUED = "device.credential_issued", _("device credential issued")
    DEVICE_CREDENTIAL_REVOKED = "device.credential_revoked", _("device credential revoked")
    DEVICE_FIRMWARE_REPORTED = "device.firmware_reported", _("device reported new firmware")
    DEVICE_COMMAND_SENT = "device.command_sent", _("device command sent")
    DEVICE_COMMAND_DELIVERED = "device.command_delivered", _("device command delivered")
    DEVICE_COMMAND_ACKNOWLEDGED = "device.command_acknowledged", _("device command acknowledged")
    DEVICE_COMMAND_FAILED = "device.command_failed", _("device command failed")
    DEVICE_COMMAND_EXPIRED = "device.command_expired", _("device command expired")
    # Money
    PLAN_CREATED = "plan.created", _("rate plan created")
    PLAN_VERSION_ADDED = "plan.version_added", _("rate plan version added")
    PLAN_ASSIGNED = "plan.assigned", _("rate plan assigned")
    CONTRACT_OFFERED = "contract.offered", _("service contract offered")
    CONTRACT_ACCEPTED = "contract.accepted", _("service contract accepted")
    CONTRACT_TRANSFERRED = "contract.transferred", _("service contract moved to another terminal")
    DEPOSIT_COLLECTED = "deposit.collected", _("deposit collected")
    DEPOSIT_RELEASED = "deposit.released", _("deposit refunded or forfeited")
    SERVICE_FEE_CHARGED = "service_fee.charged", _("service fee charged")
    CONTRACT_ENDED = "contract.ended", _("service contract ended")
    PENALTY_CHARGED = "penalty.charged", _("penalty or charge posted")
    TRANSACTIONS_INGESTED = "transactions.ingested", _("transactions ingested")
    SETTLEMENT_RUN = "settlement.run", _("settlement run")
    LEDGER_CORRECTED = "ledger.corrected", _("ledger correction")
    TRANSACTIONS_EXPORTED = "transactions.exported", _("transactions exported")
    # Operations
    INTEGRITY_VERIFIED = "integrity.verified", _("integrity check run")
    # Enrollment and renewal
    EXPIRY_SWEEP = "expiry.sweep", _("expiry notices recorded")
    TERMINAL_SERVICE_EXTENDED = "terminal.service_extended", _("service period extended")
    SERVICE_RENEWED = "service.renewed", _("service renewed")
    RENEWAL_OFFERED = "service.renewal_offered", _("renewal offered")
    TERMINAL_REPLACED = "terminal.replaced", _("replaced by a new terminal")
    APPLICATION_SUBMITTED = "application.submitted", _("application submitted")
    APPLICATION_INFO_REQUESTED = "application.info_requested", _("more information asked for")
    APPLICATION_INFO_GIVEN = "application.info_given", _("information added")
    APPLICATION_APPROVED = "application.approved", _("application approved")
    APPLICATION_REJECTED = "application.rejected", _("application rejected")
    APPLICATION_REMINDED = "application.review_reminded", _("review reminder sent")
    APPLICATION_ALLOCATED = "application.allocated", _("terminals allocated to the application")
    APPLICATION_SHIPPED = "application.shipped", _("application shipped")
    APPLICATION_DELIVERED = "application.delivered", _("delivery confirmed")
    APPLICATION_INSTALLED = "application.installed", _("terminal installed")
    APPLICATION_TESTED = "application.tested", _("test transaction recorded")
    APPLICATION_COMPLETED = "application.completed", _("application completed")
    KYC_VIEWED = "kyc.viewed", _("KYC data viewed")
    KYC_DOCUMENT_UPLOADED = "kyc.document_uploaded", _("KYC document uploaded")
    KYC_DOCUMENT_VIEWED = "kyc.document_viewed", _("KYC document viewed")
    # Closure (注销)
    CLOSURE_REQUESTED = "closure.requested", _("closure requested")
    CLOSURE_WITHDRAWN = "closure.withdrawn", _("closure withdrawn")
    CLOSURE_APPROVED = "closure.approved", _("closure approved")
    CLOSURE_REJECTED = "closure.rejected", _("closure rejected")
    CLOSURE_REMINDED = "closure.review_reminded", _("closure review reminder sent")
    CLOSURE_ESCALATED = "closure.escalated", _("closure escalated")
    CLOSURE_STEP_DONE = "closure.step_done", _("closure step done")
    CLOSURE_STEP_WAITING = "closure.step_waiting", _("closure step waiting")
    CLOSURE_STEP_FAILED = "closure.step_failed", _("closure step needs attention")
    CLOSURE_STEP_RETRIED = "closure.step_retried", _("closure step started again")
    CLOSURE_DEVICE_RECEIVED = "closure.device_received", _("returned device received")
    CLOSURE_DEVICE_INSPECTED = "closure.device_inspected", _("returned device inspected")
    CLOSURE_COMPLETED = "closure.completed", _("closure completed")
    CLOSURE_TAKEN_OVER = "closure.taken_over", _("agent termination taken over by the provider")
    # Complaints (投诉, closure/complaint_states.py)
    COMPLAINT_RAISED = "complaint.raised", _("complaint raised")
    COMPLAINT_ACKNOWLEDGED = "complaint.acknowledged", _("complaint acknowledged")
    COMPLAINT_RESOLVED = "complaint.resolved", _("complaint resolved")
    COMPLAINT_REJECTED = "complaint.rejected", _("complaint rejected")
    COMPLAINT_ESCALATED = "complaint.escalated", _("complaint escalated to the provider")
    COMPLAINT_CLOSED = "complaint.closed", _("complaint closed")
    COMPLAINT_REOPENED = "complaint.reopened", _("complaint reopened")
    # Notifications
    NOTIFICATION_RESENT = "notification.resent", _("notice sent again")
    WEBHOOK_ENDPOINT_CREATED = "webhook.endpoint_created", _("webhook endpoint created")
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", _("webhook secret rotated")
    WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint_disabled", _("webhook endpoint disabled")
    # Parties
    AGENT_CREATED = "agent.created", _("agent created")
    MERCHANT_CREATED = "merchant.created", _("merchant created")
    MERCHANT_SUSPENDED = "merchant.suspended", _("merchant suspended")
    MERCHANT_RESUMED = "merchant.resumed", _("merchant resumed")
    MERCHANT_CLOSED = "merchant.closed", _("merchant closed")
    STORE_CREATED = "store.created", _("store created")
    # Payment-channel bindings (parties/channels/)
    CHANNEL_BOUND = "channel.bound", _("bound to a payment channel")
    CHANNEL_UNBOUND = "channel.unbound", _("unbound from a payment channel")
    CHANNEL_UNBIND_REFUSED = "channel.unbind_refused", _("payment channel refused to unbind")
    CHANNEL_UNBIND_FAILED = "channel.unbind_failed", _("payment channel unbind to be tried again")
    # Identity and access
    LOGIN_SUCCEEDED = "auth.login_succeeded", _("logged in")
    LOGIN_PASSWORD_ACCEPTED = "auth.password_accepted", _("password accepted")  # the second factor may follow
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
    # Closure: the merchant's data backup and the end of retention (closure/backup.py, retention.py)
    DATA_BACKUP_CREATED = "data_backup.created", _("data backup created")
    DATA_BACKUP_DOWNLOADED = "data_backup.downloaded", _("data backup downloaded")
    MERCHANT_DATA_SHREDDED = "merchant.data_shredded", _("personal data destroyed (end of retention)")


class ActorKind(models.TextChoices):
    USER = "user", _("user")
    TOKEN = "token", _("API token")
    JOB = "job", _("job")
    SYSTEM = "system", _("system")


# The taxonomy of the reason codes an event type carries, named by the context that records it, for
# readers in lower contexts (a terminal's timeline shows why a terminal was replaced in the replacement's
# own words). Registered from the recording context's ``AppConfig.ready``.
_REASONS: dict[str, type[models.TextChoices]] = {}


def register_reasons(event_type: str, reasons: type[models.TextChoices]) -> None:
    _REASONS[str(event_type)] = reasons


def registered_reasons(event_type: str) -> type[models.TextChoices] | None:
    return _REASONS.get(str(event_type))
