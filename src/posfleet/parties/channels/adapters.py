"""One adapter per payment channel: each speaks its channel's wire format over HTTP and answers in ours.

Every adapter offers ``unbind(binding, idempotency_key)`` and ``status(binding)`` and returns an
``Answer`` (``parties.channels``). What the transport did decides first, the channel's words second:

- no connection made (refused, connect timeout): ``failed`` — nothing reached the channel;
- a read timeout, a connection lost after sending, a 504, an answer that cannot be read, or a code the
  channel documents as "in progress, ask again": ``unknown`` — the channel may have done it, so the
  service asks it again (``status``) and never assumes either way;
- another 5xx, a 429 or the channel's "system busy": ``failed`` — try again later;
- the channel's success (or "already unbound"): ``unbound``;
- any other business error or 4xx: ``refused``, with the channel's code and message — a person acts.

The idempotency key travels in each channel's own request-number field (``orderId``, ``reqSn``,
``out_request_no``, ``requestNo``): a channel that sees a key again answers as it did the first time,
so an unbind sent again after an unknown answer is safe.

The base URL is ``settings.POSFLEET_CHANNELS_URL`` (``posfleet simulate channels`` serves one on
loopback), the timeout ``settings.POSFLEET_CHANNELS_TIMEOUT``. Log lines name the channel, the
operation, the outcome and the channel's code only: never the channel's ids or messages (they may
carry a merchant's personal data) nor any credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl

import requests
import urllib3.exceptions
from django.conf import settings

from posfleet.parties.channels import MESSAGE_LIMIT, Answer, Channel, Outcome
from posfleet.platform.clock import now

logger = logging.getLogger(__name__)

# (outcome, the channel's code, its message, its reference of the operation)
Reading = tuple[Outcome, str, str, str]


class BindingRef(Protocol):
    """What an adapter needs of a binding (a ``ChannelBinding`` row has it)."""

    @property
    def channel_merchant_id(self) -> str: ...


class UnreadableAnswer(ValueError):
    """The channel answered something its format does not allow."""


class ChannelAdapter:
    channel: ClassVar[Channel]

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url or settings.POSFLEET_CHANNELS_URL).rstrip("/")
        self.timeout = float(timeout if timeout is not None else settings.POSFLEET_CHANNELS_TIMEOUT)

    # -- what each channel defines -------------------------------------------------------------------

    def unbind_request(self, channel_merchant_id: str, key: str) -> tuple[str, dict[str, Any]]:
        """The path and the ``requests`` body arguments (``data=`` or ``json=``) of an unbind."""
        raise NotImplementedError

    def status_request(self, channel_merchant_id: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read_unbind(self, response: requests.Response) -> Reading:
        raise NotImplementedError

    def read_status(self, response: requests.Response) -> Reading:
        raise NotImplementedError

    # -- the calls -----------------------------------------------------------------------------------

    def unbind(self, binding: BindingRef, idempotency_key: str) -> Answer:
        path, body = self.unbind_request(binding.channel_merchant_id, idempotency_key)
        return self._call("unbind", path, body, self.read_unbind)

    def status(self, binding: BindingRef) -> Answer:
        path, body = self.status_request(binding.channel_merchant_id)
        return self._call("status", path, body, self.read_status)

    def _call(
        self,
        operation: str,
        path: str,
        body: dict[str, Any],
        read: Callable[[requests.Response], Reading],
    ) -> Answer:
        answer = self._answer(operation, path, body, read)
        logger.info(
            "channel %s %s: %s %s", self.channel.value, operation, answer.outcome.value, answer.code or "-"
        )
        return answer

    def _answer(
        self,
        operation: str,
        path: str,
        body: dict[str, Any],
        read: Callable[[requests.Response], Reading],
    ) -> Answer:
        def answer(outcome: Outcome, code: str, message: str = "", **more: Any) -> Answer:
            return Answer(
                outcome=outcome,
                operation=operation,
                at=now(),
                code=code,
                message=message[:MESSAGE_LIMIT],
                **more,
            )

        try:
            with requests.Session() as session:
                # The channel is where the setting says: no proxy from the environment, no redirect.
                session.trust_env = False
                response = session.post(
                    f"{self.base_url}{path}",
                    timeout=(self.timeout, self.timeout),
                    allow_redirects=False,
                    headers={"User-Agent": "posfleet"},
                    **body,
                )
        except requests.ConnectTimeout:
            return answer(Outcome.FAILED, "connect_timeout", "No connection to the channel.")
        except requests.ReadTimeout:
            return answer(Outcome.UNKNOWN, "timeout", "The channel did not answer in time.")
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                return answer(Outcome.FAILED, "connection_refused", "No connection to the channel.")
            return answer(Outcome.UNKNOWN, "connection_lost", "The connection was lost before the answer.")
        except requests.RequestException as exc:
            return answer(Outcome.UNKNOWN, "transport_error", type(exc).__name__)

        status = response.status_code
        retry_after = _retry_after(response.headers)
        if status == 504:  # a gateway gave up waiting: the channel behind it may have done it
            return answer(Outcome.UNKNOWN, "http_504", response.reason or "", http_status=status)
        if status >= 500 or status == 429:
            return answer(
                Outcome.FAILED,
                f"http_{status}",
                response.reason or "",
                http_status=status,
                retry_after=retry_after,
            )
        if status >= 300:
            return answer(Outcome.REFUSED, f"http_{status}", response.reason or "", http_status=status)
        try:
            outcome, code, message, reference = read(response)
        except (ValueError, KeyError, TypeError, AttributeError):
            return answer(Outcome.UNKNOWN, "unreadable_answer", "The channel's answer could not be read.")
        return answer(
            outcome, code, message, reference=reference, http_status=status, retry_after=retry_after
        )


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the request never reached the channel (refused, no route, unknown name), as opposed
    to a connection lost after the request went out."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


def _retry_after(headers: Mapping[str, str]) -> timedelta | None:
    value = headers.get("Retry-After", "")
    return timedelta(seconds=int(value)) if value.isdigit() else None


def _json(response: requests.Response) -> dict[str, Any]:
    data = response.json()
    if not isinstance(data, dict):
        raise UnreadableAnswer("not an object")
    return data


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise UnreadableAnswer("not a scalar")
    return str(value)


# ---------------------------------------------------------------------------------------------
# UnionPay (银联): form-encoded both ways, ``respCode`` "00" for success. 03, 04 and 05 mean "being
# processed, query later" in UnionPay's words: unknown, not failed.


class UnionPayAdapter(ChannelAdapter):
    prefix: ClassVar[str]
    merchant_field: ClassVar[str]
    key_field: ClassVar[str]
    SUCCESS = "00"
    ALREADY_UNBOUND = frozenset({"61"})
    IN_PROGRESS = frozenset({"03", "04", "05"})
    BUSY = frozenset({"94", "96"})

    def unbind_request(self, channel_merchant_id: str, key: str) -> tuple[str, dict[str, Any]]:
        form = {"txnType": "unbind", self.merchant_field: channel_merchant_id, self.key_field: key}
        return f"{self.prefix}/unbind", {"data": form}

    def status_request(self, channel_merchant_id: str) -> tuple[str, dict[str, Any]]:
        return f"{self.prefix}/query", {
            "data": {"txnType": "query", self.merchant_field: channel_merchant_id}
        }

    @staticmethod
    def _form(response: requests.Response) -> dict[str, str]:
        form = dict(parse_qsl(response.text, keep_blank_values=True, strict_parsing=True))
        if "respCode" not in form:
            raise UnreadableAnswer("no respCode")
        return form

    def _common(self, code: str) -> Outcome | None:
        if code in self.IN_PROGRESS:
            return Outcome.UNKNOWN
        if code in self.BUSY:
            return Outcome.FAILED
        return None

    def read_unbind(self, response: requests.Response) -> Reading:
        form = self._form(response)
        code, message = form["respCode"], form.get("respMsg", "")
        if code == self.SUCCESS or code in self.ALREADY_UNBOUND:
            return Outcome.UNBOUND, code, message, form.get("queryId", "")
        return self._common(code) or Outcome.REFUSED, code, message, ""

    def read_status(self, response: requests.Response) -> Reading:
        form = self._form(response)
        code, message = form["respCode"], form.get("respMsg", "")
        if code == self.SUCCESS:
            state = {"unbound": Outcome.UNBOUND, "bound": Outcome.BOUND}[form["bindStatus"]]
            return state, code, message, form.get("queryId", "")
        return self._common(code) or Outcome.REFUSED, code, message, ""


class UnionPayCardAdapter(UnionPayAdapter):
    """UnionPay card acquiring (银联卡): the terminal's merchant id ``merId``, request number ``orderId``."""

    channel = Channel.UNIONPAY_CARD
    prefix = "/unionpay/card"
    merchant_field = "merId"
    key_field = "orderId"


