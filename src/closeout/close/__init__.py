"""close — closing a day: load a group of units (archive, parse, validate, write one verdict each), reconcile the day,
re-close a published day or a range, 标记缺报, and the day's status that notices and sign-off read.

May import: core, store, intake, checks.
"""
