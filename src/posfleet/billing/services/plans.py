"""Rate plans: create, add a version from a date, assign to a merchant (or terminal) from a date; and
the one question every fee asks — which version was in force for this merchant/terminal at that time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext as _

from posfleet.audit.services import Entry, record
from posfleet.audit.vocabulary import EventType
from posfleet.billing.errors import NoRatePlan
from posfleet.billing.models import PaymentMethod, PlanAssignment, RatePlan, RatePlanVersion, RateRule
from posfleet.platform.clock import today
from posfleet.platform.context import Actor
from posfleet.platform.errors import ValidationFailed
from posfleet.platform.money import fee_fen
from posfleet.platform.prepared import Prepared


@dataclass(frozen=True)
class RuleSpec:
    rate: Decimal
    cap_fen: int | None = None
    min_fen: int | None = None


def _check_rules(rules: Mapping[str, RuleSpec]) -> None:
    if not rules:
        raise ValidationFailed(
            _("A plan version needs a rate for at least one payment method."), field="rules"
        )
    for method, spec in rules.items():
        if method not in PaymentMethod.values:
            raise ValidationFailed(_("Unknown payment method “%(m)s”.") % {"m": method[:16]}, field="rules")
        try:
            rate = Decimal(spec.rate)
        except (InvalidOperation, TypeError) as exc:
            raise ValidationFailed(_("A rate is a decimal such as 0.0060."), field="rules") from exc
        if not (Decimal(0) <= rate < Decimal("0.1")) or rate.as_tuple().exponent < -6:  # type: ignore[operator]
            raise ValidationFailed(
                _("A rate must be between 0 and 10 %% with at most 4 decimals of a percent."), field="rules"
            )
        if (spec.cap_fen is not None and spec.cap_fen < 0) or (spec.min_fen is not None and spec.min_fen < 0):
            raise ValidationFailed(_("Caps and minimums cannot be negative."), field="rules")
        if spec.cap_fen is not None and spec.min_fen is not None and spec.min_fen > spec.cap_fen:
            raise ValidationFailed(_("The minimum cannot be above the cap."), field="rules")


def _no_backdating(actor: Actor, effective_from: date) -> None:
    if not actor.is_system and effective_from < today():
        raise ValidationFailed(
            _("Changes apply from today or later; history is never rewritten."), field="effective_from"
        )


def plan_create(
    *,
    actor: Actor,
    code: str,
    name: str,
    rules: Mapping[str, RuleSpec],
    effective_from: date,
    is_competitor: bool = False,
    provider_name: str = "",
    settlement_cycle: str = "t1",
    d0_surcharge_rate: Decimal = Decimal(0),
    annual_fee_fen: int = 0,
    deposit_fen: int = 0,
) -> RatePlan:
    """A new plan with its first version. ``annual_fee_fen`` and ``deposit_fen`` (per terminal) are what
    a competitor's plan asks beside its rates: the comparison adds them to its total (ADR 0027)."""
    actor.require("billing.manage_plans")
    _check_rules(rules)
    for amount, name_of in ((annual_fee_fen, "annual_fee"), (deposit_fen, "deposit")):
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValidationFailed(_("Amounts are whole fen and cannot be negative."), field=name_of)
    with transaction.atomic():
        try:
            with transaction.atomic():
                plan = RatePlan.objects.create(
                    code=code,
                    name=name,
                    is_competitor=is_competitor,
                    provider_name=provider_name,
                    annual_fee_fen=annual_fee_fen,
                    deposit_fen=deposit_fen,
                )
        except IntegrityError as exc:
            raise ValidationFailed(_("A plan with this code exists already."), field="code") from exc
        _add_version(plan, 1, effective_from, rules, settlement_cycle, d0_surcharge_rate)
        record(
            actor,
            Entry(
                event_type=EventType.PLAN_CREATED,
                subject_type="rate_plan",
                subject_id=code,
                after={
                    "name": name,
                    "competitor": is_competitor,
                    "annual_fee_fen": annual_fee_fen,
                    "deposit_fen": deposit_fen,
                    "effective_from": str(effective_from),
                    "rules": _rules_json(rules),
                },
            ),
        )
    return plan