class UnionPayQrAdapter(UnionPayAdapter):
    """UnionPay QR (银联二维码): merchant code ``mchntCd``, request serial ``reqSn``."""

    channel = Channel.UNIONPAY_QR
    prefix = "/unionpay/qr"
    merchant_field = "mchntCd"
    key_field = "reqSn"


# ---------------------------------------------------------------------------------------------
# Alipay (支付宝): one gateway, the method named in the JSON request; the answer wrapped in
# ``<method>_response`` with ``code`` "10000" for success, "20000" service unavailable, "40004" a
# business failure whose ``sub_code`` says why.


class AlipayAdapter(ChannelAdapter):
    channel = Channel.ALIPAY
    GATEWAY = "/alipay/gateway.do"
    UNBIND = "alipay.merchant.terminal.unbind"
    QUERY = "alipay.merchant.terminal.query"

    def unbind_request(self, channel_merchant_id: str, key: str) -> tuple[str, dict[str, Any]]:
        biz = {"merchant_id": channel_merchant_id, "out_request_no": key}
        return self.GATEWAY, {"json": {"method": self.UNBIND, "biz_content": biz}}

    def status_request(self, channel_merchant_id: str) -> tuple[str, dict[str, Any]]:
        biz = {"merchant_id": channel_merchant_id}
        return self.GATEWAY, {"json": {"method": self.QUERY, "biz_content": biz}}

    @staticmethod
    def _body(response: requests.Response, method: str) -> tuple[dict[str, Any], str, str, str]:
        body = _json(response)[method.replace(".", "_") + "_response"]
        if not isinstance(body, dict):
            raise UnreadableAnswer("no response object")
        code, sub_code = _text(body["code"]), _text(body.get("sub_code"))
        message = _text(body.get("sub_msg") or body.get("msg"))
        return body, code, sub_code, message

    @staticmethod
    def _failure(code: str, sub_code: str) -> Outcome:
        if code == "20000":
            return Outcome.FAILED
        if sub_code in {"ACQ.SYSTEM_ERROR", "SYSTEM_ERROR"}:  # "unknown, query it"
            return Outcome.UNKNOWN
        return Outcome.REFUSED

    def read_unbind(self, response: requests.Response) -> Reading:
        body, code, sub_code, message = self._body(response, self.UNBIND)
        if code == "10000" or sub_code == "ALREADY_UNBOUND":
            return Outcome.UNBOUND, sub_code or code, message, _text(body.get("unbind_no"))
        return self._failure(code, sub_code), sub_code or code, message, ""

    def read_status(self, response: requests.Response) -> Reading:
        body, code, sub_code, message = self._body(response, self.QUERY)
        if code == "10000":
            state = {"UNBOUND": Outcome.UNBOUND, "BOUND": Outcome.BOUND}[_text(body["bind_status"])]
            return state, code, message, _text(body.get("unbind_no"))
        return self._failure(code, sub_code), sub_code or code, message, ""


