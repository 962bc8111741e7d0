"""The demo fleet as a plan: pure Python, no database, fully determined by (seed, sizes, today).

Every terminal gets a history: the commands that brought it to its state, each a number of days
before ``today`` and done by someone (the warehouse, an agent, a merchant, the admin or the expiry
job). ``build.py`` turns the plan into rows and into the audit chain.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from posfleet.demo import vocabulary as V
from posfleet.fleet.states import TRANSITIONS, Command, Status

C, S = Command, Status
OLDEST = 730  # days of history
FIRST_LOT = 700  # the first delivery of devices, days ago
LOT_EVERY = 14  # a delivery every two weeks

# Share of each final state (per cent of the fleet).
STATE_WEIGHTS: dict[Status, int] = {
    S.IN_STOCK: 7,
    S.ALLOCATED: 5,
    S.SHIPPED: 2,
    S.BOUND: 2,
    S.ACTIVE: 62,
    S.SUSPENDED: 6,
    S.DEACTIVATED: 6,
    S.DEREGISTERED: 4,
    S.RETURNED: 2,
    S.SCRAPPED: 2,
    S.BLOCKED: 2,
}
# Days between a command and the event before it (min, max).
GAPS: dict[Command, tuple[int, int]] = {
    C.ALLOCATE: (3, 60),
    C.PULL_BACK: (10, 90),
    C.SHIP: (1, 20),
    C.BIND: (2, 10),
    C.ACTIVATE: (0, 2),  # the test transaction, often the day of installation
    C.SUSPEND: (20, 300),
    C.RESUME: (2, 30),
    C.DEACTIVATE: (20, 300),
    C.REACTIVATE: (2, 60),
    C.DEREGISTER: (7, 120),
    C.RECEIVE_RETURN: (3, 30),
    C.REFURBISH: (3, 20),
    C.SCRAP: (3, 20),
    C.REPORT_LOST: (5, 200),
}
REASONS: dict[Command, dict[str, int]] = {
    C.SUSPEND: {"expiry": 40, "risk": 25, "unpaid_fee": 20, "investigation": 15},
    C.DEACTIVATE: {
        "cost": 25,
        "business_change": 20,
        "financial_pressure": 15,
        "competition": 12,
        "technology_update": 10,
        "device_fault": 10,
        "regulation": 3,
        "other": 5,
    },
    C.SCRAP: {"beyond_repair": 60, "obsolete": 40},
    C.REPORT_LOST: {"lost": 70, "stolen": 30},
}
NOTES = {
    "cost": "商户反映费率偏高",
    "business_change": "门店停业装修",
    "financial_pressure": "经营困难，暂停收单",
    "competition": "改用其他机构的收款码",
    "technology_update": "换用智能POS",
    "device_fault": "打印模块故障",
    "regulation": "经营范围变更，需重新进件",
    "other": "商户另有安排",
}
# The actor of each command (who does it in real life); "holder" is the merchant's own user when it
# has one, else its agent.
ACTOR_OF: dict[Command, str] = {
    C.ALLOCATE: "warehouse",
    C.PULL_BACK: "warehouse",
    C.SHIP: "warehouse",
    C.BIND: "agent",
    C.ACTIVATE: "agent",
    C.SUSPEND: "admin",
    C.RESUME: "admin",
    C.DEACTIVATE: "holder",
    C.REACTIVATE: "holder",
    C.DEREGISTER: "admin",
    C.RECEIVE_RETURN: "warehouse",
    C.REFURBISH: "warehouse",
    C.SCRAP: "warehouse",
    C.REPORT_LOST: "holder",
}


@dataclass
class AgentPlan:
    index: int
    code: str
    name: str
    parent: int | None
    city: int
    contact_name: str
    contact_phone: str
    created: int  # days ago
    username: str


@dataclass
class StorePlan:
    code: str
    name: str
    city: str
    address: str
    latitude: Decimal | None = None  # WGS-84 degrees, six places
    longitude: Decimal | None = None


@dataclass
class MerchantPlan:
    index: int
    mid: str
    kind: str
    name: str
    legal_name: str
    mcc: str
    agent: int
    city: int
    contact_name: str
    contact_phone: str
    contact_email: str
    stores: list[StorePlan]
    weight: float
    created: int = 0  # days ago, set once its terminals are planned
    terminals: int = 0
    username: str | None = None


@dataclass
class Step:
    command: Command
    ago: int
    reason: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TerminalPlan:
    index: int
    sn: str
    model: int
    iccid: str
    expires_on: date
    firmware: str
    final: Status
    lot: int  # days ago of the delivery (import) that brought it into stock
    steps: list[Step]
    agent: int | None = None  # the agent holding it in its (last) cycle
    merchant: int | None = None
    store: int | None = None
    heartbeat_minutes: int | None = None  # minutes before today's midnight


@dataclass
class Plan:
    today: date
    seed: int
    agents: list[AgentPlan]
    merchants: list[MerchantPlan]
    terminals: list[TerminalPlan]
    lots: list[int]  # days ago of every delivery that brought at least one terminal
    merchant_usernames: list[str]


def _pick(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class _Picker:
    """Weighted choice among many keys, with the cumulative weights computed once."""

    def __init__(self, weights: Mapping[Any, float]) -> None:
        self.keys = list(weights)
        self.cumulative = list(itertools.accumulate(weights[k] for k in self.keys))

    def __call__(self, rng: random.Random) -> Any:
        return rng.choices(self.keys, cum_weights=self.cumulative)[0]


def _person(rng: random.Random) -> str:
    return rng.choice(V.SURNAMES) + rng.choice(V.GIVEN)


def _phone(rng: random.Random) -> str:
    return f"1380000{rng.randrange(10_000):04d}"  # a fictional range, clearly fake


def _brand(rng: random.Random) -> str:
    return "".join(rng.sample(V.BRAND_SYLLABLES, 2))


def _plan_agents(rng: random.Random, count: int) -> list[AgentPlan]:
    tops = max(1, round(count / 4))
    agents: list[AgentPlan] = []
    for i in range(tops):
        city = i % len(V.CITIES)
        name = f"{V.CITIES[city][0]}{_brand(rng)}{rng.choice(V.AGENT_SUFFIXES)}"
        agents.append(
            AgentPlan(
                i,
                f"AG{i + 1:02d}",
                name,
                None,
                city,
                _person(rng),
                _phone(rng),
                OLDEST - 1 - i,
                f"agent{i + 1}",
            )
        )
    for j in range(count - tops):
        parent = j % tops
        number = j // tops + 1
        city = agents[parent].city if rng.random() < 0.6 else rng.randrange(len(V.CITIES))
        name = f"{V.CITIES[city][0]}{_brand(rng)}{rng.choice(V.AGENT_SUFFIXES)}"
        index = tops + j
        agents.append(
            AgentPlan(
                index,
                f"AG{parent + 1:02d}-{number}",
                name,
                parent,
                city,
                _person(rng),
                _phone(rng),
                OLDEST - 10 - j,
                f"agent{index + 1}",
            )
        )
    return agents


def _unit(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``key`` (a hash, not the plan's random stream: adding coordinates
    changed no other draw of the demo)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def store_point(city: str, key: str) -> tuple[Decimal, Decimal]:
    """Where store ``key`` is: within about 8 km of its city's centre (WGS-84, six places)."""
    lat, lon = V.CITY_CENTRES[city]
    return (
        Decimal(f"{lat + (_unit(key, 'lat') - 0.5) * 0.14:.6f}"),
        Decimal(f"{lon + (_unit(key, 'lon') - 0.5) * 0.16:.6f}"),
    )


