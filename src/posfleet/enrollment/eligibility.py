"""Re-application after closure (重新申请, DOMAIN.md workflow 5): who may have terminals again, and why.

Three parts, kept apart so each can be read and tested on its own (ADR 0015):

* **Policy** — versioned configuration in ``enrollment/policies/eligibility-<n>.json``: the waiting
  period, the look-back window, each factor's weight and scale, the decision thresholds. The version
  in force on a day is the one with the latest ``effective_from`` on or before it, unless
  ``settings.POSFLEET_ELIGIBILITY_POLICY`` pins one. Released files are never edited: a change is a
  new version, so a past decision can be re-explained with the version it used (its digest is kept).
* **Facts** — read from the database once (``merchant_facts``): a fixed handful of queries, every
  transaction figure aggregated in SQL.
* **Decision** — pure (``decide``): gates first (the waiting period must be over, nothing may be
  owed), then a score of 0–100 integer points, the sum of each factor's contribution
  ``weight × share ÷ 1000`` (share in permille from the factor's scale, rounded down, so a
  contribution never exceeds its weight). Every factor and gate carries a precise text for staff and
  a plain one for the merchant, translated when shown.

``assess(merchant, on=…)`` does all three; ``Assessment.as_json()`` / ``Assessment.from_json()``
store a decision with its policy version and rebuild it, texts included, in any language.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from posfleet.audit.selectors import events_about
from posfleet.audit.vocabulary import EventType
from posfleet.billing.models import AccountKind, Transaction, TransactionKind, TransactionStatus
from posfleet.billing.selectors import balances_of
from posfleet.billing.services.contracts import add_months
from posfleet.fleet.models import StatusPeriod, Terminal
from posfleet.fleet.states import DeactivationReason, Status
from posfleet.platform.clock import today
from posfleet.platform.errors import DomainError
from posfleet.platform.money import format_fen

type Text = str | Promise  # translated when rendered, in the language active then


class FactorCode(StrEnum):
    MONTHS_ACTIVE = "months_active"
    VOLUME = "volume"
    ANOMALY_RATE = "anomaly_rate"
    DISPUTES = "disputes"
    CLOSURE_REASON = "closure_reason"
    KYC_FRESHNESS = "kyc_freshness"


FACTORS = (
    FactorCode.MONTHS_ACTIVE,
    FactorCode.VOLUME,
    FactorCode.ANOMALY_RATE,
    FactorCode.DISPUTES,
    FactorCode.CLOSURE_REASON,
    FactorCode.KYC_FRESHNESS,
)
FACTOR_LABELS: dict[str, Text] = {
    FactorCode.MONTHS_ACTIVE: gettext_lazy("Months active"),
    FactorCode.VOLUME: gettext_lazy("Takings"),
    FactorCode.ANOMALY_RATE: gettext_lazy("Declines and reversals"),
    FactorCode.DISPUTES: gettext_lazy("Refunds (disputes)"),
    FactorCode.CLOSURE_REASON: gettext_lazy("Closure reason"),
    FactorCode.KYC_FRESHNESS: gettext_lazy("KYC freshness"),
}
WAITING_PERIOD, OUTSTANDING_DEBT = "waiting_period", "outstanding_debt"
GATE_LABELS: dict[str, Text] = {
    WAITING_PERIOD: gettext_lazy("Waiting period"),
    OUTSTANDING_DEBT: gettext_lazy("Outstanding debt"),
}


class Outcome(StrEnum):
    TOO_EARLY = "too_early"
    BLOCKED = "blocked"
    APPROVE = "approve"
    MANUAL_REVIEW = "manual_review"
    REJECT = "reject"


OUTCOME_LABELS: dict[str, Text] = {
    Outcome.TOO_EARLY: gettext_lazy("too early"),
    Outcome.BLOCKED: gettext_lazy("blocked by debt"),
    Outcome.APPROVE: gettext_lazy("approve"),
    Outcome.MANUAL_REVIEW: gettext_lazy("manual review"),
    Outcome.REJECT: gettext_lazy("reject"),
}

# ---------------------------------------------------------------------------------------------
# Policy: versioned JSON files, validated with every problem named.

POLICY_FILE = re.compile(r"^eligibility-(?P<version>[1-9][0-9]*)\.json$")
_BIG = 10**15


class PolicyError(ValueError):
    """A policy file that is not valid, or no policy to use; the message names the file and each problem."""

    def __init__(self, origin: str, problems: Sequence[str]) -> None:
        self.origin, self.problems = origin, list(problems)
        super().__init__(f"{origin}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class ScaleRule:
    """``share`` rises (or falls) linearly from 0 at ``zero_at`` to 1000 permille at ``full_at`` and stays
    there beyond; more is better when ``full_at > zero_at``. A missing value scores ``unknown_permille``."""

    weight: int
    zero_at: int
    full_at: int
    unknown_permille: int = 0

    def share(self, value: int | str | None) -> int:
        if value is None or isinstance(value, str):
            return self.unknown_permille
        span = self.full_at - self.zero_at
        return max(0, min(1000, (value - self.zero_at) * 1000 // span))


@dataclass(frozen=True)
class ReasonRule:
    """A share per closure reason (``DeactivationReason`` values); one not listed, or none, scores
    ``unknown_permille``."""

    weight: int
    shares: tuple[tuple[str, int], ...]
    unknown_permille: int = 500

    def share(self, value: int | str | None) -> int:
        return dict(self.shares).get(str(value), self.unknown_permille) if value else self.unknown_permille


@dataclass(frozen=True)
class Policy:
    version: int
    effective_from: date
    waiting_days: int
    lookback_months: int
    approve_at: int  # score ≥ approve_at: approve
    review_at: int  # score ≥ review_at: manual review; below: reject
    rules: tuple[tuple[str, ScaleRule | ReasonRule], ...]  # in FACTORS order
    digest: str  # SHA-256 of the file's content (canonical JSON): which exact rules decided
    description: str = ""

    def rule(self, code: str) -> ScaleRule | ReasonRule:
        return dict(self.rules)[code]


def parse_policy(data: object, *, origin: str = "policy") -> Policy:
    """A ``Policy`` from the parsed JSON of a policy file; ``PolicyError`` lists every problem."""
    problems: list[str] = []

    def obj(value: object, path: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            problems.append(f"{path or 'the file'}: expected a JSON object")
            return {}
        prefix = f"{path}." if path else ""
        problems.extend(f"{prefix}{k}: missing" for k in sorted(set(required) - set(value)))
        extra = sorted(set(value) - set(required) - set(optional))
        problems.extend(f"{prefix}{k}: unknown key" for k in extra)
        return value

    def whole(values: dict, key: str, path: str, lo: int, hi: int, default: int = 0) -> int:
        if key not in values:
            return default
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            problems.append(f"{path}.{key}: expected a whole number from {lo} to {hi}, got {value!r}")
            return default
        return value

    top = obj(
        data,
        "",
        ("version", "effective_from", "waiting_days", "lookback_months", "decision", "factors"),
        ("description",),
    )
    version = whole(top, "version", "policy", 1, 10**6, 1)
    raw_from = top.get("effective_from")
    effective_from = date(1, 1, 1)
    try:
        if not isinstance(raw_from, str) or len(raw_from) != 10:
            raise ValueError
        effective_from = date.fromisoformat(raw_from)
    except ValueError:
        if "effective_from" in top:
            problems.append(f"effective_from: expected a date as YYYY-MM-DD, got {raw_from!r}")
    description = top.get("description", "")
    if not isinstance(description, str):
        problems.append("description: expected a text")
    decision = obj(top.get("decision", {}), "decision", ("approve_at", "review_at"))
    approve_at = whole(decision, "approve_at", "decision", 1, 100, 100)
    review_at = whole(decision, "review_at", "decision", 0, 100)
    if review_at > approve_at:
        problems.append(f"decision: review_at ({review_at}) is above approve_at ({approve_at})")
    factors = obj(top.get("factors", {}), "factors", FACTORS)
    rules: list[tuple[str, ScaleRule | ReasonRule]] = []
    for code in FACTORS:
        path = f"factors.{code}"
        if code == FactorCode.CLOSURE_REASON:
            spec = obj(factors.get(code, {}), path, ("weight", "shares"), ("unknown_permille",))
            shares = obj(spec.get("shares", {}), f"{path}.shares", (), DeactivationReason.values)
            rules.append(
                (
                    code,
                    ReasonRule(
                        weight=whole(spec, "weight", path, 0, 100),
                        shares=tuple(
                            (reason, whole(shares, reason, f"{path}.shares", 0, 1000))
                            for reason in sorted(set(shares) & set(DeactivationReason.values))
                        ),
                        unknown_permille=whole(spec, "unknown_permille", path, 0, 1000, 500),
                    ),
                )
            )
            continue
        spec = obj(factors.get(code, {}), path, ("weight", "zero_at", "full_at"), ("unknown_permille",))
        top_value = 10_000 if code == FactorCode.ANOMALY_RATE else _BIG  # basis points: at most 100 %
        rule = ScaleRule(
            weight=whole(spec, "weight", path, 0, 100),
            zero_at=whole(spec, "zero_at", path, 0, top_value),
            full_at=whole(spec, "full_at", path, 0, top_value, 1),
            unknown_permille=whole(spec, "unknown_permille", path, 0, 1000),
        )
        if {"zero_at", "full_at"} <= set(spec) and rule.zero_at == rule.full_at:
            problems.append(f"{path}: zero_at and full_at are both {rule.zero_at}; they must differ")
        rules.append((code, rule))
    total = sum(rule.weight for _code, rule in rules)
    if total != 100 and all(code in factors for code in FACTORS):
        problems.append(f"factors: the weights add up to {total}; they must add up to 100")
    waiting_days = whole(top, "waiting_days", "policy", 0, 3650)
    lookback_months = whole(top, "lookback_months", "policy", 3, 36, 12)
    if problems:
        raise PolicyError(origin, problems)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Policy(
        version=version,
        effective_from=effective_from,
        waiting_days=waiting_days,
        lookback_months=lookback_months,
        approve_at=approve_at,
        review_at=review_at,
        rules=tuple(rules),
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        description=description,
    )


def load_policy(source: Traversable) -> Policy:
    """One policy file, named ``eligibility-<version>.json`` after the version it holds."""
    found = POLICY_FILE.match(source.name)
    if found is None:
        raise PolicyError(source.name, ["a policy file is named eligibility-<version>.json"])
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PolicyError(
            source.name, [f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]
        ) from exc
    policy = parse_policy(data, origin=source.name)
    if policy.version != int(found.group("version")):
        raise PolicyError(source.name, [f"version: the file holds version {policy.version}"])
    return policy


def load_policies(directory: Traversable) -> tuple[Policy, ...]:
    """Every ``*.json`` in ``directory``, by version; a later version takes effect strictly later."""
    policies = sorted(
        (load_policy(entry) for entry in directory.iterdir() if entry.name.endswith(".json")),
        key=lambda p: p.version,
    )
    if not policies:
        raise PolicyError(str(directory), ["no eligibility-<version>.json file"])
    for earlier, later in itertools.pairwise(policies):
        if later.effective_from <= earlier.effective_from:
            raise PolicyError(
                f"eligibility-{later.version}.json",
                [
                    f"effective_from {later.effective_from} is not after version {earlier.version}'s "
                    f"({earlier.effective_from})"
                ],
            )
    return tuple(policies)


POLICY_DIR: Traversable = resources.files(__package__ or "posfleet.enrollment").joinpath("policies")


@functools.cache
def shipped_policies() -> tuple[Policy, ...]:
    """The policies shipped with posfleet (read and validated once per process)."""
    return load_policies(POLICY_DIR)


def _pinned_version() -> int | None:
    value = getattr(settings, "POSFLEET_ELIGIBILITY_POLICY", None)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise PolicyError("settings.POSFLEET_ELIGIBILITY_POLICY", [f"expected a version number, got {value!r}"])


def policy_version(version: int, *, policies: Sequence[Policy] | None = None) -> Policy:
    available = shipped_policies() if policies is None else policies
    for policy in available:
        if policy.version == version:
            return policy
    have = ", ".join(str(p.version) for p in available)
    raise PolicyError(f"eligibility policy {version}", [f"no such version (have: {have})"])


def policy_in_force(on: date, *, policies: Sequence[Policy] | None = None) -> Policy:
    """The version pinned by ``settings.POSFLEET_ELIGIBILITY_POLICY``, else the one with the latest
    ``effective_from`` on or before ``on``."""
    available = shipped_policies() if policies is None else policies
    pinned = _pinned_version()
    if pinned is not None:
        return policy_version(pinned, policies=available)
    in_force = [p for p in available if p.effective_from <= on]
    if not in_force:
        first = min((p.effective_from for p in available), default=None)
        raise PolicyError("eligibility policy", [f"none in force on {on} (the first starts on {first})"])
    return max(in_force, key=lambda p: p.effective_from)


# ---------------------------------------------------------------------------------------------
# Facts: the merchant's history, read once.


class MerchantRef(Protocol):
    """What eligibility reads of a merchant (``parties.Merchant``; that module is not ours to import)."""

    @property
    def pk(self) -> Any: ...
    @property
    def mid(self) -> str: ...
    @property
    def organisation_id(self) -> int: ...


class MerchantNotClosed(DomainError):
    code = "merchant_not_closed"
    status = 409
    title = gettext_lazy("Only a merchant whose terminals are all closed can apply again.")


@dataclass(frozen=True)
class Facts:
    """What the decision is computed from. Transaction figures cover the ``lookback_months`` up to the
    day of closure; the service keeps no dispute record, so approved refunds stand in for disputes."""

    merchant_mid: str
    closed_at: datetime  # when the merchant's last terminal was deregistered
    closure_reason: str  # that deregistration's reason (DeactivationReason value), "" if none on record
    terminals: int  # terminals the merchant held
    active_days: int  # days on which at least one of them was active (overlaps counted once)
    lookback_months: int
    volume_fen: int  # takings: approved sales less approved refunds and reversals (never below 0)
    sales: int  # approved sales
    transactions: int  # every transaction recorded: sales, refunds, reversals, approved or declined
    declined: int
    reversals: int  # approved reversals (sales cancelled the same day)
    refunds: int  # approved refunds: the stand-in for disputes
    refunds_fen: int
    fees_owed_fen: int  # fees receivable not paid
    penalties_owed_fen: int  # penalties receivable not paid
    kyc_checked_on: date | None = None

    @property
    def closed_on(self) -> date:
        return timezone.localdate(self.closed_at)

    @property
    def months_active(self) -> int:
        return self.active_days * 12 // 365

    @property
    def anomaly_rate_bp(self) -> int | None:
        """Declines and reversals per 10,000 transactions; None without transactions."""
        return (self.declined + self.reversals) * 10_000 // self.transactions if self.transactions else None

    @property
    def debt_fen(self) -> int:
        return self.fees_owed_fen + self.penalties_owed_fen

    def kyc_age_days(self, on: date) -> int | None:
        return None if self.kyc_checked_on is None else max(0, (on - self.kyc_checked_on).days)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["closed_at"] = self.closed_at.isoformat()
        data["kyc_checked_on"] = self.kyc_checked_on.isoformat() if self.kyc_checked_on else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Facts:
        values = dict(data)
        values["closed_at"] = datetime.fromisoformat(values["closed_at"])
        kyc = values.get("kyc_checked_on")
        values["kyc_checked_on"] = date.fromisoformat(kyc) if kyc else None
        return cls(**values)


IN_SERVICE = frozenset({Status.BOUND, Status.ACTIVE, Status.SUSPENDED, Status.DEACTIVATED})


@dataclass
class _Tenure:
    """One stretch of a terminal with one merchant: from ``bound`` to the next ``in_stock`` (refurbish
    clears the binding), with the status periods in between."""

    terminal_id: int
    start: datetime
    end: datetime | None = None
    periods: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)

    def overlaps(self, first: datetime, last: datetime) -> bool:
        return self.start <= last and (self.end is None or first < self.end)


def _tenures(rows: Iterable[tuple[int, str, datetime, datetime | None]]) -> dict[int, list[_Tenure]]:
    found: dict[int, list[_Tenure]] = defaultdict(list)
    for terminal_id, status, started, ended in rows:  # ordered by terminal, then time
        tenures = found[terminal_id]
        current = tenures[-1] if tenures and tenures[-1].end is None else None
        if status == Status.BOUND:
            if current is not None:
                current.end = started
            current = _Tenure(terminal_id, started)
            tenures.append(current)
        elif status == Status.IN_STOCK and current is not None:
            current.end = started
            continue
        if current is not None:
            current.periods.append((status, started, ended))
    return found


def _days_covered(intervals: list[tuple[datetime, datetime]]) -> int:
    """Whole days covered by the union of ``intervals``."""
    total, reach = timedelta(0), None
    for start, end in sorted(intervals):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += end - start
            reach = end
    return total // timedelta(days=1)


def merchant_facts(
    merchant: MerchantRef, *, lookback_months: int, kyc_checked_on: date | None = None
) -> Facts:
    """The merchant's history, read-only, in five queries: one more when the device closed last has moved
    on since (its reason is then read from the audit chain), one more when a device went to the merchant
    twice with someone else in between.

    Which terminals were the merchant's: those bound to it now, and those it transacted on — a device
    that went back to stock (refurbished) has lost its binding but its transactions still name the
    merchant. A terminal's time with the merchant is its *tenure*, from ``bound`` to the next
    ``in_stock``; a tenure without a single transaction, on a device refurbished since, cannot be
    attributed (posfleet keeps no binding history) and is not counted.
    """
    linked = {
        pk: (sn, status, reason)
        for pk, sn, status, reason in Terminal.objects.filter(merchant_id=merchant.pk).values_list(
            "pk", "sn", "status", "status_reason"
        )
    }
    in_service = sorted(sn for sn, status, _reason in linked.values() if status in IN_SERVICE)
    if in_service:
        raise MerchantNotClosed(
            ngettext(
                "Terminal %(sns)s is still in service: close it first.",
                "Terminals %(sns)s are still in service: close them first.",
                len(in_service),
            )
            % {"sns": ", ".join(in_service[:5]) + ("…" if len(in_service) > 5 else "")}
        )
    used = {
        terminal_id: (sn, first, last)
        for terminal_id, sn, first, last in Transaction.objects.filter(merchant_id=merchant.pk)
        .order_by()
        .values("terminal_id", "terminal__sn")
        .annotate(first=Min("occurred_at"), last=Max("occurred_at"))
        .values_list("terminal_id", "terminal__sn", "first", "last")
    }
    sns = {pk: sn for pk, (sn, _status, _reason) in linked.items()} | {
        pk: sn for pk, (sn, _first, _last) in used.items()
    }
    tenures = _tenures(
        StatusPeriod.objects.filter(terminal_id__in=sorted(sns))
        .order_by("terminal_id", "started_at", "id")
        .values_list("terminal_id", "status", "started_at", "ended_at")
    )
    mine: list[_Tenure] = []
    unsure: list[_Tenure] = []
    for terminal_id, stretches in tenures.items():
        chosen = [stretches[-1]] if terminal_id in linked and stretches else []
        if terminal_id in used:
            _sn, first, last = used[terminal_id]
            candidates = [t for t in stretches if t.overlaps(first, last) and all(t is not c for c in chosen)]
            if len(candidates) == 1 and not chosen:
                chosen += candidates
            else:
                unsure += candidates
        mine += chosen
    if unsure:  # several stretches of one device, someone else's in between: ask which hold its sales
        counts = Transaction.objects.filter(merchant_id=merchant.pk).aggregate(
            **{
                f"t{i}": Count(
                    "pk",
                    filter=Q(terminal_id=t.terminal_id, occurred_at__gte=t.start)
                    & (Q(occurred_at__lt=t.end) if t.end is not None else Q()),
                )
                for i, t in enumerate(unsure)
            }
        )
        mine += [t for i, t in enumerate(unsure) if counts[f"t{i}"]]
    closings = [
        (started, t.terminal_id)
        for t in mine
        for status, started, _ in t.periods
        if status == Status.DEREGISTERED
    ]
    if not closings:
        raise MerchantNotClosed(
            _("This merchant has no closure on record: none of its terminals was deregistered.")
        )
    closed_at, closing = max(closings)
    active = [
        (started, min(ended or closed_at, closed_at))
        for t in mine
        for status, started, ended in t.periods
        if status == Status.ACTIVE
    ]
    if closing in linked and linked[closing][1] == Status.DEREGISTERED:
        reason = linked[closing][2]
    else:  # the device moved on since; the deregistration's audit row keeps the reason
        reason = (
            events_about("terminal", [sns[closing]])
            .filter(event_type=EventType.TERMINAL_DEREGISTERED, occurred_at=closed_at)
            .values_list("reason", flat=True)
            .first()
        ) or ""
    closed_on = timezone.localdate(closed_at)
    sale = Q(kind=TransactionKind.SALE, status=TransactionStatus.APPROVED)
    follow_up = Q(status=TransactionStatus.APPROVED) & ~Q(kind=TransactionKind.SALE)
    refund = Q(kind=TransactionKind.REFUND, status=TransactionStatus.APPROVED)
    window = Transaction.objects.filter(
        merchant_id=merchant.pk,
        txn_date__gt=add_months(closed_on, -lookback_months),
        txn_date__lte=closed_on,
    ).aggregate(
        transactions=Count("pk"),
        sales=Count("pk", filter=sale),
        sales_fen=Sum("amount_fen", filter=sale, default=0),
        returned_fen=Sum("amount_fen", filter=follow_up, default=0),
        declined=Count("pk", filter=Q(status=TransactionStatus.DECLINED)),
        reversals=Count("pk", filter=Q(kind=TransactionKind.REVERSAL, status=TransactionStatus.APPROVED)),
        refunds=Count("pk", filter=refund),
        refunds_fen=Sum("amount_fen", filter=refund, default=0),
    )
    balances = balances_of(merchant.organisation_id)
    return Facts(
        merchant_mid=merchant.mid,
        closed_at=closed_at,
        closure_reason=reason,
        terminals=len({t.terminal_id for t in mine}),
        active_days=_days_covered(active),
        lookback_months=lookback_months,
        volume_fen=max(0, window["sales_fen"] - window["returned_fen"]),
        sales=window["sales"],
        transactions=window["transactions"],
        declined=window["declined"],
        reversals=window["reversals"],
        refunds=window["refunds"],
        refunds_fen=window["refunds_fen"],
        fees_owed_fen=max(0, balances[AccountKind.FEES_RECEIVABLE]),
        penalties_owed_fen=max(0, balances[AccountKind.PENALTIES_RECEIVABLE]),
        kyc_checked_on=kyc_checked_on,
    )


# ---------------------------------------------------------------------------------------------
# Decision: pure, explained.


@dataclass(frozen=True)
class Factor:
    code: str  # FactorCode
    value: int | str | None  # months | fen | basis points | refunds | reason | days since KYC; None: unknown
    weight: int  # points this factor can give
    share_permille: int  # how much of the weight it gives
    contribution: int  # weight × share ÷ 1000, rounded down: points
    staff_text: Text
    merchant_text: Text

    @property
    def label(self) -> Text:
        return FACTOR_LABELS[self.code]


@dataclass(frozen=True)
class Gate:
    """A condition checked before the score: the waiting period is over, nothing is owed."""

    code: str  # WAITING_PERIOD | OUTSTANDING_DEBT
    passed: bool
    value: int | str  # the waiting period's last day (ISO date) | the debt in fen
    staff_text: Text
    merchant_text: Text

    @property
    def label(self) -> Text:
        return GATE_LABELS[self.code]


@dataclass(frozen=True)
class Assessment:
    on: date
    outcome: str  # Outcome
    score: int  # 0–100: the sum of the factors' contributions
    facts: Facts
    factors: tuple[Factor, ...]
    gates: tuple[Gate, ...]
    policy_version: int
    policy_digest: str
    staff_text: Text  # one line: outcome, score, thresholds
    merchant_text: Text  # one line, plain words

    @property
    def outcome_label(self) -> Text:
        return OUTCOME_LABELS[self.outcome]

    @property
    def summary(self) -> Text:
        """The one-line answer in plain words (``merchant_text``), e.g. for a refusal's detail."""
        return self.merchant_text

    @property
    def waiting_ends_on(self) -> date:
        return date.fromisoformat(str(self.gates[0].value))

    def as_json(self) -> dict[str, Any]:
        """What to store: the facts, the policy version (and digest) and the result; texts are rebuilt."""
        return {
            "on": self.on.isoformat(),
            "policy": {"version": self.policy_version, "sha256": self.policy_digest},
            "outcome": self.outcome,
            "score": self.score,
            "facts": self.facts.as_json(),
            "factors": [
                {"code": f.code, "value": f.value, "weight": f.weight, "contribution": f.contribution}
                for f in self.factors
            ],
            "gates": [{"code": g.code, "passed": g.passed, "value": g.value} for g in self.gates],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, policy: Policy | None = None) -> Assessment:
        """Rebuild a stored decision with the policy version it used (shipped, or ``policy``); refuses when
        that version's rules changed since or the stored result does not follow from its facts."""
        version, digest = int(data["policy"]["version"]), str(data["policy"]["sha256"])
        used = policy or policy_version(version)
        if (used.version, used.digest) != (version, digest):
            raise PolicyError(
                f"eligibility policy {version}",
                [f"the decision was made with rules {digest[:12]}…, the policy now has {used.digest[:12]}…"],
            )
        rebuilt = decide(Facts.from_json(data["facts"]), used, on=date.fromisoformat(data["on"]))
        if rebuilt.as_json() != json.loads(json.dumps(data)):
            raise ValueError("the stored decision does not follow from its facts and policy")
        return rebuilt


