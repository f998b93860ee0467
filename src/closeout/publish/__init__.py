"""publish — what the day says and how it reads: the bulletin's model and renderers (HTML, text, spreadsheet, PDF,
charts), immutable editions, 审核签发 (sign-off), the corrections register and same-day 补报/更正 editions.

May import: core, store, intake, checks, close.
"""