# ---------------------------------------------------------------------------------------------
# WeChat Pay (微信支付): JSON with ``return_code`` (did the call get through) and ``result_code`` (did
# the business succeed), ``err_code`` saying why not; SYSTEMERROR means "unsure, call again".


class WeChatPayAdapter(ChannelAdapter):
    channel = Channel.WECHAT_PAY

    def unbind_request(self, channel_merchant_id: str, key: str) -> tuple[str, dict[str, Any]]:
        return "/wechatpay/merchant/unbind", {
            "json": {"sub_mch_id": channel_merchant_id, "out_request_no": key}
        }

    def status_request(self, channel_merchant_id: str) -> tuple[str, dict[str, Any]]:
        return "/wechatpay/merchant/query", {"json": {"sub_mch_id": channel_merchant_id}}

    @staticmethod
    def _read(response: requests.Response) -> tuple[dict[str, Any], Reading | None]:
        body = _json(response)
        if _text(body["return_code"]) != "SUCCESS":
            return body, (
                Outcome.FAILED,
                "return_" + _text(body["return_code"]),
                _text(body.get("return_msg")),
                "",
            )
        if _text(body["result_code"]) == "SUCCESS":
            return body, None
        err = _text(body.get("err_code"))
        message = _text(body.get("err_code_des"))
        if err == "ALREADY_UNBOUND":
            return body, (Outcome.UNBOUND, err, message, "")
        if err == "SYSTEMERROR":
            return body, (Outcome.UNKNOWN, err, message, "")
        if err == "FREQUENCY_LIMITED":
            return body, (Outcome.FAILED, err, message, "")
        return body, (Outcome.REFUSED, err, message, "")

    def read_unbind(self, response: requests.Response) -> Reading:
        body, failure = self._read(response)
        return failure or (Outcome.UNBOUND, "SUCCESS", "", _text(body.get("unbind_id")))

    def read_status(self, response: requests.Response) -> Reading:
        body, failure = self._read(response)
        if failure is not None:
            # On a query "already unbound" cannot be an answer: anything not SUCCESS is not a state.
            return failure if failure[0] != Outcome.UNBOUND else (Outcome.UNKNOWN, *failure[1:])
        state = {"UNBOUND": Outcome.UNBOUND, "BOUND": Outcome.BOUND}[_text(body["bind_state"])]
        return state, "SUCCESS", "", _text(body.get("unbind_id"))


