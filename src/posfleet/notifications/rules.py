"""Who may see deliveries and manage webhooks."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_provider_staff

rules.add_perm("notifications.view_deliveries", is_provider_staff)
rules.add_perm("notifications.resend", is_admin)
# Any user of an organisation (through a write token or the console) manages its own endpoints.
rules.add_perm("notifications.manage_webhooks", rules.is_authenticated)
