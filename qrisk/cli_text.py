"""Text tables for a terminal.  ``str.ljust`` and f-string widths count characters, a terminal gives an East
Asian Wide or Fullwidth character (a Chinese one) two cells: padded by count, a column after a Chinese name
moves right by as many cells as the name has characters.  Here widths are the cells a terminal shows;
ambiguous characters (—, ✓, ℃, ₂) take one, as most terminals outside CJK locales show them."""
from __future__ import annotations

import unicodedata
from typing import Sequence


def width(text: str) -> int:
    """The cells ``text`` takes: two for a Wide or Fullwidth character, none for a combining mark."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, cells: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``cells``: ``<`` left, ``>`` right, ``^`` centred (as format specs)."""
    room = max(cells - width(text), 0)
    if align == ">":
        return " " * room + text
    if align == "^":
        return " " * (room // 2) + text + " " * (room - room // 2)
    return text + " " * room


def table(rows: Sequence[Sequence[str]], align: str, gap: str = "  ") -> list[str]:
    """The rows (a header first, if any) as lines of columns each as wide as its widest cell; ``align``
    gives each column's ``<``, ``>`` or ``^``.  Lines carry no trailing spaces."""
    widths = [max((width(row[i]) for row in rows), default=0) for i in range(len(align))]
    return [gap.join(pad(cell, w, a) for cell, w, a in zip(row, widths, align)).rstrip() for row in rows]
