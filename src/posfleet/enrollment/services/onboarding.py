"""Opening the merchant an approved application asks for: a new merchant (a new MID, the applicant's
data key, its rate plan) or, for more terminals, the existing one; and the store the terminals go to.
Called inside the approval's transaction (``enrollment.services.applications.application_review``)."""

from __future__ import annotations

from posfleet.billing.services.plans import plan_assign
from posfleet.enrollment.models import Application
from posfleet.parties import selectors as parties
from posfleet.parties.selectors import Store
from posfleet.parties.services import merchant_create, store_create
from posfleet.platform import counters
from posfleet.platform.clock import today
from posfleet.platform.context import Actor

MID_COUNTER = "merchant_mid"
MID_PREFIX = "898"  # 3 + 12 digits = the 15 characters of ISO 8583 field 42


def system_actor(application: Application) -> Actor:
    """The application itself as the actor of the steps it implies (opening the merchant, signing the
    contract the applicant accepted when submitting)."""
    return Actor.job(f"application:{application.number}")


def _new_mid() -> str:
    while True:
        mid = f"{MID_PREFIX}{counters.next_values(MID_COUNTER)[0]:012d}"
        if not parties.mid_taken(mid):
            return mid


def open_merchant(application: Application) -> None:
    """On approval: register the merchant (new MID, with the application's data key) and its store;
    for more terminals, the store is added to the existing merchant. Called inside the approval."""
    system = system_actor(application)
    merchant = application.merchant
    if merchant is None:
        merchant = merchant_create(
            actor=system,
            agent=application.agent,
            mid=_new_mid(),
            kind=application.merchant_kind,
            name=application.shop_name,
            legal_name=application.legal_name,
            mcc=application.mcc,
            contact_name=application.contact_name,
            contact_phone=application.contact_phone,
            contact_email=application.contact_email,
            data_key=application.data_key,
        )
        plan_assign(
            actor=system,
            merchant_id=merchant.pk,
            merchant_mid=merchant.mid,
            plan=application.plan,
            effective_from=today(),
        )
        Application.objects.filter(pk=application.pk).update(merchant=merchant)
        application.merchant = merchant
    if parties.store_at(merchant, application.store_name, application.address) is None:
        store_create(
            actor=system,
            merchant=merchant,
            code=parties.free_store_code(merchant),
            name=application.store_name,
            city=application.city,
            address=application.address,
        )


def store_of(application: Application) -> Store:
    assert application.merchant is not None
    store = parties.store_at(application.merchant, application.store_name, application.address)
    assert store is not None, "approval opens the store"
    return store
