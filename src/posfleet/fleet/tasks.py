"""The fleet's jobs for the scheduler: device commands that were not answered in time expire; the fleet's
counters are folded."""

from __future__ import annotations

from django.tasks import task

from posfleet.fleet.services import device_commands_expire, tally_compact
from posfleet.platform.context import Actor


@task
def device_commands_expire_task() -> dict[str, int]:
    return {"expired": device_commands_expire(actor=Actor.job("device_commands_expire"))}


@task
def tally_compact_task() -> dict[str, int]:
    return {"rows": tally_compact()}
