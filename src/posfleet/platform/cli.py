"""What every management command shares: who acts (``--user`` or the system) and the raw output stream
rich writes to."""

from __future__ import annotations

import getpass
import os
from typing import TextIO, cast

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from posfleet.platform.context import Actor


def host_port(value: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``host`` (the default port) as (host, port); the host defaults to
    127.0.0.1. Anything else raises CommandError (the command's usage error)."""
    host, colon, port = value.rpartition(":")
    if not colon:
        host, port = value, str(default_port)
    number = int(port) if port.isdigit() else 0
    if not 0 < number < 65536:
        raise CommandError(f"not a host:port address: {value!r}", returncode=2)
    return host or "127.0.0.1", number


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