def decide(facts: Facts, policy: Policy, *, on: date) -> Assessment:
    """The decision on ``on`` for ``facts`` under ``policy``. Pure: no database, no clock."""
    if facts.lookback_months != policy.lookback_months:
        raise ValueError("the facts were gathered for another look-back than the policy's")
    values: dict[str, int | str | None] = {
        FactorCode.MONTHS_ACTIVE: facts.months_active,
        FactorCode.VOLUME: facts.volume_fen,
        FactorCode.ANOMALY_RATE: facts.anomaly_rate_bp,
        FactorCode.DISPUTES: facts.refunds,
        FactorCode.CLOSURE_REASON: facts.closure_reason or None,
        FactorCode.KYC_FRESHNESS: facts.kyc_age_days(on),
    }
    factors = []
    for code, rule in policy.rules:
        share = rule.share(values[code])
        points = rule.weight * share // 1000
        staff, merchant = _explain(code, values[code], facts, rule, share, points, on)
        factors.append(Factor(code, values[code], rule.weight, share, points, staff, merchant))
    score = sum(f.contribution for f in factors)
    ends_on = facts.closed_on + timedelta(days=policy.waiting_days)
    gates = (
        Gate(WAITING_PERIOD, on >= ends_on, ends_on.isoformat(), *_waiting_texts(facts, policy, ends_on, on)),
        Gate(OUTSTANDING_DEBT, facts.debt_fen <= 0, facts.debt_fen, *_debt_texts(facts)),
    )
    if not gates[0].passed:
        outcome = Outcome.TOO_EARLY
    elif not gates[1].passed:
        outcome = Outcome.BLOCKED
    elif score >= policy.approve_at:
        outcome = Outcome.APPROVE
    elif score >= policy.review_at:
        outcome = Outcome.MANUAL_REVIEW
    else:
        outcome = Outcome.REJECT
    return Assessment(
        on=on,
        outcome=outcome,
        score=score,
        facts=facts,
        factors=tuple(factors),
        gates=gates,
        policy_version=policy.version,
        policy_digest=policy.digest,
        staff_text=_staff_summary(outcome, score, policy),
        merchant_text=_summary(outcome, ends_on, facts.debt_fen),
    )


