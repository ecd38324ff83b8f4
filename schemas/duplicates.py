"""When two complaints of one enterprise are likely one complaint registered twice (12315 and a letter, a day apart,
the same words, under two complaint numbers).  One notion for the door, which tells the sender
(``ingest.lint``: ``complaint_possible_duplicate``), and the fold, whose 投诉集中 and 投诉聚集 alerts tell the supervisor
(``processors.warnings``): here, because ingest may not import processors and both may import schemas."""
from __future__ import annotations

import datetime as dt
import difflib
import functools
import unicodedata

from schemas.policy import ComplaintDuplicatesPolicy

_NOT_WORDS = str.maketrans("", "", " \t\r\n，,。.；;：:！!？?、“”\"'‘’（）()【】[]…-—～~")


@functools.lru_cache(maxsize=4096)
def plain_text(text: str) -> str:
    """The words of a complaint, spaces and punctuation aside (full-width forms folded)."""
    return unicodedata.normalize("NFKC", text).translate(_NOT_WORDS)


def duplicate_similarity(text: str, at: dt.datetime, other_text: str, other_at: dt.datetime,
                         rule: ComplaintDuplicatesPolicy) -> float | None:
    """How alike two complaints' texts are (difflib's ratio of their words; 1.0: the same) when the rule takes them for
    one complaint registered twice — received within ``within_days`` of each other, both at least ``min_chars`` long,
    at least ``min_similarity`` alike — else None.  A short complaint said alike by two consumers is no sign of one."""
    if rule.within_days <= 0 or abs(at - other_at) > dt.timedelta(days=rule.within_days):
        return None
    mine, theirs = plain_text(text), plain_text(other_text)
    if len(mine) < rule.min_chars or len(theirs) < rule.min_chars:
        return None
    alike = _alike(mine, theirs, rule.min_similarity)
    return alike if alike is not None and alike >= rule.min_similarity else None


@functools.lru_cache(maxsize=4096)
def _alike(mine: str, theirs: str, at_least: float) -> float | None:
    """difflib's ratio of two complaints' words, or None once its quick bounds fall short of ``at_least``.  Kept: a
    投诉集中 or 投诉聚集 compares each of its complaints with the others every time one joins, so the same pairs come
    again (a county's pure function of the two texts: the cache changes no result)."""
    if mine == theirs:
        return 1.0
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    # (the quick bounds first: texts of up to 4,000 characters)
    if matcher.real_quick_ratio() < at_least or matcher.quick_ratio() < at_least:
        return None
    return matcher.ratio()
