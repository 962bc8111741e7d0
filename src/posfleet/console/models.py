"""The console's own state: the terminals a person has selected on the device list (ADR 0029)."""

from __future__ import annotations

from django.db import models


class TerminalSelection(models.Model):
    """One terminal in a person's selection: kept across searches and pages until cleared (or the next
    sign-in), bounded by ``console.selection.SELECTION_MAX``. A row says nothing about what the person
    may do: every read goes through their scope again and every action through its service."""

    user = models.ForeignKey("iam.User", on_delete=models.CASCADE, related_name="+")
    terminal = models.ForeignKey("fleet.Terminal", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "terminal"], name="terminal_selection_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.terminal_id}"
