"""Applications for tests: valid KYC values, small real files of each accepted type, and one call that
walks an application to any stage through the real services."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from posfleet.billing.defaults import ensure_standard_plan
from posfleet.enrollment import review
from posfleet.enrollment.kyc import Upload
from posfleet.enrollment.models import Application, KycDocument
from posfleet.enrollment.services import applications as apps
from posfleet.enrollment.services import fulfilment
from posfleet.fleet.states import Status
from posfleet.platform.context import Actor
from posfleet.testing.personas import World, make_terminal

# The standard's own examples (GB 11643 ID number, GB 32100 credit code): valid check characters.
KYC = {
    "legal_person": "王小明",
    "id_number": "11010519491231002X",
    "licence_no": "91350100M000100Y43",
    "bank_name": "中国工商银行 北京分行",
    "bank_account": "6222020200112233445",
    "account_holder": "王小明",
}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def documents(enterprise: bool = True) -> list[Upload]:
    docs = [Upload("id_card", "身份证.png", png()), Upload("bank_proof", "开户许可证.pdf", PDF)]
    if enterprise:
        docs.append(Upload("business_licence", "营业执照.pdf", PDF))
    return docs


APPLICANT = apps.Applicant(
    merchant_kind="enterprise",
    shop_name="小明便利店",
    legal_name="小明便利店有限公司",
    mcc="5411",
    contact_name="李经理",
    contact_phone="13800138000",
    contact_email="xiaoming@example.com",
    store_name="小明便利店 朝阳店",
    city="北京",
    address="朝阳区建国路 1 号",
)


def new_merchant_request(**changes: Any) -> apps.Request:
    values: dict[str, Any] = {
        "applicant": APPLICANT,
        "terminal_kind": "smart",
        "terminal_count": 2,
        "accept_offer": True,
        "kyc": dict(KYC),
        "documents": documents(),
    }
    values.update(changes)
    ensure_standard_plan()
    return apps.Request(**values)


# A merchant's second store: what it gives when it applies for more terminals (``more_terminals_request``).
SECOND_STORE = apps.Applicant(
    contact_name="Ms Chen",
    contact_phone="021-5555-0101",
    store_name="Second shop",
    city="上海",
    address="1 Road",
)


def more_terminals_request(**changes: Any) -> apps.Request:
    """An existing merchant's application for one terminal at another store of its own: no KYC (it
    passed when it joined), no documents unless given."""
    values: dict[str, Any] = {"applicant": SECOND_STORE, "kyc": None, "documents": [], "terminal_count": 1}
    return new_merchant_request(**{**values, **changes})


def stock(world: World, count: int, prefix: str = "SN-AP") -> list[str]:
    """``count`` smart terminals in agent A's stock."""
    sns = [f"{prefix}-{i:04d}" for i in range(1, count + 1)]
    for sn in sns:
        make_terminal(world, sn, Status.ALLOCATED, agent=world.agent_a)
    return sns


def every_check(number: str) -> list[str]:
    """Every checklist item of the application's current documents: what a reviewer ticks before
    approving (``enrollment/review.py``)."""
    kinds = KycDocument.objects.filter(application__number=number, replaced=False).values_list(
        "kind", flat=True
    )
    return review.items_of(kinds)


def approve(actor: Actor, number: str, note: str = "KYC checked") -> Application:
    """Approve as ``actor`` with the whole checklist ticked."""
    return apps.application_review(
        actor=actor, number=number, decision="approve", reason=note, checked=every_check(number)
    )


STAGES = ("submitted", "approved", "allocated", "shipped", "delivered", "completed")


def walk(world: World, actor_of: Any, stage: str, request: apps.Request | None = None) -> Application:
    """Submit as agent A's user and move the application on to ``stage`` as the people who would."""
    agent = actor_of(world.user("agent_a"))
    reviewer = actor_of(world.user("reviewer"))
    application = apps.application_submit(actor=agent, request=request or new_merchant_request())
    number = application.number
    steps = STAGES[1 : STAGES.index(stage) + 1]
    for step in steps:
        if step == "approved":
            approve(reviewer, number)
        elif step == "allocated":
            fulfilment.application_allocate(actor=agent, number=number)
        elif step == "shipped":
            fulfilment.application_ship(
                actor=agent, number=number, carrier="SF Express", tracking_no="SF1234567890"
            )
        elif step == "delivered":
            fulfilment.application_deliver(actor=agent, number=number)
        elif step == "completed":
            for line in Application.objects.get(number=number).lines.select_related("terminal"):
                fulfilment.application_install(actor=agent, number=number, sn=line.terminal.sn)
                fulfilment.application_test(
                    actor=agent,
                    number=number,
                    sn=line.terminal.sn,
                    checks=dict.fromkeys(fulfilment.CHECKS, True),
                )
    return Application.objects.get(number=number)


SYSTEM = Actor.system("test-applications")