# ---------------------------------------------------------------------------------------------
# JD Pay (京东支付): JSON with ``resultCode`` "0000" for success, "9999" system busy, "E…" business
# errors; the payload in ``data``.


class JdPayAdapter(ChannelAdapter):
    channel = Channel.JD_PAY
    SUCCESS = "0000"
    ALREADY_UNBOUND = "E0409"
    BUSY = "9999"
    IN_PROGRESS = "0001"  # "accepted, being processed"

    def unbind_request(self, channel_merchant_id: str, key: str) -> tuple[str, dict[str, Any]]:
        return "/jdpay/merchant/terminal/unbind", {
            "json": {"merchantNo": channel_merchant_id, "requestNo": key}
        }

    def status_request(self, channel_merchant_id: str) -> tuple[str, dict[str, Any]]:
        return "/jdpay/merchant/terminal/query", {"json": {"merchantNo": channel_merchant_id}}

    def _failure(self, code: str) -> Outcome:
        if code == self.BUSY:
            return Outcome.FAILED
        if code == self.IN_PROGRESS:
            return Outcome.UNKNOWN
        return Outcome.REFUSED

    def read_unbind(self, response: requests.Response) -> Reading:
        body = _json(response)
        code, message = _text(body["resultCode"]), _text(body.get("resultDesc"))
        if code in {self.SUCCESS, self.ALREADY_UNBOUND}:
            data = body.get("data") or {}
            return Outcome.UNBOUND, code, message, _text(data.get("unbindNo"))
        return self._failure(code), code, message, ""

    def read_status(self, response: requests.Response) -> Reading:
        body = _json(response)
        code, message = _text(body["resultCode"]), _text(body.get("resultDesc"))
        if code == self.SUCCESS:
            data = body["data"]
            state = {"UNBIND": Outcome.UNBOUND, "BIND": Outcome.BOUND}[_text(data["status"])]
            return state, code, message, _text(data.get("unbindNo"))
        return self._failure(code), code, message, ""


ADAPTERS: dict[Channel, type[ChannelAdapter]] = {
    adapter.channel: adapter
    for adapter in (UnionPayCardAdapter, UnionPayQrAdapter, AlipayAdapter, WeChatPayAdapter, JdPayAdapter)
}


def adapter_for(channel: str) -> ChannelAdapter:
    """The adapter of ``channel``, configured from the settings."""
    return ADAPTERS[Channel(channel)]()
