"""/terminals/{sn}/renewal: renew a terminal's service (the fee through the ledger, the expiry a year
on per year, a terminal suspended for expiry resumed)."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from posfleet.api import presenters
from posfleet.api import schemas as s
from posfleet.api.auth import IdempotencyKey, actor
from posfleet.api.idempotency import Outcome, execute
from posfleet.enrollment.expiry import service_renew
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
