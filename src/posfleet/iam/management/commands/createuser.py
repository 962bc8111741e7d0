"""`posfleet createuser USERNAME --role ROLE --org WHERE`: a user in an organisation, audited."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posfleet.iam.models import Organisation, OrgKind, Role
from posfleet.iam.services import user_create
from posfleet.iam.stepup import second_factor_required
from posfleet.platform.context import Actor
from posfleet.platform.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create a user. --org is 'provider', an agent code or a merchant MID; the role must fit it "
        "(provider: admin/reviewer/warehouse; agent: agent; merchant: merchant)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--org", default="provider", help="'provider', an agent code or a merchant MID")
        parser.add_argument("--email", default="")
        parser.add_argument("--language", default="zh-hans", choices=["zh-hans", "en"])
        parser.add_argument("--superuser", action="store_true", help="may also use /admin/")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = self._organisation(options["org"])
        if options["password_stdin"]:
            password = input().strip()
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        if len(password) < 10:
            raise CommandError("use a password of at least 10 characters")
        try:
            user = user_create(
                actor=Actor.system(f"cli:{getpass.getuser()}"),
                username=options["username"],
                password=password,
                organisation=organisation,
                role=options["role"],
                email=options["email"],
                language=options["language"],
            )
        except DomainError as exc:
            raise CommandError(str(exc.detail)) from exc
        if options["superuser"]:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        self.stdout.write(
            self.style.SUCCESS(
                f"created {user.username} ({user.role}) in {organisation.name}; "
                + (
                    "they set up a TOTP authenticator at their first login, after the password"
                    if second_factor_required(user)
                    else "they may turn on a TOTP authenticator at /accounts/security/"
                )
            )
        )

    def _organisation(self, where: str) -> Organisation:
        if where == "provider":
            org = Organisation.objects.filter(kind=OrgKind.PROVIDER).first()
        else:
            org = (
                Organisation.objects.filter(agent__code=where).first()
                or Organisation.objects.filter(merchant__mid=where).first()
            )
        if org is None:
            raise CommandError(f"no organisation {where!r} (use 'provider', an agent code or a MID)")
        return org
