"""The fleet's counters (``TerminalTally``, docs/adr/0034): folding the rows the database's triggers
append into one row per (agent, model, status). The counts read the same before and after: a count is
the SUM of its key's rows, and the fold replaces rows by their sums in one transaction."""

from __future__ import annotations

from django.db import connection, transaction

from posfleet.fleet.models import TerminalTally

_FOLD_POSTGRES = """
WITH gone AS (DELETE FROM fleet_terminaltally RETURNING agent_id, model_id, status, n)
INSERT INTO fleet_terminaltally (agent_id, model_id, status, n)
SELECT agent_id, model_id, status, SUM(n) FROM gone GROUP BY agent_id, model_id, status HAVING SUM(n) <> 0
"""


def tally_compact() -> int:
    """Fold the counters' rows into one per key (zero counts dropped); returns the rows left.

    PostgreSQL: one statement that deletes the rows its snapshot sees and inserts their sums, so rows
    appended meanwhile by other transactions (not yet visible) stay as they are and nothing is counted
    twice or lost; a second fold at the same time waits for the first, then finds its rows gone and
    skips them. SQLite (one writer): the zero rows its triggers leave are dropped."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_FOLD_POSTGRES)
        else:
            TerminalTally.objects.filter(n=0).delete()
    return TerminalTally.objects.count()
