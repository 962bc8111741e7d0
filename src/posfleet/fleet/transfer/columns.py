"""The columns of terminal files: canonical names, header aliases (English and Chinese), limits."""

from __future__ import annotations

import re

# What an import reads. ``sn`` and ``model`` are required; the others may be absent or empty.
IMPORT_COLUMNS = ("sn", "model", "sim_iccid", "service_expires_on", "firmware_version")
REQUIRED_COLUMNS = ("sn", "model")

# What an export writes, in this order (model = terminal-model code, agent = agent code,
# merchant = MID, store = store code, status = status slug).
EXPORT_COLUMNS = (
    "sn",
    "tid",
    "status",
    "model",
    "agent",
    "merchant",
    "store",
    "sim_iccid",
    "service_expires_on",
    "firmware_version",
    "status_reason",
    "status_changed_at",
)

# Columns of an export that an import accepts and ignores (the import registers devices into stock;
# it never sets who holds them). ``status`` is checked: only empty or in_stock rows are importable.
IGNORED_ON_IMPORT = ("tid", "agent", "merchant", "store", "status_reason", "status_changed_at")
STATUS_COLUMN = "status"

MAX_LENGTH = {"sn": 32, "model": 40, "sim_iccid": 20, "service_expires_on": 19, "firmware_version": 32}

_ALIASES: dict[str, tuple[str, ...]] = {
    "sn": (
        "sn",
        "serial",
        "serialno",
        "serialnumber",
        "序列号",
        "sn号",
        "终端序列号",
        "设备序列号",
        "机身号",
    ),
    "model": ("model", "modelcode", "terminalmodel", "机型", "机型代码", "机型编码", "型号", "终端型号"),
    "sim_iccid": ("simiccid", "iccid", "sim", "simcard", "sim卡号", "sim卡", "sim卡号iccid", "iccid号"),
    "service_expires_on": (
        "serviceexpireson",
        "serviceexpiry",
        "expireson",
        "expiry",
        "expirydate",
        "服务到期日",
        "服务到期日期",
        "到期日",
        "到期日期",
    ),
    "firmware_version": ("firmwareversion", "firmware", "固件版本", "固件版本号", "固件"),
    "status": ("status", "状态", "终端状态"),
    "tid": ("tid", "终端号"),
    "agent": ("agent", "agentcode", "服务商", "代理商", "服务商编号"),
    "merchant": ("merchant", "mid", "商户号", "商户"),
    "store": ("store", "storecode", "门店", "门店编号"),
    "status_reason": ("statusreason", "状态原因"),
    "status_changed_at": ("statuschangedat", "状态变更时间"),
}
ALIASES: dict[str, str] = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

_HEADER_NOISE = re.compile(r"[\s_\-/()（）:：]+")


def header_key(raw: object) -> str:
    """Header cells compare case-insensitively, ignoring spaces, underscores, dashes and brackets."""
    text = "" if raw is None else str(raw)
    return _HEADER_NOISE.sub("", text.replace("\ufeff", "")).casefold()


def canonical(raw: object) -> str | None:
    return ALIASES.get(header_key(raw))
