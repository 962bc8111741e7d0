"""Policy: versioned JSON files, validated with every problem named."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable

from django.conf import settings

from posfleet.enrollment.eligibility.codes import FACTORS, FactorCode
from posfleet.fleet.states import DeactivationReason

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


POLICY_DIR: Traversable = resources.files("posfleet.enrollment").joinpath("policies")


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
