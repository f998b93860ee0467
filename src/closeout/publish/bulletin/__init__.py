"""The daily bulletin: what the day says, and its outputs.

`model` builds the `Bulletin` from the store (the day's figures, totals, changes, narratives and notes) on
`figures` (a unit's line, a figure summed, shown and compared with the day before) and `sections` (the areas and
their sums, a large bulletin's parts by group, the data notes). Each output reads the finished `Bulletin`:
`render` (the email's HTML and text, the PDF, the charts) and `spreadsheet` (the CSV and .xlsx attachments).
A new output is a new renderer module beside them. Nothing is re-exported here: import a name from its module.
"""