def near(latitude: Decimal, longitude: Decimal, key: str) -> dict[str, float]:
    """A device's reported position within about 100 m of its store, with the fix's accuracy."""
    return {
        "lat": round(float(latitude) + (_unit(key, "dlat") - 0.5) * 0.0018, 6),
        "lon": round(float(longitude) + (_unit(key, "dlon") - 0.5) * 0.0021, 6),
        "accuracy_m": float(5 + round(_unit(key, "acc") * 25)),
    }


def _plan_merchants(rng: random.Random, count: int, agents: list[AgentPlan]) -> list[MerchantPlan]:
    agent_weights = {a.index: rng.uniform(0.5, 1.5) * (0.6 if a.parent is None else 1.0) for a in agents}
    serials: dict[tuple[str, str], int] = {}
    merchants = []
    for i in range(count):
        agent = agents[_pick(rng, agent_weights)]
        city = agent.city if rng.random() < 0.8 else rng.randrange(len(V.CITIES))
        city_name, area, districts = V.CITIES[city]
        mcc = _pick(rng, V.MCC_WEIGHTS)
        words, industry = V.MCCS[mcc]
        enterprise = rng.random() < 0.3
        owner = _person(rng)
        if enterprise:
            brand = _brand(rng)
            name = f"{brand}{rng.choice(words)}"
            legal = f"{city_name}{brand}{industry}有限公司"
            stores = rng.choices((1, 2, 3), weights=(30, 40, 30))[0]
            weight = rng.uniform(3, 7) + stores
        else:
            prefix = rng.choice((owner[0] + "记", owner[0] + "姐", *V.SHOP_PREFIXES))
            name = f"{prefix}{rng.choice(words)}"
            legal = owner
            stores = 1 if rng.random() < 0.8 else 2
            weight = rng.uniform(1, 2.5)
        serial = serials[(area, mcc)] = serials.get((area, mcc), 0) + 1
        mid = f"898{area}{mcc}{serial:04d}"
        store_plans = []
        for s in range(stores):
            district = rng.choice(districts)
            road = rng.choice(V.ROADS)
            store_name = name if stores == 1 else f"{name}（{district}店）"
            address = f"{city_name}市{district}区{road}路{rng.randrange(1, 999)}号"
            code = f"S{s + 1:02d}"
            latitude, longitude = store_point(city_name, f"{mid}/{code}")
            store_plans.append(StorePlan(code, store_name, city_name, address, latitude, longitude))
        merchants.append(
            MerchantPlan(
                i,
                mid,
                "enterprise" if enterprise else "individual",
                name,
                legal,
                mcc,
                agent.index,
                city,
                owner if not enterprise else _person(rng),
                _phone(rng),
                f"merchant{i + 1:04d}@example.com",
                store_plans,
                weight,
            )
        )
    return merchants


