"""Reading the fleet's counters (``TerminalTally``, kept by the database's triggers; docs/adr/0034):
whose rows a user may sum, and the proof that they equal a recount."""

from __future__ import annotations

from django.db.models import Count, QuerySet, Sum

from posfleet.fleet.models import Terminal, TerminalTally
from posfleet.iam.models import Role, User
from posfleet.parties.selectors import by_visible_agent


def tallies_of(user: User) -> QuerySet[TerminalTally] | None:
    """The fleet's counters of the terminals ``user`` may see (``terminals_visible_to``'s scope): all
    for provider staff, its subtree's agents for an agent; None for a merchant (counted live: the
    counters have no merchant, and a merchant has a handful of terminals)."""
    if user.is_authenticated and user.is_active and user.role == Role.MERCHANT and user.organisation_id:
        return None
    scope = by_visible_agent(user)
    return TerminalTally.objects.none() if scope is None else TerminalTally.objects.filter(scope)


def tally_differences() -> dict[tuple[int | None, int, str], tuple[int, int]]:
    """(agent id, model id, status) → (the counters' count, a recount of the terminals) for every key
    on which they differ: empty when the fleet's counters are right (they always should be)."""
    tallied = {
        (agent, model, status): n
        for agent, model, status, n in TerminalTally.objects.order_by()
        .values_list("agent_id", "model_id", "status")
        .annotate(total=Sum("n"))
        if n
    }
    counted = {
        (agent, model, status): n
        for agent, model, status, n in Terminal.objects.order_by()
        .values_list("agent_id", "model_id", "status")
        .annotate(n=Count("id"))
    }
    return {
        key: (tallied.get(key, 0), counted.get(key, 0))
        for key in tallied.keys() | counted.keys()
        if tallied.get(key, 0) != counted.get(key, 0)
    }
