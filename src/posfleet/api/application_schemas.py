"""Schemas of /applications (申请). KYC values appear in ``KycIn`` (what the applicant sends) and in
``KycOut`` (the audited read for reviewers) only: never in a list or a detail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema

from posfleet.enrollment.models import ApplicationKind, DocumentKind
from posfleet.enrollment.review import ALL_ITEMS, ReviewReason
from posfleet.enrollment.states import ApplicationCommand, ApplicationStatus

StrictBool = Annotated[bool, Field(strict=True)]
Sn = Annotated[str, Field(min_length=1, max_length=32)]


# -- input -----------------------------------------------------------------------------------------


class KycIn(Schema):
    """实名认证: checked by the service (ID number and credit code check characters, account digits)."""

    legal_person: str = Field("", max_length=100, description="法定代表人 / 经营者.")
    id_number: str = Field("", max_length=32, description="居民身份证号码 (18 characters).")
    licence_no: str = Field(
        "", max_length=32, description="统一社会信用代码 (18 characters); required for an enterprise."
    )
    bank_name: str = Field("", max_length=100)
    bank_account: str = Field("", max_length=64, description="12 to 30 digits (spaces and dashes ignored).")
    account_holder: str = Field("", max_length=100)


class ApplicationIn(Schema):
    """A new merchant (applicant fields, KYC), more terminals for an existing merchant (`merchant`, or
    the caller's own merchant; the applicant fields left empty are taken from the merchant's record),
    or a re-application of a closed merchant (`merchant`, KYC again). Documents are uploaded after,
    one by one, to `/applications/{number}/documents`."""

    merchant_kind: str = Field("", max_length=16, description="individual or enterprise.")
    shop_name: str = Field("", max_length=200)
    legal_name: str = Field("", max_length=200)
    mcc: str = Field("", max_length=4, description="Merchant category code (4 digits).")
    contact_name: str = Field("", max_length=100)
    contact_phone: str = Field("", max_length=32)
    contact_email: str = Field("", max_length=254)
    store_name: str = Field("", max_length=200)
    city: str = Field("", max_length=64)
    address: str = Field("", max_length=255, description="Where the terminals are delivered and installed.")
    terminal_kind: str = Field(
        max_length=16, description="traditional, smart, e_signature, wireless or mpos."
    )
    terminal_count: int = Field(strict=True, description="Terminals asked for (1–50).")
    plan: str = Field("standard", min_length=1, max_length=40, description="Rate plan code.")
    accept_offer: StrictBool = Field(
        description="The applicant read and accepts the standard contract offer (must be true)."
    )
    kyc: KycIn | None = Field(None, description="Required except for more terminals of an active merchant.")
    agent: str = Field(
        "",
        max_length=16,
        description="Agent code: a sub-agent of the caller's agent, or for an admin any agent.",
    )
    merchant: str = Field(
        "", max_length=15, description="MID of an existing merchant (more terminals, re-application)."
    )


class ApplicationQuery(Schema):
    status: list[ApplicationStatus] = Field(default_factory=list, description="Repeat for several statuses.")
    kind: list[ApplicationKind] = Field(default_factory=list, description="Repeat for several kinds.")


class RespondIn(Schema):
    note: str = Field(min_length=1, max_length=2000, description="What was changed or added.")
    kyc: KycIn | None = Field(None, description="Corrected KYC values, if the reviewer asked for them.")


class ReviewIn(Schema):
    decision: Literal["approve", "reject", "needs_info"]
    reasons: list[ReviewReason] = Field(
        default_factory=list,
        max_length=len(ReviewReason.values),
        description="The preset reasons (GET /applications/review-guide): at least one for `reject` and "
        "`needs_info`, none for `approve`. `other` needs `reason`.",
    )
    reason: str = Field(
        "",
        max_length=2000,
        description="The reviewer's note, which the applicant reads; for needs_info: what is missing.",
    )
    checklist: list[Annotated[str, Field(max_length=48)]] = Field(
        default_factory=list,
        max_length=len(ALL_ITEMS),
        description="The checklist items ticked (codes from the review guide) of the documents present; "
        "`approve` needs every one of them.",
    )


class AllocateIn(Schema):
    sns: list[Sn] | None = Field(
        None,
        max_length=50,
        description="Exactly `terminal_count` SNs from the agent's free stock; omit for the first free ones.",
    )


class ShipIn(Schema):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_no: str = Field(min_length=1, max_length=64)


class TestIn(Schema):
    checks: dict[str, StrictBool] = Field(
        max_length=10, description="swipe, scan, print: true when passed; a check left out failed."
    )
    note: str = Field("", max_length=2000)


# -- output ----------------------------------------------------------------------------------------


class ApplicationOut(Schema):
    number: str
    kind: ApplicationKind
    kind_label: str
    status: ApplicationStatus
    status_label: str
    shop_name: str
    merchant_kind: str
    agent: str = Field(description="Agent code.")
    merchant: str | None = Field(description="MID: given for more terminals, opened on approval otherwise.")
    previous_merchant: str | None = Field(description="MID of the closed merchant re-applying.")
    terminal_kind: str
    terminal_count: int
    plan: str = Field(description="Rate plan code.")
    submitted_at: datetime
    review_due_at: datetime
    decided_at: datetime | None
    completed_at: datetime | None


class ApplicationPage(Schema):
    items: list[ApplicationOut]
    next_cursor: str | None


class OfferOut(Schema):
    """The standard contract offer the applicant accepted; each terminal's contract is signed with it
    when the terminal is installed."""

    term_months: int
    annual_fee_fen: int
    annual_fee_display: str
    deposit_fen: int
    deposit_display: str
    min_term_months: int
    penalty_rule: str
    penalty_fixed_fen: int
    penalty_monthly_fen: int
    penalty_cap_fen: int | None
    recovery_fee_fen: int
    recovery_value_fen: int = Field(
        description="Credited at closure when the device comes back as new (grade A)."
    )
    damage_prices: dict[str, int]


class LineOut(Schema):
    sn: str
    tid: str | None
    status: str = Field(description="The terminal's status.")
    allocated_at: datetime
    installed_at: datetime | None
    checks: dict[str, bool] = Field(description="The last test transaction's checks (empty before one).")
    activated_at: datetime | None
    contract_id: int | None = Field(description="The service contract signed at installation.")


class DocumentOut(Schema):
    """A KYC document that is present (its name and content are sealed: read them at
    `/applications/{number}/documents/{id}`)."""

    id: int
    kind: DocumentKind
    kind_label: str
    content_type: str
    size: int = Field(description="Bytes.")
    uploaded_at: datetime


class StepOut(Schema):
    key: str
    label: str
    state: Literal["done", "current", "todo", "failed"]


class ReasonOut(Schema):
    code: ReviewReason
    label: str = Field(description="The reviewer's short label, in the caller's language.")
    text: str = Field(description="What it tells the applicant, in plain words, in the caller's language.")


class CheckItemOut(Schema):
    code: str = Field(description="`<document kind>.<item>`, as ticked in the review's `checklist`.")
    label: str


class ChecklistOut(Schema):
    kind: DocumentKind
    kind_label: str
    items: list[CheckItemOut]


class ReviewGuideOut(Schema):
    reasons: list[ReasonOut] = Field(description="The preset reasons for `reject` and `needs_info`.")
    checklists: list[ChecklistOut] = Field(description="What a reviewer verifies on each document kind.")


class ApplicationDetailOut(ApplicationOut):
    legal_name: str
    mcc: str
    contact_name: str
    contact_phone: str
    contact_email: str
    contact_masked: bool = Field(description="True when contact data is masked for the caller.")
    store_name: str
    city: str
    address: str
    kyc_given: bool = Field(
        description="KYC values were given (they are read at /applications/{number}/kyc)."
    )
    kyc_checked_on: date | None
    documents: list[DocumentOut]
    missing_documents: list[DocumentKind] = Field(description="Required before approval.")
    review_overdue: bool = Field(description="Waiting for review past `review_due_at`.")
    info_request: str = Field(description="The reviewer's note when asking for information (needs_info).")
    decision_reason: str = Field(description="The reviewer's note with the decision.")
    review_reasons: list[ReasonOut] = Field(
        description="The preset reasons of the last rejection or request for information."
    )
    carrier: str
    tracking_no: str
    shipped_at: datetime | None
    delivered_at: datetime | None
    eligibility: dict[str, Any] | None = Field(
        description="The re-application assessment, when one was made."
    )
    offer: OfferOut
    lines: list[LineOut]
    steps: list[StepOut] = Field(description="The progress picture, in order (the console shows the same).")
    next_step: str = Field(description="What happens next, in plain words, in the caller's language.")
    actions: list[ApplicationCommand] = Field(
        description="The steps the caller may take now (from the application's transition table, the "
        "caller's permissions and maker-checker): the buttons the console shows."
    )


class DocumentUploadedOut(DocumentOut):
    application: str = Field(description="The application number.")


class TestOut(Schema):
    sn: str
    passed: bool
    failed: list[str] = Field(description="The checks that failed; fix and test again.")
    completed: bool = Field(description="This was the last terminal: the application is completed.")
    line: LineOut
    application_status: ApplicationStatus


class KycValuesOut(Schema):
    legal_person: str
    id_number: str
    licence_no: str
    bank_name: str
    bank_account: str
    account_holder: str


class KycOut(Schema):
    number: str
    kyc_checked_on: date | None
    values: KycValuesOut | None = Field(description="Null when none were given (more terminals).")
