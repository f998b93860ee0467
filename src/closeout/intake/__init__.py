"""intake — a county file from the inbox to rows: finding the day's files, reading their bytes once within the
limits, archiving exactly what is judged, decoding CSV and XLSX into cells and cells into figure rows.

May import: core (store only through a Context passed in).
"""
