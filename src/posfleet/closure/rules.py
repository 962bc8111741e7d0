"""Who may do what with a closure case (django-rules). Asked on the case's merchant, so the same rule
answers before a case exists (requesting) and after (withdrawing, reading)."""

from __future__ import annotations

import rules

from posfleet.iam.rules import is_admin, is_agent, is_merchant, is_provider_staff, is_reviewer, is_warehouse
from posfleet.parties.rules import is_the_merchant, signed_the_merchant

# On a merchant: the merchant itself, the agent that signed it (or one above), the provider's admins.
its_people = is_admin | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant)

rules.add_perm("closure.request_closure", its_people)
rules.add_perm("closure.withdraw_closure", its_people)
rules.add_perm(
    "closure.view_closure",
    is_provider_staff | (is_merchant & is_the_merchant) | (is_agent & signed_the_merchant),
)
# Reviewers decide (the service also refuses the person who asked: maker-checker).
rules.add_perm("closure.review_closure", is_admin | is_reviewer)
# The returned device: received and graded at the warehouse.
rules.add_perm("closure.handle_return", is_admin | is_warehouse)
# Giving the parcel's tracking number: whoever may withdraw.
rules.add_perm("closure.report_shipment", its_people)
# Starting a step that needs attention again (after a channel refused, say): the provider's admins.
rules.add_perm("closure.retry_step", is_admin)