def _path(rng: random.Random, final: Status) -> tuple[list[Command], Status]:
    """The commands from in_stock to ``final`` (with the detours real fleets take) and, for blocked
    terminals, the state they were lost in."""
    active = [C.ALLOCATE, C.SHIP, C.BIND, C.ACTIVATE]
    if rng.random() < 0.15:
        active += [C.SUSPEND, C.RESUME]
    if final == S.IN_STOCK:
        roll = rng.random()
        if roll < 0.85:
            return [], final
        if roll < 0.9:
            return [C.ALLOCATE, C.PULL_BACK], final
        return [*active, C.DEACTIVATE, C.DEREGISTER, C.RECEIVE_RETURN, C.REFURBISH], final
    if final == S.ALLOCATED:
        return [C.ALLOCATE], final
    if final == S.SHIPPED:
        return [C.ALLOCATE, C.SHIP], final
    if final == S.BOUND:
        return [C.ALLOCATE, C.SHIP, C.BIND], final
    if final == S.ACTIVE:
        return active + ([C.DEACTIVATE, C.REACTIVATE] if rng.random() < 0.05 else []), final
    if final == S.SUSPENDED:
        return [C.ALLOCATE, C.SHIP, C.BIND, C.ACTIVATE, C.SUSPEND], final
    if final == S.DEACTIVATED:
        return [*active, C.DEACTIVATE], final
    if final == S.DEREGISTERED:
        return [*active, C.DEACTIVATE, C.DEREGISTER], final
    if final == S.RETURNED:
        return [*active, C.DEACTIVATE, C.DEREGISTER, C.RECEIVE_RETURN], final
    if final == S.SCRAPPED:
        return [*active, C.DEACTIVATE, C.DEREGISTER, C.RECEIVE_RETURN, C.SCRAP], final
    lost_in = _pick(
        rng, {S.IN_STOCK: 8, S.ALLOCATED: 8, S.SHIPPED: 10, S.ACTIVE: 64, S.SUSPENDED: 5, S.DEACTIVATED: 5}
    )
    before, _ = _path(rng, lost_in) if lost_in != S.IN_STOCK else ([], lost_in)
    return [*before, C.REPORT_LOST], final


def _last_ago(rng: random.Random, final: Status, number: int) -> int:
    """Days ago of the last command. ``number`` counts the terminals planned with this final state."""
    if final == S.DEACTIVATED:  # most within the 90-day reactivation window, one in seven past it
        return rng.randint(95, 300) if number % 7 == 3 else rng.randint(1, 85)
    low, high = {
        S.IN_STOCK: (1, 300),
        S.ALLOCATED: (1, 120),
        S.SHIPPED: (1, 10),
        S.BOUND: (1, 14),
        S.ACTIVE: (1, 600),
        S.SUSPENDED: (1, 60),
        S.RETURNED: (1, 60),
    }.get(final, (1, 400))
    return rng.randint(low, high)


