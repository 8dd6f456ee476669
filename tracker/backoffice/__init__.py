"""The back office: the Django admin for analysts and auditors.

Entry forms generated from the event catalogue, their preview, the deal pages, the auditor's
timeline, replay and verification, the organisations (reference data) and the read-only event
list. It sits beside `tracker.api` and imports `projections`, `deals` and `eventstore`, never
the API; every write goes through `tracker.deals.services`.
"""