def assess(
    merchant: MerchantRef,
    *,
    on: date | None = None,
    policy: Policy | None = None,
    kyc_checked_on: date | None = None,
) -> Assessment:
    """May ``merchant`` (closed) have terminals again? Read its history, decide under the policy in force
    on ``on`` (today by default) unless one is given, and explain. ``kyc_checked_on``: the day of its
    last KYC check, if known (unknown is neutral)."""
    day = on or today()
    chosen = policy or policy_in_force(day)
    facts = merchant_facts(merchant, lookback_months=chosen.lookback_months, kyc_checked_on=kyc_checked_on)
    return decide(facts, chosen, on=day)


# ---------------------------------------------------------------------------------------------
# Texts: built now, translated when shown.

_later: Callable[[Callable[[], str]], str] = lazy(lambda render: render(), str)


def _months(n: int) -> str:
    return ngettext("%(count)d month", "%(count)d months", n) % {"count": n}


def _days(n: int) -> str:
    return ngettext("%(count)d day", "%(count)d days", n) % {"count": n}


def _refunds(n: int) -> str:
    return ngettext("%(count)d refund", "%(count)d refunds", n) % {"count": n}


def _percent(basis_points: int) -> str:
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def _share(permille: int) -> str:
    return f"{permille // 10}%" if permille % 10 == 0 else f"{permille // 10}.{permille % 10}%"


