"""Characters no store or mail can carry, removed the same way for every store.

PostgreSQL refuses NUL in text; SQLite keeps it and it reaches the mailed bulletin. Zero-width and
bidi-override characters make a label or a note read differently from what is stored. Everything in
Unicode's control (Cc) and format (Cf) categories goes, except tab and newline where a text may
have lines (narratives).
"""

from __future__ import annotations

import unicodedata

_KEEP_IN_LINES = {"\n", "\t"}


def _unwanted(ch: str, keep: set[str]) -> bool:
    return ch not in keep and unicodedata.category(ch) in ("Cc", "Cf")


def strip_invisible(text: str, multiline: bool = False) -> tuple[str, list[str]]:
    """The text without control/invisible characters, and those removed as "U+200B" codes (in order, once each)."""
    keep = _KEEP_IN_LINES if multiline else set()
    if text.isprintable() and not multiline:  # the common case, in C
        return text, []
    removed: list[str] = []
    kept = []
    for ch in text:
        if _unwanted(ch, keep):
            code = f"U+{ord(ch):04X}"
            if code not in removed:
                removed.append(code)
        else:
            kept.append(ch)
    return "".join(kept), removed


def printable_name(name: str) -> str:
    """A file name as data: control and invisible characters shown as ?, so a name can't break a line or a log."""
    return "".join("?" if _unwanted(ch, set()) else ch for ch in name)
