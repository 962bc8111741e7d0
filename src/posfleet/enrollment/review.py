"""The reviewer's vocabulary (审核) as data: the preset reasons for rejecting an application or asking
for more information, what each means to the applicant in plain words, and the verification checklist
of each document kind. Defined once here; the service checks against it
(``services.applications.application_review``), the console's review screen and the API's review guide
show it, the merchant's page and notices put the chosen reasons in words (docs/adr/0030).

Pure Python apart from translation (no ORM): document kinds are their stored codes
(``models.DocumentKind``; a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import TextChoices
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from posfleet.platform.errors import ValidationFailed


class ReviewReason(TextChoices):
    """Why an application is rejected or sent back: the reviewer's short label."""

    ID_UNREADABLE = "id_unreadable", _("ID card photo unreadable")
    ID_EXPIRED = "id_expired", _("ID card expired")
    ID_MISMATCH = "id_mismatch", _("ID card does not match the legal representative")
    LICENCE_UNREADABLE = "licence_unreadable", _("business licence unreadable")
    LICENCE_EXPIRED = "licence_expired", _("business licence expired or revoked")
    NAME_MISMATCH = "name_mismatch", _("name does not match the business licence")
    SCOPE_MISMATCH = "scope_mismatch", _("business scope does not fit the MCC")
    BANK_NAME_MISMATCH = "bank_name_mismatch", _("bank account name mismatch")
    BANK_PROOF_UNREADABLE = "bank_proof_unreadable", _("bank account proof unreadable")
    MISSING_DOCUMENT = "missing_document", _("a required document is missing")
    ADDRESS_INCOMPLETE = "address_incomplete", _("store address incomplete")
    OTHER = "other", _("other (explained in the note)")


R = ReviewReason

# What each reason tells the applicant, in plain words (their language, at the moment they read it).
PLAIN_WORDS: dict[ReviewReason, Promise] = {
    R.ID_UNREADABLE: _(
        "The photo of the ID card cannot be read. Upload a sharp photo of the whole card, with nothing "
        "covered."
    ),
    R.ID_EXPIRED: _("The ID card has expired. Upload a photo of a valid ID card."),
    R.ID_MISMATCH: _(
        "The ID card is not the legal representative's named in the application. Check the name and ID "
        "number, or upload the right ID card."
    ),
    R.LICENCE_UNREADABLE: _(
        "The business licence cannot be read. Upload a sharp photo or scan of the whole licence."
    ),
    R.LICENCE_EXPIRED: _(
        "The business licence has expired or is no longer valid. Upload a valid business licence."
    ),
    R.NAME_MISMATCH: _(
        "The name in the application is not the name on the business licence. Give the name exactly as "
        "the licence writes it."
    ),
    R.SCOPE_MISMATCH: _(
        "The business scope on the licence does not cover the kind of business in the application (MCC)."
    ),
    R.BANK_NAME_MISMATCH: _(
        "The settlement account is not in the name of the business or of its legal representative. Give "
        "an account in that name."
    ),
    R.BANK_PROOF_UNREADABLE: _(
        "The bank account proof cannot be read. Upload a sharp photo or scan of the whole document."
    ),
    R.MISSING_DOCUMENT: _("A required document is missing. Upload every document the application asks for."),
    R.ADDRESS_INCOMPLETE: _(
        "The store address is incomplete. Give the full address where the terminals are installed."
    ),
    R.OTHER: _("See the reviewer's note."),
}


@dataclass(frozen=True)
class CheckItem:
    code: str  # "<document kind>.<item>", e.g. "id_card.readable"
    label: Promise


def _items(kind: str, *items: tuple[str, Promise]) -> tuple[CheckItem, ...]:
    return tuple(CheckItem(f"{kind}.{key}", label) for key, label in items)


