"""Schemas of /notifications and /webhook-endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema


class InboxItemOut(Schema):
    id: int
    event_id: str
    event_type: str
    notice_label: str = Field(description="What kind of notice it is, in the caller's language.")
    title: str = Field(description="In the caller's language (rendered when read).")
    body: str = Field(description="In the caller's language, with the dates and amounts that matter.")
    link: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(Schema):
    items: list[InboxItemOut]
    next_cursor: str | None
    unread: int = Field(description="Unread items in the whole inbox.")


RowId = Annotated[int, Field(ge=1, le=2**63 - 1, strict=True)]


class MarkReadIn(Schema):
    """Either `ids` or `"all": true`; a body with neither (or both) is refused (422)."""

    ids: list[RowId] | None = Field(
        None, min_length=1, max_length=500, description="Items to mark read (1 to 500)."
    )
    all: bool = Field(False, strict=True, description="`true` marks every unread item read.")


class MarkedOut(Schema):
    marked: int


class DeliveryQuery(Schema):
    status: Literal["pending", "sent", "failed", "dead"] | None = None
    channel: Literal["email", "sms", "webhook", "inbox"] | None = None
    event_id: str | None = Field(None, max_length=36)


class DeliveryOut(Schema):
    id: int
    event_id: str
    event_type: str
    notice: str
    notice_label: str = Field(description="The notice kind in the caller's language.")
    channel: str
    organisation: str
    recipient: str = Field(description="A user name, 'contact' (the merchant's own address) or 'endpoint N'.")
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    escalation_of: int | None
    created_at: datetime
    sent_at: datetime | None


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None


class EndpointIn(Schema):
    url: str = Field(max_length=500)
    description: str = Field("", max_length=200)
    event_types: list[str] = Field(
        default_factory=list, description="Empty: every event of your organisation."
    )


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    previous_secret_valid_until: datetime | None
    created_at: datetime


class EndpointSecretOut(EndpointOut):
    secret: str | None = Field(
        description="The signing secret (Standard Webhooks, whsec_...), shown once; a replay answers null."
    )


class EndpointPage(Schema):
    items: list[EndpointOut]
    next_cursor: str | None


class RotateIn(Schema):
    overlap_hours: int = Field(24, ge=0, le=168, description="How long the old secret keeps signing too.")
