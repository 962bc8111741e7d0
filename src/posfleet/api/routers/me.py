"""/me: who is calling."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from posfleet.api import schemas as s
from posfleet.api.auth import actor
from posfleet.iam.models import OrgKind, Role
from posfleet.parties.selectors import agent_of_organisation, merchant_of_organisation

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
