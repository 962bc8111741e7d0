"""Organisations, users, roles, API tokens and login throttling."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrgKind(models.TextChoices):
    PROVIDER = "provider", _("provider")
    AGENT = "agent", _("agent")
    MERCHANT = "merchant", _("merchant")


class Role(models.TextChoices):
    ADMIN = "admin", _("platform admin")
    REVIEWER = "reviewer", _("reviewer")
    WAREHOUSE = "warehouse", _("warehouse")
    AGENT = "agent", _("agent")
    MERCHANT = "merchant", _("merchant")


# The provider's own staff: they see every tenant (what they may change is each context's rules.py).
PROVIDER_ROLES: frozenset[str] = frozenset({Role.ADMIN, Role.REVIEWER, Role.WAREHOUSE})

# Which roles a user of each kind of organisation may hold.
ROLES_BY_ORG_KIND: dict[str, set[str]] = {
    OrgKind.PROVIDER: set(PROVIDER_ROLES),
    OrgKind.AGENT: {Role.AGENT},
    OrgKind.MERCHANT: {Role.MERCHANT},
}


class Organisation(models.Model):
    """The provider, an agent (possibly under another agent) or a merchant.

    ``path`` is a materialised path ("/1/7/42/"): an agent sees every organisation whose path starts
    with its own, which is how sub-agents' merchants and terminals become visible to their parent.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=OrgKind.choices)
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("parent"),
    )
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind=OrgKind.PROVIDER, parent__isnull=True)
                | models.Q(~models.Q(kind=OrgKind.PROVIDER), parent__isnull=False),
                name="org_parent_by_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        creating = self.pk is None
        super().save(*args, **kwargs)  # type: ignore[arg-type]
        if creating or not self.path:
            prefix = self.parent.path if self.parent_id and self.parent else "/"
            self.path = f"{prefix}{self.pk}/"
            Organisation.objects.filter(pk=self.pk).update(path=self.path)

    def contains(self, other: Organisation) -> bool:
        return other.path.startswith(self.path)


class User(AbstractUser):
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="users",
        verbose_name=_("organisation"),
        null=True,
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    language = models.CharField(_("language"), max_length=8, default="zh-hans")

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.username

    @property
    def is_provider_staff(self) -> bool:
        return self.role in PROVIDER_ROLES


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A machine client's credential. Only the SHA-256 of the secret is stored; it is shown once."""

    class Scope(models.TextChoices):
        READ = "read", _("read only")
        WRITE = "write", _("read and write")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class LoginThrottle(models.Model):
    """Failed logins per username — kept for unknown usernames too, so lockout reveals nothing."""

    username_digest = models.CharField(max_length=64, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True)
    locked_until = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"{self.username_digest[:8]}: {self.failures}"
