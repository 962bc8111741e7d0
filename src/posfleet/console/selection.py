"""A person's selection on the device list (ADR 0029): terminals picked on any page, pasted as a list
of SNs or taken from every match of a filter, kept across searches until cleared or the next sign-in.

Rows of ``console.TerminalSelection``, one per terminal: each tick is its own insert or delete, so two
quick ticks (or a page refresh saving the session meanwhile) never lose one. Reads always go through
the person's scope (``fleet.selectors.terminals_visible_to``) again; actions go through the services.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from posfleet.console.models import TerminalSelection
from posfleet.fleet import selectors as fleet
from posfleet.fleet.models import Terminal
from posfleet.iam.models import User

SELECTION_MAX = 10_000  # terminals in one selection (and SNs in one paste)
SN_MAX_LENGTH = 32
_CHUNK = 1000  # SNs or ids per query (well under every database's parameter limit)
# Newlines, spaces, tabs, commas and semicolons, also the full-width ones a Chinese keyboard types.
_SEPARATORS = re.compile(r"[\s,;，；、]+")


def parse_pasted(text: str) -> list[str]:
    """The SNs of a pasted list, upper-cased, duplicates dropped, in the order given."""
    seen: dict[str, None] = {}
    for token in _SEPARATORS.split(text or ""):
        sn = token.strip().upper()
        if sn:
            seen.setdefault(sn, None)
    return list(seen)


def _rows(user: User) -> QuerySet[TerminalSelection]:
    return TerminalSelection.objects.filter(user=user)


def count(user: User) -> int:
    return _rows(user).count()


def selected_q(user: User) -> Exists:
    """Whether a terminal is in ``user``'s selection, for a page's rows (one indexed probe each)."""
    return Exists(_rows(user).filter(terminal=OuterRef("pk")))


def only_selected(terminals: QuerySet[Terminal], user: User) -> QuerySet[Terminal]:
    """``terminals`` cut to ``user``'s selection (a semi-join the database may drive from the selection:
    a few selected terminals of a large fleet are found without probing every terminal)."""
    return terminals.filter(pk__in=_rows(user).values("terminal_id"))


def selected_terminals(user: User) -> QuerySet[Terminal]:
    """The selected terminals ``user`` may still see (one moved out of their scope drops out)."""
    return only_selected(fleet.terminals_visible_to(user), user)


def selected_among(user: User, terminal_ids: Iterable[int]) -> set[int]:
    """Which of ``terminal_ids`` (a page's rows) are selected."""
    ids = list(terminal_ids)
    if not ids:
        return set()
    return set(_rows(user).filter(terminal_id__in=ids).values_list("terminal_id", flat=True))


def selected_sns(user: User) -> list[str]:
    """The SNs of the selection ``user`` may still see, in SN order."""
    return list(selected_terminals(user).order_by("sn").values_list("sn", flat=True))


def digest(sns: Sequence[str]) -> str:
    """A fingerprint of a set of SNs: the action dialog confirms exactly the terminals it showed."""
    return hashlib.sha256("\n".join(sorted(sns)).encode()).hexdigest()[:32]


@dataclass
class Outcome:
    """What a change of the selection did, in words for the toolbar."""

    added: int = 0
    removed: int = 0
    refused: str = ""  # why nothing was added (the bound)
    unknown: list[str] = field(default_factory=list)  # pasted SNs not found in the person's scope
    pasted: int = 0

    @property
    def message(self) -> str:
        if self.refused:
            return self.refused
        if self.pasted:
            return ngettext(
                "%(n)s SN pasted: %(found)s found, %(added)s added to the selection.",
                "%(n)s SNs pasted: %(found)s found, %(added)s added to the selection.",
                self.pasted,
            ) % {
                "n": f"{self.pasted:,}",
                "found": f"{self.pasted - len(self.unknown):,}",
                "added": f"{self.added:,}",
            }
        if self.added:
            return ngettext(
                "%(n)s terminal added to the selection.",
                "%(n)s terminals added to the selection.",
                self.added,
            ) % {"n": f"{self.added:,}"}
        return ""


def _over_the_bound(user: User, new: int) -> str:
    """Why adding ``new`` more terminals is refused, or "" when the selection may take them."""
    if new <= 0:
        return ""
    held = count(user)
    if held + new <= SELECTION_MAX:
        return ""
    return _(
        "A selection holds at most %(max)s terminals: it has %(held)s and these would add %(new)s. "
        "Narrow the search or clear the selection first; nothing was added."
    ) % {"max": f"{SELECTION_MAX:,}", "held": f"{held:,}", "new": f"{new:,}"}


def add(user: User, terminal_ids: Sequence[int]) -> Outcome:
    """Add terminals (already read through ``user``'s scope) to the selection, all or none."""
    ids = list(dict.fromkeys(terminal_ids))
    with transaction.atomic():
        # One person's changes one at a time (the bound holds under two quick requests).
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        held = _held_of(user, ids)
        new = [pk for pk in ids if pk not in held]
        refused = _over_the_bound(user, len(new))
        if refused:
            return Outcome(refused=refused)
        TerminalSelection.objects.bulk_create(
            [TerminalSelection(user=user, terminal_id=pk) for pk in new],
            batch_size=500,
            ignore_conflicts=True,
        )
    return Outcome(added=len(new))


def _held_of(user: User, ids: list[int]) -> set[int]:
    held: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        held |= selected_among(user, ids[start : start + _CHUNK])
    return held


def add_sns(user: User, sns: Sequence[str]) -> Outcome:
    """Add the terminals of ``sns`` that ``user`` may see; the others are reported, not dropped."""
    if len(sns) > SELECTION_MAX:
        return Outcome(
            refused=_("Paste at most %(max)s SNs at a time; this list has %(n)s. Nothing was added.")
            % {"max": f"{SELECTION_MAX:,}", "n": f"{len(sns):,}"}
        )
    found: dict[str, int] = {}
    wanted = [sn for sn in sns if len(sn) <= SN_MAX_LENGTH]
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = fleet.terminals_visible_to(user).filter(sn__in=chunk).order_by().values_list("sn", "pk")
        found.update(rows)
    outcome = add(user, [found[sn] for sn in sns if sn in found])
    outcome.pasted = len(sns)
    outcome.unknown = [sn for sn in sns if sn not in found]
    return outcome


def add_matching(user: User, terminals: QuerySet[Terminal]) -> Outcome:
    """Add every terminal of ``terminals`` (a search in ``user``'s scope), within the bound."""
    ids = list(terminals.order_by().values_list("pk", flat=True)[: SELECTION_MAX + 1])
    if len(ids) > SELECTION_MAX:
        return Outcome(
            refused=_(
                "More than %(max)s terminals match: a selection holds at most %(max)s. "
                "Narrow the search; nothing was added."
            )
            % {"max": f"{SELECTION_MAX:,}"}
        )
    return add(user, ids)


def remove(user: User, terminal_ids: Sequence[int]) -> Outcome:
    removed = 0
    ids = list(terminal_ids)
    for start in range(0, len(ids), _CHUNK):
        removed += _rows(user).filter(terminal_id__in=ids[start : start + _CHUNK]).delete()[0]
    return Outcome(removed=removed)


def clear(user: User) -> Outcome:
    return Outcome(removed=_rows(user).delete()[0])


def visible_ids(user: User, sns: Sequence[str]) -> list[int]:
    """The ids of the terminals of ``sns`` (a page's rows) that ``user`` may see."""
    wanted = [sn for sn in sns if len(sn) <= SN_MAX_LENGTH][:_CHUNK]
    return list(fleet.terminals_visible_to(user).filter(sn__in=wanted).values_list("pk", flat=True))


def clear_on_sign_in(sender: object, user: User, **kwargs: object) -> None:
    """A new sign-in starts with an empty selection (``user_logged_in``): what was picked yesterday is
    not acted on by surprise today."""
    _rows(user).delete()
