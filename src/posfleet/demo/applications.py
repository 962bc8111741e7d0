"""Demo applications in every stage, made through the real services by the people who would (the
agent submits and fulfils, the reviewer decides, a merchant applies for one more terminal), so the
console's application pages, the reviewer's queue and the notices have something true to show."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from django.db.models import Count

from posfleet.enrollment.kyc import CREDIT_CODE_CHARS, CREDIT_CODE_WEIGHTS, ID_CHECK, ID_WEIGHTS, Upload
from posfleet.enrollment.models import ApplicationStatus
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.fleet.models import Terminal
from posfleet.fleet.states import Status
from posfleet.iam.models import Role, User
from posfleet.parties.models import Agent, Merchant
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError
from posfleet.testing.applications import PDF, approve, png

# The stage each demo application is walked to, in order; the shops' names are made up.
STAGES = (
    ("submitted", "鲜果时光水果店", "北京"),
    ("submitted", "老街面馆", "成都"),
    ("needs_info", "晨光文具店", "杭州"),
    ("rejected", "星河电玩城", "深圳"),
    ("approved", "一品鲜海鲜酒楼", "广州"),
    ("allocated", "绿野花艺", "南京"),
    ("shipped", "悦读书屋", "武汉"),
    ("delivered", "邻里便利店", "西安"),
    ("completed", "好味道烘焙坊", "上海"),
)
ORDER = ("submitted", "approved", "allocated", "shipped", "delivered", "completed")
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋")


def _id_number(rng: random.Random) -> str:
    body = f"{rng.choice(['110105', '310104', '440305', '510107'])}{rng.randint(1960, 2000)}"
    body += f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def _credit_code(rng: random.Random) -> str:
    body = "9" + "1" + "".join(rng.choice("0123456789") for _ in range(6))
    body += "".join(rng.choice(CREDIT_CODE_CHARS) for _ in range(9))
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(body, CREDIT_CODE_WEIGHTS, strict=True))
    return body + CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def _request(rng: random.Random, shop: str, city: str, kind: str, count: int) -> apps.Request:
    person = rng.choice(SURNAMES) + rng.choice(GIVEN)
    applicant = apps.Applicant(
        merchant_kind="enterprise",
        shop_name=shop,
        legal_name=f"{city}{shop}有限公司",
        mcc=rng.choice(["5411", "5812", "5943", "5992", "5462"]),
        contact_name=person,
        contact_phone=f"13{rng.randint(100000000, 999999999)}",
        contact_email="",
        store_name=shop,
        city=city,
        address=f"{city}市{rng.choice(['人民路', '解放路', '中山路', '建设路'])} {rng.randint(1, 300)} 号",
    )
    kyc = {
        "legal_person": person,
        "id_number": _id_number(rng),
        "licence_no": _credit_code(rng),
        "bank_name": rng.choice(["中国工商银行", "中国建设银行", "招商银行", "中国银行"]) + f" {city}分行",
        "bank_account": "62" + "".join(rng.choice("0123456789") for _ in range(17)),
        "account_holder": f"{city}{shop}有限公司",
    }
    documents = [
        Upload("id_card", "身份证.png", png()),
        Upload("business_licence", "营业执照.pdf", PDF),
        Upload("bank_proof", "开户许可证.pdf", PDF),
    ]
    return apps.Request(
        applicant=applicant,
        terminal_kind=kind,
        terminal_count=count,
        accept_offer=True,
        kyc=kyc,
        documents=documents,
    )


def _stocked_agent() -> tuple[Agent, str, int] | None:
    """The agent with the most free terminals of one kind in its stock, that kind and how many."""
    best = (
        Terminal.objects.filter(status=Status.ALLOCATED, merchant__isnull=True, agent__isnull=False)
        .values("agent_id", "model__kind")
        .annotate(n=Count("id"))
        .order_by("-n", "agent_id")
        .first()
    )
    if best is None:
        return None
    return Agent.objects.get(pk=best["agent_id"]), best["model__kind"], best["n"]


def build_applications(*, seed: int = 7, write: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Applications in every stage; returns how many are in each status."""
    rng = random.Random(seed)
    found = _stocked_agent()
    reviewer = User.objects.filter(role=Role.REVIEWER, is_active=True).order_by("pk").first()
    if found is None or reviewer is None:
        write("  no agent holds stock (or no reviewer): no demo applications")
        return {}
    agent, kind, free = found
    agent_user = User.objects.filter(organisation=agent.organisation, role=Role.AGENT, is_active=True).first()
    if agent_user is None:
        return {}
    by_agent = Actor.for_user(agent_user, request_id="demo")
    by_reviewer = Actor.for_user(reviewer, request_id="demo")
    needed = sum(1 for stage, *_ in STAGES if stage in ORDER[2:])
    for stage, shop, city in STAGES:
        count = 1 if needed > free else rng.choice([1, 1, 2])
        try:
            application = apps.application_submit(
                actor=by_agent, request=_request(rng, shop, city, kind, count)
            )
            number = application.number
            if stage == "needs_info":
                apps.application_review(
                    actor=by_reviewer,
                    number=number,
                    decision="needs_info",
                    reasons=["licence_unreadable"],
                    reason=(
                        "营业执照照片不清晰，请重新上传。"
                        "The business licence photo is unreadable; upload it again."
                    ),
                )
                continue
            if stage == "rejected":
                apps.application_review(
                    actor=by_reviewer,
                    number=number,
                    decision="reject",
                    reasons=["scope_mismatch"],
                    reason="经营范围与 MCC 不符。The business scope does not match the MCC.",
                )
                continue
            for step in ORDER[1 : ORDER.index(stage) + 1]:
                if step == "approved":
                    approve(by_reviewer, number, "资料齐全")
                elif step == "allocated":
                    fulfilment.application_allocate(actor=by_agent, number=number)
                elif step == "shipped":
                    fulfilment.application_ship(
                        actor=by_agent,
                        number=number,
                        carrier="顺丰速运",
                        tracking_no=f"SF{rng.randint(10**11, 10**12)}",
                    )
                elif step == "delivered":
                    fulfilment.application_deliver(actor=by_agent, number=number)
                elif step == "completed":
                    for line in application.lines.select_related("terminal"):
                        fulfilment.application_install(actor=by_agent, number=number, sn=line.terminal.sn)
                        fulfilment.application_test(
                            actor=by_agent,
                            number=number,
                            sn=line.terminal.sn,
                            checks=dict.fromkeys(fulfilment.CHECKS, True),
                        )
        except DomainError as exc:  # e.g. the stock ran out: keep what was made, say why
            write(f"  demo application ({stage}) stopped: {exc.detail}")
    _merchant_asks_for_more(rng)
    statuses = Counter(apps.Application.objects.values_list("status", flat=True))
    return {s.value: statuses.get(s.value, 0) for s in ApplicationStatus}


def _merchant_asks_for_more(rng: random.Random) -> None:
    """A merchant with a login applies for one more terminal for a second shop (self-service)."""
    user = User.objects.filter(role=Role.MERCHANT, is_active=True).order_by("pk").first()
    if user is None or user.organisation_id is None:
        return
    merchant = Merchant.objects.filter(organisation_id=user.organisation_id).first()
    if merchant is None or merchant.status != Merchant.Status.ACTIVE:
        return
    applicant = apps.Applicant(
        contact_name=merchant.contact_name or "店长",
        contact_phone=merchant.contact_phone or "13900001111",
        store_name=f"{merchant.name} 二店",
        city="上海",
        address=f"上海市南京西路 {rng.randint(1, 999)} 号",
    )
    request = apps.Request(applicant=applicant, terminal_kind="smart", terminal_count=1, accept_offer=True)
    try:
        apps.application_submit(actor=Actor.for_user(user, request_id="demo"), request=request)
    except DomainError:
        return
