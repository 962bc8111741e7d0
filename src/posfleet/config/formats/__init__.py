"""The console's one way to write a date and a moment in each language (``FORMAT_MODULE_PATH``).

Every page, PDF, notice and e-mail names these formats (``DATE_FORMAT``, ``DATETIME_FORMAT``...) and
never spells a pattern of its own (``tests/test_date_formats.py`` keeps it so): English "7 Dec 2026",
"7 Dec 2026 14:05"; Chinese "2026年12月7日", "2026年12月7日 14:05". The short formats are the same as the
long ones, so a table and a sentence agree. ISO 8601 (``2026-12-07``) is for machines only: the API,
CSV/Excel exports, ``<time datetime>`` and form inputs.
"""