_UNITS: dict[str, Callable[[int], str]] = {
    FactorCode.MONTHS_ACTIVE: _months,
    FactorCode.VOLUME: format_fen,
    FactorCode.ANOMALY_RATE: _percent,
    FactorCode.DISPUTES: _refunds,
    FactorCode.KYC_FRESHNESS: _days,
}


def _reason_label(code: str) -> str:
    return str(DeactivationReason(code).label) if code in DeactivationReason.values else code


def _facts_text(code: str, value: int | str | None, facts: Facts, on: date) -> tuple[str, str]:
    """(staff, merchant) sentences stating the fact, without a verdict."""
    months = facts.lookback_months
    if code == FactorCode.MONTHS_ACTIVE:
        staff = _("%(months)s active: %(days)s with a terminal active, %(terminals)s in all") % {
            "months": _months(facts.months_active),
            "days": _days(facts.active_days),
            "terminals": ngettext("%(count)d terminal", "%(count)d terminals", facts.terminals)
            % {"count": facts.terminals},
        }
        if facts.months_active == 0:
            return staff, _("You used your terminals for less than a month")
        return staff, ngettext(
            "You used your terminals for %(count)d month",
            "You used your terminals for %(count)d months",
            facts.months_active,
        ) % {"count": facts.months_active}
    if code == FactorCode.VOLUME:
        numbers = {"amount": format_fen(facts.volume_fen), "count": facts.sales, "months": months}
        return (
            ngettext(
                "Takings %(amount)s from %(count)d approved sale in the %(months)d months before closure, "
                "refunds and reversals deducted",
                "Takings %(amount)s from %(count)d approved sales in the %(months)d months before closure, "
                "refunds and reversals deducted",
                facts.sales,
            )
            % numbers,
            ngettext(
                "In the %(months)d months before you closed, you took %(amount)s in %(count)d sale",
                "In the %(months)d months before you closed, you took %(amount)s in %(count)d sales",
                facts.sales,
            )
            % numbers,
        )
    if code == FactorCode.ANOMALY_RATE:
        if not isinstance(value, int):
            return (
                _("No transactions in the %(months)d months before closure") % {"months": months},
                _("You had no payments in the %(months)d months before you closed") % {"months": months},
            )
        numbers = {
            "rate": _percent(value),
            "count": facts.transactions,
            "declined": facts.declined,
            "reversed": facts.reversals,
            "months": months,
        }
        return (
            ngettext(
                "%(rate)s of %(count)d transaction declined or reversed (%(declined)d declined, "
                "%(reversed)d reversed) in the %(months)d months before closure",
                "%(rate)s of %(count)d transactions declined or reversed (%(declined)d declined, "
                "%(reversed)d reversed) in the %(months)d months before closure",
                facts.transactions,
            )
            % numbers,
            _("%(rate)s of your payments were declined or cancelled") % numbers,
        )
    if code == FactorCode.DISPUTES:
        staff = _(
            "%(refunds)s (%(amount)s) in the %(months)d months before closure; refunds stand in for disputes"
        ) % {"refunds": _refunds(facts.refunds), "amount": format_fen(facts.refunds_fen), "months": months}
        if facts.refunds == 0:
            return staff, _("None of your payments was refunded to a customer")
        return staff, ngettext(
            "%(count)d payment was refunded to a customer",
            "%(count)d payments were refunded to customers",
            facts.refunds,
        ) % {"count": facts.refunds}
    if code == FactorCode.CLOSURE_REASON:
        if not value:
            return _("No closure reason on record"), _("We have no reason on record for your closure")
        label = _reason_label(str(value))
        return (
            _("Closed for “%(reason)s” (%(code)s)") % {"reason": label, "code": value},
            _("You closed because of: %(reason)s") % {"reason": label},
        )
    if not isinstance(value, int) or facts.kyc_checked_on is None:
        return (
            _("No KYC check date given"),
            _("We have no recent check of your identity documents on file"),
        )
    return (
        _("KYC last checked on %(date)s, %(days)s before the decision")
        % {"date": facts.kyc_checked_on.isoformat(), "days": _days(value)},
        _("Your identity documents were last checked %(days)s ago") % {"days": _days(value)},
    )


