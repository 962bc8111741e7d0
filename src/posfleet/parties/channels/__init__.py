"""Payment channels (支付渠道) a terminal is bound to, and what a channel answers. Pure: no ORM, no HTTP.

A channel binding (渠道绑定) is a terminal's enrolment in one payment channel; closure (注销) must unbind
every one "following each platform's procedure" (DOMAIN.md). Each channel has its own adapter
(``parties.channels.adapters``) speaking its own wire format; all of them answer with an ``Answer`` whose
``outcome`` the service (``parties.services.channel_unbind``) turns into done, refused or retry.

The binding's life: ``bound`` → ``unbinding`` (an unbind was sent: its answer is awaited or unsure) →
``unbound`` (final). A refusal by the channel puts it back to ``bound``: the channel still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Channel(TextChoices):
    UNIONPAY_CARD = "unionpay_card", _("UnionPay card")  # 银联卡
    UNIONPAY_QR = "unionpay_qr", _("UnionPay QR")  # 银联二维码
    ALIPAY = "alipay", _("Alipay")  # 支付宝
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")  # 微信支付
    JD_PAY = "jd_pay", _("JD Pay")  # 京东支付


class BindingStatus(TextChoices):
    BOUND = "bound", pgettext_lazy("channel binding status", "bound")  # the channel holds it
    # An unbind was sent; its answer is awaited, failed or unsure (asked again until resolved).
    UNBINDING = "unbinding", pgettext_lazy("channel binding status", "unbinding")
    UNBOUND = "unbound", pgettext_lazy("channel binding status", "unbound")  # final


class Outcome(TextChoices):
    """What one call to a channel came to."""

    UNBOUND = "unbound", _("unbound")  # done (unbind), or the channel says it is unbound (status)
    BOUND = "bound", _("still bound")  # status only: the channel still holds the binding
    REFUSED = "refused", _("refused by the channel")  # a business "no": final until a person acts
    FAILED = "failed", _("failed")  # an error answer or no connection: nothing was done, try later
    # A timeout or a lost answer: the channel may or may not have done it. Never assumed either
    # way: resolved by asking the channel (``status``).
    UNKNOWN = "unknown", _("no answer")


MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Answer:
    """A channel's answer to one call, in the channel's own words (``code``, ``message``) and ours
    (``outcome``). ``reference`` is the channel's id of the operation, when it gives one."""

    outcome: Outcome
    operation: str  # "unbind" or "status"
    at: datetime
    code: str = ""
    message: str = ""
    reference: str = ""
    http_status: int | None = None
    retry_after: timedelta | None = None  # the channel's own hint (an HTTP Retry-After), if any

    def evidence(self) -> dict[str, Any]:
        """The answer as JSON, kept on the binding (``evidence``) and shown to people."""
        return {
            "operation": self.operation,
            "answer": self.outcome.value,  # "outcome" is the caller's word (done, refused, retry)
            "code": self.code,
            "message": self.message[:MESSAGE_LIMIT],
            "reference": self.reference,
            "http_status": self.http_status,
            "at": self.at.isoformat(),
        }
