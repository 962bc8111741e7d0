"""/merchants/{mid}/statements (monthly statements as JSON and PDF) and /merchants/{mid}/comparison
(what each rate plan would have cost the merchant), in the caller's scope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router

from posfleet.api import schemas as s
from posfleet.api import statement_presenters as present
from posfleet.api import statement_schemas as st
from posfleet.api.auth import actor
from posfleet.billing.comparison import MAX_MONTHS, compare_plans, default_period
from posfleet.billing.selectors import monthly_figures, rate_plans
from posfleet.billing.statements import (
    MONTHLY_DOCUMENT,
    PDF_CONTENT_TYPE,
    Month,
    monthly_statement,
    render_pdf,
    statement_months,
)
from posfleet.iam.models import User
from posfleet.iam.selectors import provider
from posfleet.parties.selectors import merchant_for
from posfleet.platform.clock import today
from posfleet.platform.dates import check_range
from posfleet.platform.errors import NotFound, ValidationFailed

router = Router(tags=["statements"])

MONTHS_LISTED = 36
PDF_RESPONSE = {
    "responses": {
        200: {
            "description": "The statement as an A4 PDF, in the caller's language.",
            "content": {PDF_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


def _user(request: HttpRequest) -> User:
    user = actor(request).user
    assert user is not None
    return user


def _month(text: str) -> Month:
    """A month that has begun (404 otherwise: there is no statement of it)."""
    try:
        month = Month.parse(text)
    except ValueError as exc:
        raise NotFound() from exc
    if month > Month.of(today()):
        raise NotFound()
    return month


@router.get(
    "/merchants/{mid}/statements",
    summary="A merchant's statement months",
    response=s.responses({200: st.StatementMonthList}, s.READ_ONE),
)
def statements_list(request: HttpRequest, mid: str) -> st.StatementMonthList:
    """The months with something to state, newest first, with their takings."""
    merchant = merchant_for(_user(request), mid)
    day = today()
    months = statement_months(merchant.pk, until=day, limit=MONTHS_LISTED)
    figures = monthly_figures(merchant.pk, months[-1], months[0]) if months else []
    items = [present.statement_month(f, f.month.last_day >= day) for f in reversed(figures)]
    return st.StatementMonthList(merchant=merchant.mid, items=items)


# Before /statements/{month}: Django matches URL patterns in order.
@router.get(
    "/merchants/{mid}/statements/{month}.pdf",
    summary="A monthly statement as PDF",
    response=s.responses({}, s.READ_ONE),
    openapi_extra=PDF_RESPONSE,
)
def statement_pdf(request: HttpRequest, mid: str, month: str) -> HttpResponse:
    """The statement of `month` (YYYY-MM) as an A4 PDF, the same document as the console's download."""
    merchant = merchant_for(_user(request), mid)
    statement = monthly_statement(merchant, _month(month))
    root = provider()
    context = {"statement": statement, "provider_name": root.name if root is not None else ""}
    response = HttpResponse(render_pdf(MONTHLY_DOCUMENT, context), content_type=PDF_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="statement-{merchant.mid}-{statement.month}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@router.get(
    "/merchants/{mid}/statements/{month}",
    summary="A monthly statement",
    response=s.responses({200: st.StatementOut}, s.READ_ONE),
)
def statement_detail(request: HttpRequest, mid: str, month: str) -> st.StatementOut:
    """The statement of `month` (YYYY-MM): transactions by payment method, settlements paid, deposits,
    service fees, and the settlement payable from the opening to the closing balance."""
    merchant = merchant_for(_user(request), mid)
    return present.statement(monthly_statement(merchant, _month(month)))


def _period(query: st.ComparisonQuery) -> tuple[Month, Month]:
    first, last = default_period(months=6)
    try:
        start = Month.parse(query.start) if query.start else first
        end = Month.parse(query.end) if query.end else last
    except ValueError as exc:
        raise ValidationFailed(_("Choose months such as 2026-05."), field="from") from exc
    if end > Month.of(today()):
        raise ValidationFailed(_("The comparison ends this month at the latest."), field="to")
    check_range(start, end, field="from")
    if (end.year - start.year) * 12 + end.month - start.month >= MAX_MONTHS:
        raise ValidationFailed(_("Compare at most %(n)s months at a time.") % {"n": MAX_MONTHS}, field="from")
    return start, end


@router.get(
    "/merchants/{mid}/comparison",
    summary="Should I switch? Plans compared on a merchant's transactions",
    response=s.responses({200: st.ComparisonOut}, s.READ_ONE),
)
def merchant_comparison(request: HttpRequest, mid: str, query: Query[st.ComparisonQuery]) -> st.ComparisonOut:
    """What each rate plan (ours and competitors') would have cost the merchant for its real
    transactions, month by month, against its current plan; every fee computed exactly (caps and
    minimums included) with the version in force on each day."""
    merchant = merchant_for(_user(request), mid)
    first, last = _period(query)
    plans = None
    codes = [c.strip() for c in query.plans.split(",") if c.strip()]
    if codes:
        plans = list(rate_plans().filter(code__in=codes))
        missing = sorted(set(codes) - {p.code for p in plans})
        if missing:
            raise ValidationFailed(
                _("Unknown rate plan: %(codes)s.") % {"codes": ", ".join(missing)[:200]}, field="plans"
            )
    result = compare_plans(merchant_id=merchant.pk, first=first, last=last, plans=plans)
    return present.comparison(merchant.mid, result)
