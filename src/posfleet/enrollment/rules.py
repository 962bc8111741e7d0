"""Who may renew a terminal's service: staff, the agent that signed the merchant, the merchant."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

rules.add_perm(
    "enrollment.renew_service", is_admin | (is_agent & signed_the_merchant) | (is_merchant & is_the_merchant)
)
