"""Creating agents, merchants and stores. Each creation is audited in its own transaction."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.iam.models import Organisation, OrgKind
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.platform.context import Actor
from posfleet.platform.errors import PermissionDenied, ValidationFailed
from posfleet.platform.models import DataKey


def _require_admin(actor: Actor) -> None:
    if actor.kind in {"system", "job"}:
        return
    if actor.user is None or not actor.user.has_perm("parties.manage"):
        raise PermissionDenied()


def _validated(obj: Agent | Merchant | Store, exclude: list[str]) -> None:
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationFailed(_("The data is not valid."), errors=exc.message_dict) from exc


def agent_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    parent: Agent | None = None,
    contact_name: str = "",
    contact_phone: str = "",
) -> Agent:
    _require_admin(actor)
    with transaction.atomic():
        parent_org = (
            parent.organisation
            if parent is not None
            else Organisation.objects.filter(kind=OrgKind.PROVIDER).first()
        )
        if parent_org is None:
            raise ValidationFailed(_("Create the provider organisation first."))
        org = Organisation(kind=OrgKind.AGENT, name=name, parent=parent_org)
        org.save()
        agent = Agent(
            organisation=org, code=code, name=name, contact_name=contact_name, contact_phone=contact_phone
        )
        _validated(agent, exclude=["organisation"])
        agent.save()
        record(
            actor,
            Entry(
                event_type=EventType.AGENT_CREATED,
                subject_type="agent",
                subject_id=code,
                after={"name": name, "parent": parent.code if parent else None},
            ),
        )
    return agent


def merchant_create(
    *,
    actor: Actor,
    agent: Agent,
    mid: str,
    kind: str,
    name: str,
    legal_name: str,
    mcc: str,
    contact_name: str = "",
    contact_phone: str = "",
    contact_email: str = "",
    data_key: DataKey | None = None,
) -> Merchant:
    _require_admin(actor)
    with transaction.atomic():
        org = Organisation(kind=OrgKind.MERCHANT, name=name, parent=agent.organisation)
        org.save()
        merchant = Merchant(
            organisation=org,
            agent=agent,
            mid=mid,
            kind=kind,
            name=name,
            legal_name=legal_name,
            mcc=mcc,
            contact_name=contact_name,
            contact_phone=contact_phone,
            contact_email=contact_email,
            data_key=data_key,
        )
        _validated(merchant, exclude=["organisation", "agent", "data_key"])
        merchant.save()
        record(
            actor,
            Entry(
                event_type=EventType.MERCHANT_CREATED,
                subject_type="merchant",
                subject_id=mid,
                after={"agent": agent.code, "kind": kind, "mcc": mcc},
            ),
        )
    return merchant


def store_create(
    *, actor: Actor, merchant: Merchant, code: str, name: str, city: str = "", address: str = ""
) -> Store:
    _require_admin(actor)
    with transaction.atomic():
        store = Store(merchant=merchant, code=code, name=name, city=city, address=address)
        _validated(store, exclude=["merchant"])
        store.save()
        record(
            actor,
            Entry(
                event_type=EventType.STORE_CREATED,
                subject_type="store",
                subject_id=f"{merchant.mid}/{code}",
                after={"name": name, "city": city},
            ),
        )
    return store
