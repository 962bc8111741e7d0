"""Named personas for tests: who is who, and what they own.

provider ─┬─ agent A (AG-A) ─┬─ merchant A (MID 100000000000001, store S1)
          │                  └─ sub-agent A1 (AG-A1) ── merchant A1 (MID 100000000000003)
          └─ agent B (AG-B) ──── merchant B (MID 100000000000002)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posfleet.fleet.models import Terminal, TerminalModel
from posfleet.fleet.services import NewTerminal, terminal_register, terminal_transition
from posfleet.fleet.states import TRANSITIONS, Command, Status
from posfleet.iam.models import Organisation, OrgKind, Role, User
from posfleet.parties.models import Agent, Merchant, Store
from posfleet.parties.services import agent_create, merchant_create, store_create
from posfleet.platform.context import Actor
from posfleet.testing.totp import enrol

PASSWORD = "posfleet-test-password"
SYSTEM = Actor.system("test-setup")


@dataclass
class World:
    provider: Organisation
    agent_a: Agent
    agent_a1: Agent
    agent_b: Agent
    merchant_a: Merchant
    merchant_a1: Merchant
    merchant_b: Merchant
    store_a: Store
    model: TerminalModel
    users: dict[str, User] = field(default_factory=dict)

    def user(self, name: str) -> User:
        return self.users[name]


def _user(username: str, organisation: Organisation, role: str) -> User:
    user = User(username=username, organisation=organisation, role=role, language="en")
    user.set_password(PASSWORD)
    user.save()
    enrol(user)
    return user


def build_world() -> World:
    provider = Organisation(kind=OrgKind.PROVIDER, name="Test Provider")
    provider.save()
    agent_a = agent_create(actor=SYSTEM, code="AG-A", name="Agent A")
    agent_a1 = agent_create(actor=SYSTEM, code="AG-A1", name="Sub-agent A1", parent=agent_a)
    agent_b = agent_create(actor=SYSTEM, code="AG-B", name="Agent B")
    merchant_a = merchant_create(
        actor=SYSTEM,
        agent=agent_a,
        mid="100000000000001",
        kind="enterprise",
        name="Shop A",
        legal_name="Shop A Ltd",
        mcc="5411",
    )
    merchant_b = merchant_create(
        actor=SYSTEM,
        agent=agent_b,
        mid="100000000000002",
        kind="individual",
        name="Shop B",
        legal_name="Zhang San",
        mcc="5812",
    )
    merchant_a1 = merchant_create(
        actor=SYSTEM,
        agent=agent_a1,
        mid="100000000000003",
        kind="individual",
        name="Shop A1",
        legal_name="Li Si",
        mcc="5499",
    )
    store_a = store_create(actor=SYSTEM, merchant=merchant_a, code="S1", name="Shop A main store")
    model = TerminalModel.objects.create(
        code="pax-a920",
        maker="PAX",
        name="A920",
        kind="smart",
        capabilities=["ic_chip", "nfc", "qr_scan", "printer", "cellular"],
    )
    world = World(provider, agent_a, agent_a1, agent_b, merchant_a, merchant_a1, merchant_b, store_a, model)
    world.users = {
        "admin": _user("admin", provider, Role.ADMIN),
        "reviewer": _user("reviewer", provider, Role.REVIEWER),
        "warehouse": _user("warehouse", provider, Role.WAREHOUSE),
        "agent_a": _user("agent_a", agent_a.organisation, Role.AGENT),
        "agent_a1": _user("agent_a1", agent_a1.organisation, Role.AGENT),
        "agent_b": _user("agent_b", agent_b.organisation, Role.AGENT),
        "merchant_a": _user("merchant_a", merchant_a.organisation, Role.MERCHANT),
        "merchant_b": _user("merchant_b", merchant_b.organisation, Role.MERCHANT),
    }
    return world


# The shortest path of commands from in_stock to each state (computed from the table).
def path_to(state: Status) -> list[Command]:
    from collections import deque

    start = Status.IN_STOCK
    queue: deque[tuple[Status, list[Command]]] = deque([(start, [])])
    seen = {start}
    while queue:
        current, path = queue.popleft()
        if current == state:
            return path
        for (source, command), target in TRANSITIONS.items():
            if source == current and target not in seen:
                seen.add(target)
                queue.append((target, [*path, command]))
    raise ValueError(f"{state} is unreachable")


_REASONS = {
    Command.SUSPEND: "risk",
    Command.DEACTIVATE: "cost",
    Command.DEREGISTER: "business_change",
    Command.SCRAP: "obsolete",
    Command.REPORT_LOST: "lost",
}


def make_terminal(
    world: World,
    sn: str,
    state: Status = Status.IN_STOCK,
    *,
    agent: Agent | None = None,
    merchant: Merchant | None = None,
    model: TerminalModel | None = None,
) -> Terminal:
    """A terminal walked through the real services (so its history is real) to ``state``."""
    terminal_register(actor=SYSTEM, terminal=NewTerminal(sn=sn, model_id=(model or world.model).pk))
    return walk(world, sn, path_to(state), agent=agent, merchant=merchant)


def walk(
    world: World,
    sn: str,
    commands: list[Command],
    *,
    agent: Agent | None = None,
    merchant: Merchant | None = None,
) -> Terminal:
    """``commands`` run on the terminal through the real services, in order (allocation to ``agent``,
    binding to ``merchant``: merchant A and its agent unless told)."""
    merchant = merchant or world.merchant_a
    agent = agent or merchant.agent
    for command in commands:
        params: dict[str, str] = {}
        if command == Command.ALLOCATE:
            params = {"agent_code": agent.code}
        elif command == Command.BIND:
            params = {"merchant_mid": merchant.mid}
        terminal_transition(
            actor=SYSTEM, sn=sn, action=command, reason=_REASONS.get(command, ""), params=params
        )
    return Terminal.objects.get(sn=sn)
