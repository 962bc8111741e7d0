"""What every management command shares: who acts (``--user`` or the system) and the raw output stream
rich writes to."""

from __future__ import annotations

import getpass
import os
from typing import TextIO, cast

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from posfleet.platform.context import Actor


def raw_stream(wrapper: object) -> TextIO:
    """The stream under a management command's OutputWrapper (which would add newlines to the
    pieces rich writes)."""
    return cast(TextIO, getattr(wrapper, "_out", wrapper))


def cli_actor(username: str | None) -> Actor:
    """``--user NAME`` acts as that user (permissions checked); otherwise the system, named after the
    operating-system user running the command."""
    if username:
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user {username!r}", returncode=2)
        return Actor.for_user(user, request_id="cli")
    try:
        who = getpass.getuser()
    except (OSError, KeyError):
        who = f"uid{os.getuid()}"
    return Actor.system(f"cli:{who}")
