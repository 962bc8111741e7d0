"""Who may make and read a merchant's data backup (django-rules), asked on the merchant: its own data,
so the merchant itself, the agent that signed it (or one above), and the provider's staff. Jobs and the
system pass (platform/context.py). Imported by ``closure.backup``; to be folded into closure/rules.py."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

data_people = is_provider_staff | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant)

rules.add_perm("closure.create_backup", data_people)
rules.add_perm("closure.view_backup", data_people)
# Destroying a closed merchant's personal data at the end of retention: the scheduler's job, or an
# admin running the sweep by hand.
rules.add_perm("closure.shred_data", is_admin)
