"""A unit's narrative (文字稿, .md): headline, byline and paragraphs, as written, without invisible characters."""

from __future__ import annotations

from dataclasses import dataclass

from closeout.core.limits import Limits
from closeout.core.textclean import strip_invisible
from closeout.intake.files import FileRefused
from closeout.intake.spreadsheets import decode_bytes


@dataclass(frozen=True)
class Narrative:
    headline: str
    byline: str
    paragraphs: tuple[str, ...]


def read_narrative(data: bytes, limits: Limits | None = None) -> tuple[Narrative, list[str]]:
    """The narrative and the invisible/control characters removed from it ("U+0000" codes)."""
    limits = limits or Limits()
    text, _ = decode_bytes(data)
    text, removed = strip_invisible(text, multiline=True)
    if len(text) > limits.max_narrative_chars:
        raise FileRefused(
            "narrative_too_long",
            f"文字稿有 {len(text)} 字，超过上限 {limits.max_narrative_chars} 字：请精简后重报",
        )
    lines = [line.strip() for line in text.splitlines()]
    headline = lines[0].lstrip("#").strip() if lines else ""
    byline = lines[1] if len(lines) > 1 else ""
    paragraphs = tuple(line for line in lines[2:] if line)
    return Narrative(headline, byline, paragraphs), removed