def plan_version_add(
    *,
    actor: Actor,
    plan: RatePlan,
    effective_from: date,
    rules: Mapping[str, RuleSpec],
    settlement_cycle: str = "t1",
    d0_surcharge_rate: Decimal = Decimal(0),
    note: str = "",
) -> RatePlanVersion:
    actor.require("billing.manage_plans")
    _check_rules(rules)
    _no_backdating(actor, effective_from)
    with transaction.atomic():
        latest = RatePlanVersion.objects.select_for_update().filter(plan=plan).order_by("-number").first()
        if latest is not None and effective_from <= latest.effective_from:
            raise ValidationFailed(
                _("A new version must start after the current one (%(d)s).") % {"d": latest.effective_from},
                field="effective_from",
            )
        version = _add_version(
            plan,
            (latest.number if latest else 0) + 1,
            effective_from,
            rules,
            settlement_cycle,
            d0_surcharge_rate,
            note,
        )
        record(
            actor,
            Entry(
                event_type=EventType.PLAN_VERSION_ADDED,
                subject_type="rate_plan",
                subject_id=plan.code,
                after={
                    "version": version.number,
                    "effective_from": str(effective_from),
                    "rules": _rules_json(rules),
                },
            ),
        )
    return version


def _add_version(
    plan: RatePlan,
    number: int,
    effective_from: date,
    rules: Mapping[str, RuleSpec],
    settlement_cycle: str,
    d0_surcharge_rate: Decimal,
    note: str = "",
) -> RatePlanVersion:
    version = RatePlanVersion.objects.create(
        plan=plan,
        number=number,
        effective_from=effective_from,
        settlement_cycle=settlement_cycle,
        d0_surcharge_rate=d0_surcharge_rate,
        note=note,
    )
    RateRule.objects.bulk_create(
        [
            RateRule(
                version=version, method=m, rate=Decimal(spec.rate), cap_fen=spec.cap_fen, min_fen=spec.min_fen
            )
            for m, spec in sorted(rules.items())
        ]
    )
    return version


def _rules_json(rules: Mapping[str, RuleSpec]) -> dict[str, dict[str, str | int | None]]:
    return {
        m: {"rate": str(s.rate), "cap_fen": s.cap_fen, "min_fen": s.min_fen} for m, s in sorted(rules.items())
    }


def plan_assign(
    *,
    actor: Actor,
    merchant_id: int,
    merchant_mid: str,
    plan: RatePlan,
    effective_from: date,
    terminal_id: int | None = None,
    d0_settlement: bool = False,
) -> PlanAssignment:
    """Put a merchant (or one terminal) on ``plan`` from ``effective_from`` (today or later)."""
    actor.require("billing.manage_plans")
    if plan.is_competitor:
        raise ValidationFailed(_("A competitor's plan is for comparison only."), field="plan")
    _no_backdating(actor, effective_from)
    with transaction.atomic():
        try:
            with transaction.atomic():
                assignment = PlanAssignment.objects.create(
                    merchant_id=merchant_id,
                    terminal_id=terminal_id,
                    plan=plan,
                    effective_from=effective_from,
                    d0_settlement=d0_settlement,
                )
        except IntegrityError as exc:
            raise ValidationFailed(
                _("There is already a plan change on that day."), field="effective_from"
            ) from exc
        record(
            actor,
            Entry(
                event_type=EventType.PLAN_ASSIGNED,
                subject_type="merchant",
                subject_id=merchant_mid,
                after={
                    "plan": plan.code,
                    "effective_from": str(effective_from),
                    "terminal": terminal_id,
                    "d0": d0_settlement,
                },
            ),
        )
    return assignment


# ---------------------------------------------------------------------------------------------
# Which version is in force (a small in-memory book, loaded once per batch of work)


@dataclass(frozen=True)
class Quote:
    version: RatePlanVersion
    fee_fen: int


