"""checks — the rules: checks.yaml compiled to Great Expectations and run on a batch's frame or against the store,
validation of a batch of submissions, the day's Data Docs, and the county-facing contract that lists every rule.

May import: core, store, intake.
"""