def _rule_text(code: str, rule: ScaleRule | ReasonRule, value: int | str | None, share: int) -> str:
    if value is None:
        return _("unknown, so %(share)s of the weight") % {"share": _share(share)}
    if isinstance(rule, ReasonRule):
        return _("%(share)s of the weight for this reason") % {"share": _share(share)}
    unit = _UNITS[code]
    numbers = {"full": unit(rule.full_at), "zero": unit(rule.zero_at)}
    if rule.full_at > rule.zero_at:
        return _("full points from %(full)s, none at %(zero)s or less") % numbers
    return _("full points at %(full)s or less, none from %(zero)s") % numbers


def _verdict(value: int | str | None, share: int) -> str:
    if share >= 800:
        return _("this counts in your favour.")
    if value is None and share >= 400:
        return _("this neither helps nor hurts.")
    if share >= 400:
        return _("this counts partly in your favour.")
    return _("this counts against you.")


def _explain(
    code: str,
    value: int | str | None,
    facts: Facts,
    rule: ScaleRule | ReasonRule,
    share: int,
    points: int,
    on: date,
) -> tuple[str, str]:
    def staff() -> str:
        return _("%(fact)s; %(rule)s: %(points)d of %(weight)d points.") % {
            "fact": _facts_text(code, value, facts, on)[0],
            "rule": _rule_text(code, rule, value, share),
            "points": points,
            "weight": rule.weight,
        }

    def merchant() -> str:
        return _("%(fact)s — %(verdict)s") % {
            "fact": _facts_text(code, value, facts, on)[1],
            "verdict": _verdict(value, share),
        }

    return _later(staff), _later(merchant)