def _fields(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _assignments() -> QuerySet[PlanAssignment]:
    return PlanAssignment.objects.order_by("effective_from", "id")


def _assigned_plans(merchants: list[int]) -> QuerySet[PlanAssignment, Any]:
    return PlanAssignment.objects.filter(merchant_id__in=merchants).values("plan_id")


# Read by every ingest (the gateway's groups of approvals included): compiled once per connection
# (and number of merchants; platform/prepared.py). Only the plans these merchants are on, by
# subquery: the catalogue's other plans (competitors' included, entered for the comparison) and their
# versions would otherwise be read for every group — 405 rules cost a group 5–11 ms.
_VERSIONS = Prepared(
    lambda merchants: (
        RatePlanVersion.objects.filter(plan_id__in=_assigned_plans(merchants))
        .order_by("plan_id", "effective_from")
        .values_list(*_fields(RatePlanVersion))
    ),
    merchants=[int],
)
_RULES = Prepared(
    lambda merchants: (
        RateRule.objects.filter(version__plan_id__in=_assigned_plans(merchants))
        .order_by()
        .values_list(*_fields(RateRule))
    ),
    merchants=[int],
)
_ASSIGNMENTS = Prepared(
    lambda merchants: _assignments().filter(merchant_id__in=merchants).values_list(*_fields(PlanAssignment)),
    merchants=[int],
)


class PlanBook:
    """The assignments of some merchants, and the versions and rules of the plans they are on (and of
    ``plans``, by id: the comparison's other plans), resolved in memory; ``merchant_ids`` None: every
    assignment and plan.

    Load it once for a batch (ingest, settlement, comparison) and ask it per transaction.
    """

    def __init__(self, merchant_ids: Iterable[int] | None = None, *, plans: Iterable[int] = ()) -> None:
        self.versions: dict[int, list[RatePlanVersion]] = {}
        self.rules: dict[int, dict[str, RateRule]] = {}
        versions: list[RatePlanVersion]
        rules: list[RateRule]
        if merchant_ids is None:
            assignments: list[PlanAssignment] = list(_assignments())
            versions = list(RatePlanVersion.objects.order_by("plan_id", "effective_from"))
            rules = list(RateRule.objects.order_by())
        else:
            merchants = list(merchant_ids)
            assignments = _ASSIGNMENTS.objects(merchants=merchants)
            if plans:  # the comparison's other plans besides the merchants' (not a hot path)
                wanted = Q(plan_id__in=_assigned_plans(merchants)) | Q(plan_id__in=set(plans))
                versions = list(RatePlanVersion.objects.filter(wanted).order_by("plan_id", "effective_from"))
                rules = list(RateRule.objects.filter(version__in=[v.pk for v in versions]))
            else:
                versions = _VERSIONS.objects(merchants=merchants)
                rules = _RULES.objects(merchants=merchants)
        for version in versions:
            self.versions.setdefault(version.plan_id, []).append(version)
        for rule in rules:
            self.rules.setdefault(rule.version_id, {})[rule.method] = rule
        self.by_merchant: dict[int, list[PlanAssignment]] = {}
        self.by_terminal: dict[int, list[PlanAssignment]] = {}
        for a in assignments:
            target = (
                self.by_terminal.setdefault(a.terminal_id, [])
                if a.terminal_id
                else self.by_merchant.setdefault(a.merchant_id, [])
            )
            target.append(a)

    @staticmethod
    def _latest[T](items: list[T], day: date, key: str) -> T | None:
        found = None
        for item in items:
            if getattr(item, key) <= day:
                found = item
            else:
                break
        return found

    def assignment(self, merchant_id: int, terminal_id: int | None, day: date) -> PlanAssignment | None:
        if terminal_id is not None and terminal_id in self.by_terminal:
            found = self._latest(self.by_terminal[terminal_id], day, "effective_from")
            if found is not None:
                return found
        return self._latest(self.by_merchant.get(merchant_id, []), day, "effective_from")

    def version(self, plan_id: int, day: date) -> RatePlanVersion | None:
        return self._latest(self.versions.get(plan_id, []), day, "effective_from")

    def version_for(self, merchant_id: int, terminal_id: int | None, day: date) -> RatePlanVersion:
        assignment = self.assignment(merchant_id, terminal_id, day)
        version = self.version(assignment.plan_id, day) if assignment is not None else None
        if version is None:
            raise NoRatePlan()
        return version

    def fee(self, version: RatePlanVersion, method: str, amount_fen: int, *, d0: bool = False) -> int:
        rule = self.rules.get(version.pk, {}).get(method)
        if rule is None:
            raise ValidationFailed(
                _("The rate plan has no rate for %(method)s.") % {"method": method}, field="method"
            )
        rate = rule.rate + (version.d0_surcharge_rate if d0 else Decimal(0))
        return fee_fen(amount_fen, rate, cap_fen=rule.cap_fen, min_fen=rule.min_fen)

    def quote(
        self, merchant_id: int, terminal_id: int | None, day: date, method: str, amount_fen: int
    ) -> Quote:
        version = self.version_for(merchant_id, terminal_id, day)
        assignment = self.assignment(merchant_id, terminal_id, day)
        return Quote(
            version, self.fee(version, method, amount_fen, d0=bool(assignment and assignment.d0_settlement))
        )
