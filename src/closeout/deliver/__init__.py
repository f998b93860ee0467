"""deliver — mail: the at-most-once transport, the bulletin's message, the notices of the same-day loop (receipts,
reminders, the deadline alert), the re-close summary, and the local SMTP sink. The transport sends what it is
given; whether an edition may go out is decided in publish.

May import: core, store, intake, checks, close, publish.
"""
