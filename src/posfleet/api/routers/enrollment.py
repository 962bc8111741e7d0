"""/terminals/{sn}/renewal: renew a terminal's service (the fee through the ledger, the expiry a year
on per year, a terminal suspended for expiry resumed). /terminals/{sn}/replacement: replace a terminal
by one from its agent's stock (换机)."""

from __future__ import annotations

from datetime import date, datetime

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, StepUpCode, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.enrollment.services.expiry import service_renew
from posfleet.enrollment.services.replacement import ReplacementReason, terminal_replace
from posfleet.platform.context import Actor
from posfleet.platform.money import format_fen

router = Router(tags=["enrollment"])


class RenewalIn(Schema):
    years: int = Field(1, ge=1, le=5, description="Years of service to add (1–5).")


class RenewalOut(Schema):
    sn: str
    status: str
    previous_expires_on: date | None
    expires_on: date
    fee_fen: int = Field(description="Charged to the merchant's fees receivable (deducted at settlement).")
    fee_display: str
    resumed: bool = Field(description="The terminal had been suspended for expiry and takes payments again.")


@router.post(
    "/terminals/{sn}/renewal",
    summary="Renew a terminal's service",
    response=s.responses({200: RenewalOut}, (400, 401, 403, 404, 409, 422)),
)
def terminals_renew(
    request: HttpRequest, sn: str, body: RenewalIn, idempotency_key: IdempotencyKey = None
) -> HttpResponse:
    """Staff, the agent that signed the merchant, or the merchant itself. The annual fee of the active
    service contract, times `years`, is charged at once; the expiry moves on from the current one."""

    def work(who: Actor) -> Outcome:
        renewal = service_renew(actor=who, sn=sn, years=body.years)
        out = RenewalOut(
            sn=renewal.terminal.sn,
            status=renewal.terminal.status,
            previous_expires_on=renewal.previous_expires_on,
            expires_on=renewal.expires_on,
            fee_fen=renewal.fee_fen,
            fee_display=format_fen(renewal.fee_fen),
            resumed=renewal.resumed,
        )
        return Outcome(200, presenters.dump(out))

    return execute(request, actor(request), work, key=idempotency_key)


class ReplacementIn(Schema):
    new_sn: str = Field(max_length=32, description="SN of a terminal allocated to the old terminal's agent.")
    reason: str = Field(max_length=48, description="One of: " + ", ".join(ReplacementReason.values) + ".")
    note: str = Field("", max_length=2000, description="Required when the reason is `other`.")


class ReplacementOut(Schema):
    old: s.TerminalOut = Field(description="The replaced terminal, now deregistered: to be returned.")
    new: s.TerminalOut = Field(description="The new terminal, active (or suspended as the old one was).")
    contract_id: int | None = Field(description="The service contract that moved to the new terminal.")
    replaced_at: datetime


@router.post(
    "/terminals/{sn}/replacement",
    summary="Replace a terminal (换机)",
    response=s.responses({200: ReplacementOut}, s.WRITE),
)
def terminals_replace(
    request: HttpRequest,
    sn: str,
    body: ReplacementIn,
    idempotency_key: IdempotencyKey = None,
    step_up: StepUpCode = None,
) -> HttpResponse:
    """An admin, or the agent that holds both terminals, with a fresh TOTP code in `X-Step-Up-TOTP`.
    The new terminal is shipped, bound to the same merchant and store with a TID of its own and
    activated; it takes over the service expiry and the active service contract (fees, deposit,
    terms). The old terminal is deactivated and deregistered with reason `replacement`."""

    def work(who: Actor) -> Outcome:
        done = terminal_replace(actor=who, old_sn=sn, new_sn=body.new_sn, reason=body.reason, note=body.note)
        out = ReplacementOut(
            old=presenters.terminal(done.old, who),
            new=presenters.terminal(done.new, who),
            contract_id=done.contract.pk if done.contract is not None else None,
            replaced_at=done.replacement.replaced_at,
        )
        return Outcome(200, presenters.dump(out))

    return execute(
        request, actor(request), work, key=idempotency_key, step_up_needed=True, step_up_code=step_up
    )
