"""KYC (实名认证) data of an application: what is asked, how it is checked, sealed and read.

Values and files are sealed with the application's data key (``platform.keyring``); nothing readable
is stored. Only reviewers and admins may open them, and every opening is an audit row.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext as _

from posfleet.enrollment.models import Application, DocumentKind, KycDocument
from posfleet.platform import keyring
from posfleet.platform.errors import ValidationFailed

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# How the review screen shows a document of each stored content type inline (an <img> or a framed PDF);
# any other type is offered as a download only.
PREVIEW = {"application/pdf": "pdf", "image/jpeg": "image", "image/png": "image"}
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
SIGNATURES = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}


@dataclass(frozen=True)
class Kyc:
    legal_person: str  # 法定代表人 / 经营者
    id_number: str  # 居民身份证号码
    licence_no: str  # 统一社会信用代码 (an individual business may have none)
    bank_name: str
    bank_account: str
    account_holder: str

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def id_number_valid(value: str) -> bool:
    """A resident ID number (GB 11643): 17 digits and a check character."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


def credit_code_valid(value: str) -> bool:
    """A unified social credit code (GB 32100): 18 characters, the last a check character."""
    if len(value) != 18 or any(c not in CREDIT_CODE_CHARS for c in value):
        return False
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(value[:17], CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31] == value[17]


def clean_kyc(raw: dict[str, object], *, enterprise: bool) -> Kyc:
    """Checked and normalised KYC values; the first problem raises (422) naming its field."""
    values = {name: str(raw.get(name) or "").strip() for name in Kyc.field_names()}
    values["id_number"] = values["id_number"].upper()
    values["licence_no"] = values["licence_no"].upper().replace(" ", "")
    values["bank_account"] = re.sub(r"[\s-]", "", values["bank_account"])
    required = ["legal_person", "id_number", "bank_name", "bank_account", "account_holder"]
    if enterprise:
        required.append("licence_no")
    for name in required:
        if not values[name]:
            raise ValidationFailed(_("This KYC field is required."), field=name)
    for name in ("legal_person", "bank_name", "account_holder"):
        if len(values[name]) > 100:
            raise ValidationFailed(_("At most 100 characters."), field=name)
    if not id_number_valid(values["id_number"]):
        raise ValidationFailed(
            _("This is not a valid ID card number (18 characters, the last a check digit or X)."),
            field="id_number",
        )
    if values["licence_no"] and not credit_code_valid(values["licence_no"]):
        raise ValidationFailed(
            _("This is not a valid unified social credit code (18 characters with a check character)."),
            field="licence_no",
        )
    if not re.fullmatch(r"\d{12,30}", values["bank_account"]):
        raise ValidationFailed(_("A bank account number is 12 to 30 digits."), field="bank_account")
    return Kyc(**values)


def _where(application: Application) -> str:
    return f"enrollment_application:{application.number}:kyc"


def seal_kyc(application: Application, kyc: Kyc) -> bytes:
    return keyring.seal(application.data_key, json.dumps(asdict(kyc)).encode(), _where(application))


def open_kyc(application: Application) -> Kyc | None:
    """The sealed values (None when none were given). Callers audit the read (``applications``)."""
    if not application.kyc_sealed:
        return None
    data = json.loads(keyring.unseal(application.data_key, application.kyc_sealed, _where(application)))
    return Kyc(**data)


@dataclass(frozen=True)
class Upload:
    kind: str
    name: str
    content: bytes


def check_upload(upload: Upload) -> str:
    """The file's content type, from its first bytes (the name and the browser's claim are not trusted)."""
    if upload.kind not in DocumentKind.values:
        raise ValidationFailed(_("Unknown document kind."), field="kind", allowed=list(DocumentKind.values))
    limit = settings.POSFLEET_APPLICATIONS["DOCUMENT_MAX_BYTES"]
    if not upload.content:
        raise ValidationFailed(_("The file is empty."), field=upload.kind)
    if len(upload.content) > limit:
        raise ValidationFailed(
            _("The file is larger than %(mb)s MB.") % {"mb": limit // (1024 * 1024)}, field=upload.kind
        )
    for content_type, signatures in SIGNATURES.items():
        if upload.content.startswith(signatures):
            return content_type
    raise ValidationFailed(_("Upload a PDF, JPEG or PNG file."), field=upload.kind)


def _doc_where(application: Application, kind: str, part: str) -> str:
    return f"enrollment_kycdocument:{application.number}:{kind}:{part}"


def sealed_document(
    application: Application, upload: Upload, content_type: str, user_id: int, at: datetime
) -> KycDocument:
    return KycDocument(
        application=application,
        kind=upload.kind,
        content_type=content_type,
        size=len(upload.content),
        name_sealed=keyring.seal(
            application.data_key, upload.name[:200].encode(), _doc_where(application, upload.kind, "name")
        ),
        content_sealed=keyring.seal(
            application.data_key, upload.content, _doc_where(application, upload.kind, "content")
        ),
        uploaded_by_id=user_id,
        uploaded_at=at,
    )


def open_document(document: KycDocument) -> tuple[str, bytes]:
    application = document.application
    name = keyring.unseal(
        application.data_key, document.name_sealed, _doc_where(application, document.kind, "name")
    ).decode()
    content = keyring.unseal(
        application.data_key, document.content_sealed, _doc_where(application, document.kind, "content")
    )
    return name, content