def _schedule(rng: random.Random, commands: list[Command], last_ago: int) -> tuple[int, list[int]]:
    """Days ago of the delivery and of each command, going back from ``last_ago``; squeezed when the
    history would start before the first delivery."""
    gaps = [rng.randint(*GAPS[c]) for c in commands]  # gap before each command
    minimum = [0 if c == C.ACTIVATE else 1 for c in commands]
    allowed = FIRST_LOT - last_ago
    if sum(gaps) > allowed:
        scale = allowed / sum(gaps)
        gaps = [max(m, int(g * scale)) for g, m in zip(gaps, minimum, strict=True)]
    agos = [last_ago]
    for gap in reversed(gaps[1:]):
        agos.append(agos[-1] + gap)
    agos.reverse()
    imported = agos[0] + gaps[0]
    lot = FIRST_LOT - LOT_EVERY * ((FIRST_LOT - imported) // LOT_EVERY)  # the delivery on or before
    return lot, agos


def _expiry(rng: random.Random, today: date, final: Status) -> date:
    if final in {S.DEACTIVATED, S.DEREGISTERED, S.RETURNED, S.SCRAPPED, S.BLOCKED}:
        return today + timedelta(days=rng.randint(-300, 400))
    if rng.random() < 0.1:  # a visible share expires within the next 30 days
        return today + timedelta(days=rng.randint(1, 30))
    return today + timedelta(days=rng.randint(31, 730))


def make_plan(*, agents: int, merchants: int, terminals: int, seed: int, today: date) -> Plan:
    if agents < 2 or merchants < 1 or terminals < len(Status):
        raise ValueError(f"the demo needs at least 2 agents, 1 merchant and {len(Status)} terminals")
    rng = random.Random(seed)
    agent_plans = _plan_agents(rng, agents)
    merchant_plans = _plan_merchants(rng, merchants, agent_plans)
    pick_merchant = _Picker({m.index: m.weight for m in merchant_plans})
    signed = {a.index: 1 for a in agent_plans}
    for m in merchant_plans:
        signed[m.agent] += 1
    pick_agent = _Picker(signed)
    pick_model = _Picker({i: m[7] for i, m in enumerate(V.TERMINAL_MODELS)})
    used: dict[int, set[int]] = {}
    finals = list(Status) + [_pick(rng, STATE_WEIGHTS) for _ in range(terminals - len(Status))]
    never_moved_lots = [
        FIRST_LOT - LOT_EVERY * k for k in range(FIRST_LOT // LOT_EVERY) if FIRST_LOT - LOT_EVERY * k <= 400
    ]

    plans: list[TerminalPlan] = []
    seen: Counter[Status] = Counter()
    for index, final in enumerate(finals):
        model = pick_model(rng)
        _code, _maker, _name, _kind, capabilities, prefix, firmwares, _weight = V.TERMINAL_MODELS[model]
        numbers = used.setdefault(model, set())
        number = rng.randrange(10**7)
        while number in numbers:
            number = rng.randrange(10**7)
        numbers.add(number)
        sn = f"{prefix}{number:07d}"
        iccid = ""
        if "cellular" in capabilities:
            operator = rng.choice(("00", "01", "11"))
            iccid = f"8986{operator}{rng.randrange(10**6):06d}{index:08d}"
        commands, _lost_in = _path(rng, final)
        seen[final] += 1
        if commands:
            lot, agos = _schedule(rng, commands, _last_ago(rng, final, seen[final]))
        else:
            lot, agos = rng.choice(never_moved_lots), []
        steps: list[Step] = []
        for command, ago in zip(commands, agos, strict=True):
            step = Step(command, ago)
            if command in REASONS:
                step.reason = _pick(rng, REASONS[command])
            if command == C.DEREGISTER:
                deactivation = next(s for s in reversed(steps) if s.command == C.DEACTIVATE)
                step.reason = deactivation.reason
            if command in {C.DEACTIVATE, C.DEREGISTER} and (step.reason == "other" or rng.random() < 0.3):
                step.note = NOTES[step.reason]
            if command == C.SHIP:
                carrier = rng.choice(V.CARRIERS)
                step.extra = {
                    "carrier": carrier,
                    "tracking_no": f"{_tracking_prefix(carrier)}{rng.randrange(10**12):012d}",
                }
            steps.append(step)
        plan = TerminalPlan(
            index=index,
            sn=sn,
            model=model,
            iccid=iccid,
            expires_on=_expiry(rng, today, final),
            firmware=rng.choice(firmwares),
            final=final,
            lot=lot,
            steps=steps,
        )
        issued = [s.command for s in steps]
        if C.BIND in issued:
            merchant = merchant_plans[pick_merchant(rng)]
            plan.merchant = merchant.index
            plan.agent = merchant.agent
            plan.store = rng.randrange(len(merchant.stores))
            merchant.terminals += 1
        elif C.ALLOCATE in issued:
            plan.agent = pick_agent(rng)
        suspension = next((s for s in steps if s.command == C.SUSPEND and s.reason == "expiry"), None)
        if suspension is not None and final == S.SUSPENDED:
            plan.expires_on = today - timedelta(days=suspension.ago + 15)  # expired, grace period over
        plan.heartbeat_minutes = _heartbeat(rng, final, steps)
        plans.append(plan)

    _date_merchants(rng, merchant_plans, agent_plans, plans)
    usernames = _merchant_users(merchant_plans, agent_plans)
    lots = sorted({p.lot for p in plans}, reverse=True)
    return Plan(today, seed, agent_plans, merchant_plans, plans, lots, usernames)


def _tracking_prefix(carrier: str) -> str:
    return {"顺丰速运": "SF", "京东物流": "JDX", "中通快递": "75", "圆通速递": "YT", "EMS": "E"}[carrier]


def _heartbeat(rng: random.Random, final: Status, steps: list[Step]) -> int | None:
    """Minutes before today's midnight of the last heartbeat: recent for most active terminals,
    stale for some (a heartbeat gap to look into), around the stop for stopped ones."""
    if final == S.ACTIVE:
        if rng.random() < 0.9:
            return rng.randint(1, 2 * 24 * 60)
        return rng.randint(3 * 24 * 60, 30 * 24 * 60)
    if final in {S.SUSPENDED, S.DEACTIVATED, S.BLOCKED} and steps:
        return steps[-1].ago * 24 * 60 + rng.randint(0, 600)
    return None


def _date_merchants(
    rng: random.Random, merchants: list[MerchantPlan], agents: list[AgentPlan], terminals: list[TerminalPlan]
) -> None:
    """A merchant is created (and its stores opened) before its first terminal is bound."""
    first_bind: dict[int, int] = {}
    for plan in terminals:
        for step in plan.steps:
            if step.command == C.BIND and plan.merchant is not None:
                first_bind[plan.merchant] = max(first_bind.get(plan.merchant, 0), step.ago)
    for merchant in merchants:
        agent_created = agents[merchant.agent].created
        if merchant.index in first_bind:
            merchant.created = min(first_bind[merchant.index] + rng.randint(1, 30), agent_created - 1)
        else:
            merchant.created = rng.randint(1, agent_created - 1)


def _merchant_users(merchants: list[MerchantPlan], agents: list[AgentPlan]) -> list[str]:
    """merchant1 is a merchant of agent1's subtree (the one with most terminals); merchant2.. come
    from the other top-level agents' subtrees, then from anywhere."""
    tops = [a for a in agents if a.parent is None]

    def top_of(agent: AgentPlan) -> int:
        return agent.index if agent.parent is None else agent.parent

    chosen: list[MerchantPlan] = []
    for top in tops[:5]:
        candidates = [m for m in merchants if top_of(agents[m.agent]) == top.index and m not in chosen]
        if candidates:
            chosen.append(max(candidates, key=lambda m: (m.terminals, -m.index)))
    for merchant in sorted(merchants, key=lambda m: (-m.terminals, m.index)):
        if len(chosen) >= 5:
            break
        if merchant not in chosen:
            chosen.append(merchant)
    names = []
    for number, merchant in enumerate(chosen, start=1):
        merchant.username = f"merchant{number}"
        names.append(merchant.username)
    return names


def replay(plan: TerminalPlan) -> Status:
    """The state the steps lead to (a check that the plan follows the transition table)."""
    state = S.IN_STOCK
    for step in plan.steps:
        target = TRANSITIONS.get((state, step.command))
        if target is None:
            raise ValueError(f"{plan.sn}: {step.command} is not allowed from {state}")
        state = target
    return state
