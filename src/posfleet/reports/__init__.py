"""Reports (报表): the fleet, its activity and its money over time, read from the other contexts'
selectors in the reader's scope (docs/adr/0028). Each report is one read model — ``selectors.py``
returns its rows — that the console draws as a chart and a table, exports as CSV and Excel
(``exports.py``) and the API answers (``/api/v1/reports/<name>``)."""