# What the reviewer verifies on each document kind before approving.
CHECKLISTS: dict[str, tuple[CheckItem, ...]] = {
    "id_card": _items(
        "id_card",
        ("readable", _("Sharp, the whole card visible, nothing covered")),
        ("valid", _("Not expired")),
        ("name", _("Name is the legal representative's")),
        ("number", _("ID number matches the KYC value")),
    ),
    "business_licence": _items(
        "business_licence",
        ("readable", _("Sharp, the whole licence visible")),
        ("valid", _("Valid, not expired or revoked")),
        ("name", _("Name matches the application's legal name")),
        ("code", _("Credit code matches the KYC value")),
        ("scope", _("Business scope fits the MCC")),
    ),
    "bank_proof": _items(
        "bank_proof",
        ("readable", _("Sharp, the whole document visible")),
        ("holder", _("Account holder is the business or its legal representative")),
        ("account", _("Account number matches the KYC value")),
    ),
}
ALL_ITEMS: frozenset[str] = frozenset(item.code for items in CHECKLISTS.values() for item in items)


def items_of(kinds: Iterable[str]) -> list[str]:
    """Every checklist item of documents of ``kinds``, in the checklists' order."""
    wanted = set(kinds)
    return [item.code for kind, items in CHECKLISTS.items() if kind in wanted for item in items]


def clean_reasons(codes: Sequence[str], note: str, *, required: bool) -> list[str]:
    """The chosen reason codes, each once, in the taxonomy's order. An unknown code, none chosen when
    ``required`` (reject, ask for information), some chosen when not (approve), or "other" without a
    note is refused (422) before anything is read or written."""
    chosen = [str(code).strip() for code in codes]
    for code in chosen:
        if code not in R.values:
            raise ValidationFailed(
                gettext("Unknown reason “%(code)s”.") % {"code": code[:32]},
                field="reasons",
                allowed=list(R.values),
            )
    if required and not chosen:
        raise ValidationFailed(
            gettext("Choose at least one reason."), field="reasons", allowed=list(R.values)
        )
    if not required and chosen:
        raise ValidationFailed(
            gettext("Reasons are given when rejecting or asking for more information, not when approving."),
            field="reasons",
        )
    if R.OTHER in chosen and not note:
        raise ValidationFailed(gettext("Explain “other” in the note."), field="note")
    return [code for code in R.values if code in chosen]


def clean_checked(codes: Sequence[str], present: Iterable[str]) -> list[str]:
    """The ticked checklist items, each once, in the checklists' order. An item that is not on any
    checklist, or belongs to a document the application does not have, is refused (422)."""
    ticked = {str(code).strip() for code in codes}
    allowed = set(items_of(present))
    for code in sorted(ticked):
        if code not in ALL_ITEMS:
            raise ValidationFailed(
                gettext("Unknown checklist item “%(code)s”.") % {"code": code[:48]},
                field="checklist",
                allowed=sorted(allowed),
            )
        if code not in allowed:
            raise ValidationFailed(
                gettext("Checklist item “%(code)s” is for a document this application does not have.")
                % {"code": code},
                field="checklist",
                allowed=sorted(allowed),
            )
    return [code for code in items_of(present) if code in ticked]


def unticked(present: Iterable[str], checked: Iterable[str]) -> list[str]:
    """The items of the present documents not ticked: approving needs none left."""
    done = set(checked)
    return [code for code in items_of(present) if code not in done]


def item_label(code: str) -> str:
    for items in CHECKLISTS.values():
        for item in items:
            if item.code == code:
                return str(item.label)
    return code


def reason_label(code: str) -> str:
    return str(R(code).label) if code in R.values else code


def in_plain_words(codes: Iterable[str]) -> list[str]:
    """What the chosen reasons tell the applicant, in the active language (unknown codes are skipped)."""
    return [str(PLAIN_WORDS[R(code)]) for code in codes if code in R.values]


def explained(codes: Iterable[str], note: str) -> str:
    """The reasons in plain words, then the reviewer's note: one text for the applicant ("other" says
    nothing of its own when the note is there)."""
    parts = in_plain_words(code for code in codes if code != R.OTHER or not note)
    if note:
        parts.append(note)
    return " ".join(parts)