def _waiting_texts(facts: Facts, policy: Policy, ends_on: date, on: date) -> tuple[str, str]:
    numbers = {
        "closed": facts.closed_on.isoformat(),
        "days": policy.waiting_days,
        "date": ends_on.isoformat(),
    }

    def staff() -> str:
        if on >= ends_on:
            return _("Closed on %(closed)s; the waiting period of %(days)d days ended on %(date)s.") % numbers
        return _("Closed on %(closed)s; the waiting period of %(days)d days ends on %(date)s.") % numbers

    def merchant() -> str:
        if on >= ends_on:
            return _("The waiting period after your closure is over.")
        return _("You can apply again from %(date)s, %(days)d days after your closure.") % numbers

    return _later(staff), _later(merchant)


def _debt_texts(facts: Facts) -> tuple[str, str]:
    numbers = {
        "amount": format_fen(facts.debt_fen),
        "fees": format_fen(facts.fees_owed_fen),
        "penalties": format_fen(facts.penalties_owed_fen),
    }

    def staff() -> str:
        if facts.debt_fen <= 0:
            return _("Nothing owed (fees and penalties receivable are settled).")
        return (
            _("Owes %(amount)s (fees %(fees)s, penalties %(penalties)s): blocks re-application until paid.")
            % numbers
        )

    def merchant() -> str:
        if facts.debt_fen <= 0:
            return _("You owe us nothing.")
        return _("You still owe us %(amount)s. We can consider a new application once it is paid.") % numbers

    return _later(staff), _later(merchant)


def _staff_summary(outcome: str, score: int, policy: Policy) -> str:
    def render() -> str:
        return _(
            "%(outcome)s: score %(score)d of 100 under eligibility policy %(version)d "
            "(approve from %(approve)d, manual review from %(review)d)."
        ) % {
            "outcome": str(OUTCOME_LABELS[outcome]).capitalize(),
            "score": score,
            "version": policy.version,
            "approve": policy.approve_at,
            "review": policy.review_at,
        }

    return _later(render)


def _summary(outcome: str, ends_on: date, debt_fen: int) -> str:
    def render() -> str:
        if outcome == Outcome.TOO_EARLY:
            return _("It is too early to apply again: you can apply from %(date)s.") % {
                "date": ends_on.isoformat()
            }
        if outcome == Outcome.BLOCKED:
            return _("You still owe us %(amount)s: please pay it before you apply again.") % {
                "amount": format_fen(debt_fen)
            }
        if outcome == Outcome.APPROVE:
            return _("Your application to use our terminals again is approved.")
        if outcome == Outcome.MANUAL_REVIEW:
            return _("Our staff will look at your application and come back to you.")
        return _("We cannot accept your application to use our terminals again at this time.")

    return _later(render)
