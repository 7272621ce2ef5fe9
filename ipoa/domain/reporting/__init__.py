"""Per-period reports for supervisors and boards (docs/domain.md, "What supervisors and boards look at"),
the pure part, one job per module:

  period          the period and scope a report covers, and the report form's parameters
  rate            a share of cases as a percentage
  figures         what a report holds: rates, durations and their percentiles, the figures per day
  workflow_terms  the workflow states and triggers the measures count by
  measures        working the figures out from a period's rows (ipoa/adapters/report_queries.py reads them)
  board           the board view: targets (workflows/board.yaml), RAG rating and trend

The use case (ipoa/service/reports.py) reads the rows in one unit of work and hands them here; the
report pages and the CSV are ipoa/web/reports.py's and ipoa/service/report_export.py's.
No Flask, SQLAlchemy, Redis or Twilio.
"""
