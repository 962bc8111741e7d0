"""/me: who is calling; /me/home: a merchant's home (the console's home's read model)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from posfleet.api import home_schemas as h
from posfleet.api import schemas as s
from posfleet.api.auth import actor
from posfleet.api.routers.notifications import inbox_entry
from posfleet.iam.models import OrgKind, Role
from posfleet.parties.selectors import agent_of_organisation, merchant_of_organisation
from posfleet.platform.clock import now, today
from posfleet.platform.errors import PermissionDenied
from posfleet.platform.money import format_fen
from posfleet.reports.merchant_home import MerchantHome, OpenItem, merchant_home
from posfleet.reports.merchant_home import Money as HomeMoney

router = Router(tags=["me"])


@router.get("/me", summary="Who am I", response=s.responses({200: s.MeOut}, (401, 422)))
def me(request: HttpRequest) -> s.MeOut:
    """The caller: username, role, organisation, language and how they authenticated."""
    who = actor(request)
    user = who.user
    assert user is not None
    organisation = None
    org = user.organisation
    if org is not None:
        code = None
        if org.kind == OrgKind.AGENT:
            agent = agent_of_organisation(org.pk)
            code = agent.code if agent is not None else None
        elif org.kind == OrgKind.MERCHANT:
            merchant = merchant_of_organisation(org.pk)
            code = merchant.mid if merchant is not None else None
        organisation = s.OrganisationOut(id=org.pk, kind=org.kind, name=org.name, code=code)
    return s.MeOut(
        username=user.get_username(),
        role=user.role,
        role_label=str(Role(user.role).label) if user.role in Role.values else user.role,
        organisation=organisation,
        language=user.language,
        auth="token" if who.kind == "token" else "session",
        token_id=who.token_id,
        read_only=who.read_only,
    )


@router.get(
    "/me/home",
    summary="My home (merchants)",
    response=s.responses({200: h.MerchantHomeOut}, (401, 403, 422)),
)
def me_home(request: HttpRequest) -> h.MerchantHomeOut:
    """A merchant's home, as its console home shows it: its terminals in plain words with their service
    expiry and last transaction, the next payout and its day, what is due and owed, the deposit held,
    its open applications, closure cases and complaints with what happens next, its unread notices.
    For merchant users only (others: 403)."""
    user = actor(request).user
    if user is None or user.role != Role.MERCHANT:
        raise PermissionDenied()
    return present_home(merchant_home(user, on=today(), at=now()))


def present_home(home: MerchantHome) -> h.MerchantHomeOut:
    m = home.money
    return h.MerchantHomeOut(
        merchant=h.HomeMerchantOut(mid=home.merchant.mid, name=home.merchant.name) if home.merchant else None,
        terminal_total=home.terminal_total,
        in_use=home.in_use,
        taking_payments=home.taking_payments,
        by_status=[
            h.HomeStatusCountOut(
                status=c.status, status_label=str(c.label), words=str(c.words), count=c.count
            )
            for c in home.by_status
        ],
        terminals=[
            h.HomeTerminalOut(
                sn=t.sn,
                status=t.status,
                status_label=str(t.label),
                words=str(t.words),
                store=t.store,
                service_expires_on=t.expires_on,
                days_left=t.days_left,
                expiring_soon=t.expiring_soon,
                last_transaction_at=t.last_at,
                last_amount_fen=t.last_amount_fen,
                last_amount_display=format_fen(t.last_amount_fen) if t.last_amount_fen is not None else None,
                last_note=t.last_note,
            )
            for t in home.terminals
        ],
        more_terminals=home.more_terminals,
        money=None if m is None else _money(m),
        applications=[_open(i) for i in home.applications],
        closures=[_open(i) for i in home.closures],
        complaints=[_open(i) for i in home.complaints],
        unread_notices=home.unread,
        notices=[inbox_entry(e) for e in home.inbox],
    )


def _money(m: HomeMoney) -> h.HomeMoneyOut:
    p = m.payout
    return h.HomeMoneyOut(
        next_payout=h.HomeNextPayoutOut(
            business_date=p.business_date,
            paid_on=p.paid_on,
            first_day=p.first_day,
            txn_count=p.txn_count,
            gross_fen=p.gross_fen,
            refunds_fen=p.refunds_fen,
            fees_fen=p.fees_fen,
            deducted_fen=p.deducted_fen,
            net_fen=p.net_fen,
            payout_fen=p.payout_fen,
            payout_display=format_fen(p.payout_fen),
            still_selling=p.still_selling,
        ),
        last_paid_on=m.last_paid_on,
        last_paid_fen=m.last_paid_fen,
        owed_fen=m.owed_fen,
        penalties_fen=m.penalties_fen,
        owed_total_fen=m.owed_total_fen,
        owed_total_display=format_fen(m.owed_total_fen),
        deposit_fen=m.deposit_fen,
        deposit_display=format_fen(m.deposit_fen),
        fees_due=[
            h.HomeFeeDueOut(
                due_on=f.due_on, amount_fen=f.amount_fen, amount_display=format_fen(f.amount_fen), sn=f.sn
            )
            for f in m.fees_due
        ],
    )


def _open(item: OpenItem) -> h.HomeOpenItemOut:
    return h.HomeOpenItemOut(
        number=item.number, title=item.title, state=str(item.state), next_step=item.next_words, late=item.late
    )
