"""Who may read reports (django-rules): the provider's staff (the whole fleet) and agents (their own
subtree, ``scope.report_viewer``). Merchants have their own money pages and statements instead."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_agent, is_provider_staff

rules.add_perm("reports.view_reports", is_provider_staff | is_agent)
